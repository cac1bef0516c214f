"""Helpers for delivery tests: an app wired to a provider emulator."""

from __future__ import annotations

from datetime import date

from mailer.app import App
from mailer.compose import issue_moment
from mailer.models import IssueStatus
from mailer.sending import store_issue
from mailer.store import issues as issue_store
from tests.emulators import EMULATORS, Emulator

HTTP_PROVIDERS = ["postmark", "sendgrid", "mailgun", "brevo"]


def provider_env(name: str, emulator: Emulator) -> dict[str, str]:
    """MAILER_* variables that point the mailer at an emulator."""
    env = {"MAILER_PROVIDER": name, "MAILER_PROVIDER_URL": emulator.url,
           "MAILER_PROVIDER_KEY": emulator.key}
    if name == "mailgun":
        env["MAILER_PROVIDER_DOMAIN"] = emulator.domain  # type: ignore[attr-defined]
    return env


def start_emulator(name: str, **kw) -> Emulator:
    """A running emulator for a provider."""
    return EMULATORS[name](key=f"{name}-test-key", **kw).start()


def app_for(app: App, name: str, emulator: Emulator, **overrides) -> App:
    """A copy of an app that sends through the emulator, sharing its engine: the `app`
    fixture disposes of that one, where an engine per copy kept its PostgreSQL
    connections open until the server refused new clients."""
    env = provider_env(name, emulator)
    return app.with_settings(
        provider=name, provider_url=env["MAILER_PROVIDER_URL"],
        provider_key=env["MAILER_PROVIDER_KEY"],
        provider_domain=env.get("MAILER_PROVIDER_DOMAIN"), **overrides)


def the_issue(app: App):
    """The sample issue of 3 December 2026, stored."""
    return store_issue(app, issue_moment(app.settings, app.clock, date(2026, 12, 3)))


def add_subscribers(engine, count: int, now, prefix: str = "lezer") -> None:
    """Insert `count` active subscribers in one set-based statement (no Python loop)."""
    from sqlalchemy import JSON, Integer, String, cast, insert, literal, select

    from mailer.models import Preferences
    from mailer.store.tables import subscribers

    seq = select(literal(1, type_=Integer).label("n")).cte("seq", recursive=True)
    seq = seq.union_all(select(seq.c.n + 1).where(seq.c.n < count))
    when = literal(now, type_=subscribers.c.created_at.type)
    source = select(
        literal(f"{prefix}.") + cast(seq.c.n, String) + literal("@example.org"),
        literal("Lezer ") + cast(seq.c.n, String), literal("active"),
        literal(["agenda", "magazine"], type_=JSON), literal([], type_=JSON),
        literal(Preferences().key()), literal(1), literal("test"), when, when, when,
    )
    columns = ["email", "name", "status", "sections", "themes", "segment_key",
               "token_version", "source", "created_at", "updated_at", "confirmed_at"]
    with engine.begin() as conn:
        conn.execute(insert(subscribers).from_select(columns, source))


class PausedMidway:
    """The provider, while another worker's error budget runs out: the first call made
    here is answered after that other worker has paused the issue."""

    def __init__(self, app: App, issue_id: int, note: str = "error budget spent"):
        self.inner, self.app, self.issue_id, self.note, self.calls = (
            app.provider, app, issue_id, note, 0)

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def send_batch(self, batch):
        self.calls += 1
        if self.calls == 1:
            with self.app.engine.begin() as conn:
                issue_store.set_issue_status(conn, self.issue_id, IssueStatus.PAUSED,
                                             self.app.clock.now(), note=self.note)
        return self.inner.send_batch(batch)


def one_segment(app: App, issue_id: int) -> None:
    """Put every outbox row of an issue in the segment of its first row, so a claimed
    batch is one provider call."""
    from sqlalchemy import select, update

    from mailer.store.tables import outbox

    with app.engine.begin() as conn:
        first = conn.execute(select(outbox.c.segment_key).where(outbox.c.issue_id == issue_id)
                             .order_by(outbox.c.id).limit(1)).scalar_one()
        conn.execute(update(outbox).where(outbox.c.issue_id == issue_id)
                     .values(segment_key=first))
