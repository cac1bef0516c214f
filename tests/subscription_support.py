"""Helpers shared by the subscription tests (services, subscribe requests, retention): the
consent context of a form post, and a subscriber's row and consent ledger as stored."""

from sqlalchemy import select

from mailer.models import Preferences
from mailer.store import subscribers as subs
from mailer.store.subscribers import ConsentContext
from mailer.store.tables import consent_events
from mailer.subscriptions import consent_context

UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0.0.0 Safari/537.36"
PREFS = Preferences(frozenset({"magazine"}), frozenset({"onderwijs"}))


def ctx(app, ip: str = "192.0.2.77") -> ConsentContext:
    """A form post from a test browser, kept as the app's `store_ip` setting says."""
    return consent_context(app.settings, "web:test", ip, UA)


def row_of(app, sid: int):
    """The subscriber's row as stored now."""
    with app.engine.connect() as conn:
        return subs.subscriber_row(conn, sid)


def ledger(app, sid: int) -> list:
    """The subscriber's consent ledger entries, oldest first."""
    with app.engine.connect() as conn:
        return conn.execute(select(consent_events).where(
            consent_events.c.subscriber_id == sid).order_by(consent_events.c.id)).all()
