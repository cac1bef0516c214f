"""The composition root: builds services from settings. The only place that picks classes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from mailer.clock import Clock, clock_for
from mailer.delivery.dispatcher import Dispatcher, ListIdentity
from mailer.errors import ConfigError
from mailer.links import Links
from mailer.liveness import local_owner_id
from mailer.providers import Provider, provider_class
from mailer.render.newsletter import NewsletterRenderer
from mailer.settings import Settings
from mailer.sources import Source, SourceConfig, factory_for
from mailer.sources.config import load_source_configs
from mailer.sources.http import FetchPolicy, HttpClient
from mailer.store.db import make_engine

if TYPE_CHECKING:
    from mailer.subscriber_mail import SubscriberMail

# Events are fetched a few weeks beyond the agenda's horizon: issues are composed days
# after a sync, and an event must be in the ledger before it enters the horizon.
SYNC_HORIZON_SLACK_WEEKS = 4


@dataclass
class App:
    """Settings plus the services built from them, created lazily and once."""

    settings: Settings
    clock: Clock = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.clock is None:
            self.clock = clock_for(self.settings.now)

    @cached_property
    def engine(self) -> Engine:
        return make_engine(self.settings.resolved_database_url())

    @cached_property
    def links(self) -> Links:
        return Links(self.settings.require_secret_key(), self.settings.base_url, self.clock)

    @cached_property
    def renderer(self) -> NewsletterRenderer:
        return NewsletterRenderer(self.settings, self.links)

    @cached_property
    def identity(self) -> ListIdentity:
        s = self.settings
        return ListIdentity(s.list_id, s.list_name, s.unsubscribe_mailto)

    @property
    def sender(self) -> str:
        """The From header: the organisation's name and a monitored address."""
        from mailer.message import format_address

        return format_address(self.settings.from_name, self.settings.from_email)

    @property
    def message_domain(self) -> str:
        """The domain our Message-IDs end in."""
        return self.settings.from_email.rpartition("@")[2]

    @cached_property
    def provider(self) -> Provider:
        return self.make_provider(self.settings.provider)

    @cached_property
    def subscriber_mail(self) -> SubscriberMail:
        """Confirmation, already-subscribed and goodbye mails, rendered once per process;
        a confirmation the provider accepts is recorded in the consent ledger."""
        from mailer.confirmations import record_sent
        from mailer.subscriber_mail import SubscriberMail

        return SubscriberMail(self.settings, self.links, self.provider, self.message_domain,
                              lambda job, status: record_sent(self.engine, self.clock.now(),
                                                              job, status))

    def make_provider(self, name: str) -> Provider:
        """Build the provider a name asks for, with its settings."""
        try:
            cls = provider_class(name)
        except KeyError as exc:
            raise ConfigError(f"setting provider (MAILER_PROVIDER): {exc.args[0]}") from None
        s = self.settings
        if name == "file":
            return cls(s.path(s.outbox_dir), self.sender, s.reply_to, self.clock)
        return cls.from_settings(s, sender=self.sender, clock=self.clock)

    def dispatcher(self, worker: str | None = None) -> Dispatcher:
        """A dispatcher for this installation's provider."""
        s = self.settings
        return Dispatcher(
            self.engine, self.provider, self.links, self.identity, self.clock,
            worker=worker or default_worker_id(), batch_size=s.batch_size,
            max_attempts=s.max_attempts, lease=timedelta(seconds=s.lease_seconds),
            request_timeout=s.request_timeout, concurrency=s.concurrency, rate=s.rate_per_second,
            error_budget=s.error_budget, budget_window=s.error_budget_window,
        )

    def with_settings(self, **changes) -> App:
        """A copy with some settings changed, sharing this app's clock and engine."""
        from mailer.settings import with_overrides

        copy = App(with_overrides(self.settings, **changes), self.clock)
        # Seed the copy's cached engine so both use one connection pool.
        copy.__dict__["engine"] = self.engine
        return copy

    def with_clock(self, clock: Clock) -> App:
        """A copy telling time by another clock, sharing this app's settings and engine."""
        copy = App(self.settings, clock)
        copy.__dict__["engine"] = self.engine
        return copy

    @cached_property
    def http(self) -> HttpClient:
        """The one HTTP session all remote sources share."""
        s = self.settings
        return HttpClient(FetchPolicy(timeout=s.fetch_timeout_seconds,
                                      max_bytes=s.fetch_max_bytes, retries=s.fetch_retries))

    def source_configs(self) -> list[SourceConfig]:
        """Every configured source, enabled or not: content/sources.toml, else local only."""
        s = self.settings
        path = s.path(s.sources_file) if s.sources_file else s.path(s.content_dir) / "sources.toml"
        if s.sources_file or path.is_file():
            return load_source_configs(path, s.themes)
        return [SourceConfig(name="local", kind="markdown", location=str(s.path(s.content_dir)))]

    def sources(self, only: str | None = None) -> list[tuple[str, Source]]:
        """The enabled content sources (or just the one named), by name, in configured order."""
        configs = self.source_configs()
        if only is not None:
            chosen = [c for c in configs if c.name == only]
            if not chosen:
                known = ", ".join(c.name for c in configs)
                raise ConfigError(f"unknown source {only!r}; configured: {known}")
            configs = chosen
        horizon = self.settings.event_horizon_weeks + SYNC_HORIZON_SLACK_WEEKS
        return [(c.name, factory_for(c.kind)(c, http=self.http, clock=self.clock,
                                             horizon_weeks=horizon, themes=self.settings.themes))
                for c in configs if c.enabled or only is not None]


def default_worker_id() -> str:
    """host:pid, unique among live workers."""
    return local_owner_id()
