"""`/voorkeuren/<token>`: the preference centre (sections, themes, name; resubscribe)."""

from __future__ import annotations

from flask import Blueprint, render_template, request

from mailer.models import Subscriber, SubscriberStatus
from mailer.subscriptions import change_preferences, consent_context, resubscribe
from mailer.web import mailer_app
from mailer.web.forms import SECTION_LABELS, FormInput, read_preferences
from mailer.web.security import client_ip, form_key, require_form_key, user_agent
from mailer.web.tokens import subscriber_for

blueprint = Blueprint("preferences", __name__)


def _page(token: str, sub: Subscriber, form: FormInput, status: int = 200,
          saved: str | None = None):
    app = mailer_app()
    return render_template(
        "preferences.html", sub=sub, form=form, sections=SECTION_LABELS,
        themes=app.settings.themes, form_key=form_key("preferences", token), saved=saved,
        unsubscribe_url=app.links.unsubscribe_url(sub.id, sub.token_version),
    ), status


def _stored(sub: Subscriber) -> FormInput:
    return FormInput(name=sub.name, sections=set(sub.preferences.sections),
                     themes=set(sub.preferences.themes))


@blueprint.get("/voorkeuren/<token>")
def preferences_page(token: str):
    """The subscriber's current choices, ready to change."""
    sub = subscriber_for("preferences", token)
    return _page(token, sub, _stored(sub))


@blueprint.post("/voorkeuren/<token>")
def preferences_post(token: str):
    """Save new choices, or subscribe again after an unsubscribe; no cookie needed (see
    security.form_key)."""
    require_form_key("preferences", token)
    app = mailer_app()
    sub = subscriber_for("preferences", token)
    context = consent_context(app.settings, "web:" + app.links.url("voorkeuren"),
                              client_ip(), user_agent())
    if request.form.get("actie") == "weer-aanmelden":
        resubscribe(app, sub.id, context)
        sub = subscriber_for("preferences", token)
        # Only an unsubscribed subscriber comes back; a bounced one, say, stays where it was.
        back = sub.status is SubscriberStatus.ACTIVE
        return _page(token, sub, _stored(sub),
                     saved="Welkom terug! Je ontvangt de nieuwsbrief weer." if back else None)
    form = read_preferences(request.form, app.settings.themes)
    if form.errors:
        return _page(token, sub, form, 400)
    change_preferences(app, sub.id, form.preferences, form.name, context)
    sub = subscriber_for("preferences", token)
    message = "Je voorkeuren zijn opgeslagen."
    if sub.status is SubscriberStatus.PENDING:
        message += " Bevestig nog wel je aanmelding via de link in je e-mail."
    return _page(token, sub, _stored(sub), saved=message)
