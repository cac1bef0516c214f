"""`/afmelden/<token>`: a page with one button, and the RFC 8058 one-click endpoint.

A mail client POSTs `List-Unsubscribe=One-Click` to the URL of the List-Unsubscribe
header without cookies or any token but the one in the URL; the page's own button posts
exactly the same body. Either way: unsubscribed at once, idempotent, 200, no redirect.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from flask import Blueprint, render_template, request

from mailer.message import ONE_CLICK
from mailer.models import SubscriberStatus
from mailer.subscriptions import LinkState, consent_context, unsubscribe_by_link
from mailer.web import mail_queue, mailer_app
from mailer.web.pagecache import filled_page
from mailer.web.security import PageError, client_ip, user_agent
from mailer.web.tokens import INVALID, REVOKED, claims_for, subscriber_for

blueprint = Blueprint("unsubscribe", __name__)
FIELD, VALUE = ONE_CLICK.split("=")
GONE = (SubscriberStatus.UNSUBSCRIBED, SubscriberStatus.BOUNCED, SubscriberStatus.COMPLAINED)


@blueprint.get("/afmelden/<token>")
def unsubscribe_page(token: str):
    """One button that unsubscribes; nothing changes on GET (link scanners prefetch)."""
    sub = subscriber_for("unsubscribe", token)
    if sub.status in GONE:
        return _goodbye(sub.id, sub.token_version, already=True)
    return render_template("unsubscribe.html", field=FIELD, value=VALUE)


def posted_fields() -> dict[str, str]:
    """The POST body's fields; the usual urlencoded one-click body is read without the
    general form parser (RFC 8058 also allows multipart, which takes the usual way)."""
    if request.mimetype == "application/x-www-form-urlencoded":
        return dict(parse_qsl(request.get_data(as_text=True)))
    return request.form.to_dict()


@blueprint.post("/afmelden/<token>")
def one_click(token: str):
    """Unsubscribe (RFC 8058 one-click, and the page's button)."""
    fields = posted_fields()
    if fields.get(FIELD) != VALUE:
        raise PageError(400, "Afmelden niet gelukt",
                        "Dit verzoek is niet compleet. Open de afmeldlink uit je e-mail en "
                        "gebruik de knop op de pagina.")
    app = mailer_app()
    claims = claims_for("unsubscribe", token)
    page = fields.get("via") == "pagina"
    context = consent_context(app.settings, "web:" + ("page" if page else "one-click"),
                              client_ip(), user_agent())
    result = unsubscribe_by_link(app, claims, context, goodbye=page)
    if result.state is LinkState.UNKNOWN:
        raise INVALID
    if result.state is LinkState.REVOKED:
        raise REVOKED
    mail_queue().submit(result.mail)
    return _goodbye(claims.subscriber_id, claims.version, already=False)


def _goodbye(subscriber_id: int, version: int, *, already: bool) -> str:
    url = mailer_app().links.preferences_url(subscriber_id, version)
    return filled_page("goodbye.html", {"preferences_url": url}, already=already)
