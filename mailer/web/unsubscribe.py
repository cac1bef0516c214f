"""`/afmelden/<token>`: a page with one button, and the RFC 8058 one-click endpoint.

A mail client POSTs `List-Unsubscribe=One-Click` to the URL of the List-Unsubscribe
header without cookies or any token but the one in the URL; the page's own button posts
exactly the same body. Either way: unsubscribed at once, idempotent, 200, no redirect.
"""

from __future__ import annotations

from flask import Blueprint, render_template, request

from mailer.message import ONE_CLICK
from mailer.models import SubscriberStatus
from mailer.subscriptions import consent_context, unsubscribe
from mailer.web import mail_queue, mailer_app
from mailer.web.security import PageError, client_ip, user_agent
from mailer.web.tokens import subscriber_for

blueprint = Blueprint("unsubscribe", __name__)
FIELD, VALUE = ONE_CLICK.split("=")
GONE = (SubscriberStatus.UNSUBSCRIBED, SubscriberStatus.BOUNCED, SubscriberStatus.COMPLAINED)


@blueprint.get("/afmelden/<token>")
def unsubscribe_page(token: str):
    """One button that unsubscribes; nothing changes on GET (link scanners prefetch)."""
    sub = subscriber_for("unsubscribe", token)
    if sub.status in GONE:
        return _goodbye(sub, already=True)
    return render_template("unsubscribe.html", field=FIELD, value=VALUE)


@blueprint.post("/afmelden/<token>")
def one_click(token: str):
    """Unsubscribe (RFC 8058 one-click, and the page's button)."""
    if request.form.get(FIELD) != VALUE:
        raise PageError(400, "Afmelden niet gelukt",
                        "Dit verzoek is niet compleet. Open de afmeldlink uit je e-mail en "
                        "gebruik de knop op de pagina.")
    app = mailer_app()
    sub = subscriber_for("unsubscribe", token)
    via = "page" if request.form.get("via") == "pagina" else "one-click"
    context = consent_context(app.settings, f"web:{via}", client_ip(), user_agent())
    mail_queue().submit(unsubscribe(app, sub.id, context))
    return _goodbye(sub, already=False)


def _goodbye(sub, *, already: bool):
    app = mailer_app()
    return render_template("goodbye.html", already=already,
                           preferences_url=app.links.preferences_url(sub.id, sub.token_version))
