"""`/aanmelden` (subscribe form) and `/bevestigen/<token>` (double opt-in confirmation)."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for

from mailer.links import TokenClaims
from mailer.models import SECTIONS, Preferences, Subscriber, SubscriberStatus
from mailer.subscriptions import (
    CONFIRMABLE,
    ConfirmOutcome,
    choices_to_confirm,
    confirm,
    consent_context,
    form_post_allowed,
    subscribe,
)
from mailer.web import mail_queue, mailer_app
from mailer.web.forms import SECTION_LABELS, FormInput, read_subscribe
from mailer.web.security import (
    PageError,
    client_ip,
    csrf_token,
    form_key,
    require_csrf,
    require_form_key,
    user_agent,
)
from mailer.web.tokens import EXPIRED, SUPERSEDED, holder_of, subscriber_for

blueprint = Blueprint("subscribe", __name__)
HONEYPOT = "website"


def too_many(minutes: int) -> PageError:
    """The rate-limit page; the limit's window is a setting, so is the wait it names."""
    return PageError(429, "Even wachten", "Er zijn vanaf jouw internetverbinding veel "
                     f"aanmeldingen gedaan. Probeer het over {_duration(minutes)} opnieuw.",
                     {"Retry-After": str(minutes * 60)})  # at most: the window slides


def _duration(minutes: int) -> str:
    if minutes % 60:
        return "een minuut" if minutes == 1 else f"{minutes} minuten"
    return "een uur" if minutes == 60 else f"{minutes // 60} uur"


def _form(data: FormInput, status: int = 200):
    return render_template("subscribe.html", form=data, sections=SECTION_LABELS,
                           themes=mailer_app().settings.themes, csrf=csrf_token()), status


@blueprint.get("/aanmelden")
def subscribe_form():
    """The subscribe form."""
    return _form(FormInput())


@blueprint.post("/aanmelden")
def subscribe_post():
    """Handle the form; the answer is the same whether the address is new, known or blocked."""
    require_csrf()
    app = mailer_app()
    data = read_subscribe(request.form, app.settings.themes)
    if data.errors:
        return _form(data, 400)
    # Post/Redirect/Get: reloading the answer, or going back to it, must not post the form
    # again (that would send another confirmation mail).
    response = redirect(url_for("subscribe.subscribe_sent"), 303)
    if request.form.get(HONEYPOT):
        return response  # a bot: answer as usual, do nothing
    if not form_post_allowed(app, client_ip()):
        raise too_many(app.settings.rate_limit_window_minutes)
    context = consent_context(app.settings, "web:" + app.links.url("aanmelden"),
                              client_ip(), user_agent())
    queue = mail_queue()
    # Look the address up only after answering: the answer's content and timing must not
    # depend on whether it is new, known or suppressed.
    response.call_on_close(lambda: queue.submit_call(lambda: subscribe(
        app, data.email, data.name, data.preferences, context).mail))
    return response


@blueprint.get("/aanmelden/verstuurd")
def subscribe_sent():
    """What happens next, after the form was posted: the same page for every address."""
    return render_template("subscribe_sent.html")


def _confirming(token: str) -> tuple[TokenClaims, Subscriber] | None:
    """What a confirm link says and whom it is for; None when the link has expired but is
    genuine and its owner confirmed already: telling them to sign up again would be wrong."""
    app = mailer_app()
    try:
        return holder_of("confirm", token, app.settings.confirm_max_age_days)
    except PageError as error:
        if error is not EXPIRED or not _confirmed_already(token):
            raise
        return None


def _confirmed_already(token: str) -> bool:
    """Whether a genuine confirm link, whatever its age, is of an active subscriber (and
    not revoked since)."""
    try:
        return subscriber_for("confirm", token).status is SubscriberStatus.ACTIVE
    except PageError:
        return False


def _cannot_confirm(app) -> PageError:
    """The page for a link whose address may not be (re)activated: bounced or complained."""
    return PageError(410, "Aanmelden lukt niet met deze link",
                     "Dit adres kan zich niet met deze link aanmelden. Neem contact op met "
                     f"de redactie: {app.settings.reply_to}")


def _already_confirmed_page():
    """Confirmed already, through an expired link: no preferences link, since an old link
    must not hand out a new one."""
    return render_template("confirmed.html", already=True, preferences_url=None)


def _chosen(preferences: Preferences) -> dict[str, list[str]]:
    """The labels of the sections and themes a confirmation would subscribe to."""
    themes = mailer_app().settings.themes
    return {"sections": [SECTION_LABELS[s][0] for s in SECTIONS if s in preferences.sections],
            "themes": [label for slug, label in themes.items() if slug in preferences.themes]}


@blueprint.get("/bevestigen/<token>")
def confirm_page(token: str):
    """A page with one button: link scanners prefetch GETs, so only the POST confirms.
    It shows what the button confirms (never the requested name), so that is known first."""
    app = mailer_app()
    held = _confirming(token)
    if held is None:
        return _already_confirmed_page()
    claims, sub = held
    if sub.status is SubscriberStatus.ACTIVE:
        return render_template("confirmed.html", already=True,
                               preferences_url=app.links.preferences_url(sub.id, sub.token_version))
    if sub.status not in CONFIRMABLE:  # bounced or complained: say so now, not after a click
        raise _cannot_confirm(app)
    choices = choices_to_confirm(app, sub.id, claims.request)
    if choices is None:  # a newer request replaced the one this link was sent for
        raise SUPERSEDED
    return render_template("confirm.html", form_key=form_key("confirm", token),
                           chosen=_chosen(choices.preferences))


@blueprint.post("/bevestigen/<token>")
def confirm_post(token: str):
    """Confirm the subscription: the subscriber becomes active with what the link was for.
    No cookie needed (see security.form_key): the link's token is the authority."""
    require_form_key("confirm", token)
    app = mailer_app()
    held = _confirming(token)
    if held is None:
        return _already_confirmed_page()
    claims, sub = held
    context = consent_context(app.settings, "web:" + app.links.url("bevestigen"),
                              client_ip(), user_agent())
    outcome = confirm(app, sub.id, context, claims.request)
    if outcome is ConfirmOutcome.SUPERSEDED:
        raise SUPERSEDED
    if outcome is ConfirmOutcome.REFUSED:
        raise _cannot_confirm(app)
    return render_template("confirmed.html", already=outcome is ConfirmOutcome.ALREADY,
                           preferences_url=app.links.preferences_url(sub.id, sub.token_version))
