"""Turning a link's token into a subscriber, or into a friendly error page."""

from __future__ import annotations

from mailer.links import TokenClaims, TokenExpired, TokenInvalid
from mailer.models import Subscriber, SubscriberStatus
from mailer.store.subscribers import subscriber_by_id
from mailer.web import mailer_app
from mailer.web.security import PageError

INVALID = PageError(400, "Deze link klopt niet",
                    "De link is niet compleet of is veranderd. Kopieer de link uit je e-mail "
                    "helemaal, of gebruik de knop in de e-mail.")
EXPIRED = PageError(410, "Deze link is verlopen",
                    "De link is te oud. Meld je opnieuw aan; je krijgt dan een nieuwe link.")
REVOKED = PageError(410, "Deze link werkt niet meer",
                    "Deze link is ingetrokken. Gebruik de link uit je nieuwste e-mail van ons.")
SUPERSEDED = PageError(410, "Deze link is vervangen",
                       "Na deze e-mail is er opnieuw een aanmelding met dit e-mailadres gedaan, "
                       "of de aanmelding is verlopen. Gebruik de link uit de nieuwste e-mail "
                       "die je van ons kreeg, of meld je opnieuw aan.")


def claims_for(purpose: str, token: str, max_age_days: int | None = None) -> TokenClaims:
    """What a genuine token says; raises PageError (400/410) for a bad or expired one."""
    max_age = max_age_days * 86400 if max_age_days else None
    try:
        return mailer_app().links.read(purpose, token, max_age=max_age)
    except TokenExpired:
        raise EXPIRED from None
    except TokenInvalid:
        raise INVALID from None


def subscriber_for(purpose: str, token: str, max_age_days: int | None = None) -> Subscriber:
    """The subscriber a token is for; raises PageError (400/410) and changes nothing."""
    return holder_of(purpose, token, max_age_days)[1]


def holder_of(purpose: str, token: str,
              max_age_days: int | None = None) -> tuple[TokenClaims, Subscriber]:
    """What a token says and the subscriber it is for; raises PageError (400/410)."""
    app = mailer_app()
    claims = claims_for(purpose, token, max_age_days)
    with app.engine.connect() as conn:
        sub = subscriber_by_id(conn, claims.subscriber_id)
    if sub is None:
        raise INVALID
    if sub.token_version != claims.version or sub.status is SubscriberStatus.ERASED:
        raise REVOKED
    return claims, sub
