"""The composition root: builds services from settings. The only place that picks classes."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from mailer.clock import Clock, clock_for
from mailer.delivery.dispatcher import Dispatcher, ListIdentity
from mailer.errors import ConfigError
from mailer.links import Links
from mailer.providers import Provider, provider_class
from mailer.render.newsletter import NewsletterRenderer
from mailer.settings import Settings
from mailer.sources import Source, SourceConfig, factory_for
from mailer.store.db import make_engine

if TYPE_CHECKING:
    from mailer.subscriber_mail import SubscriberMail


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
        from email.utils import formataddr

        return formataddr((self.settings.from_name, self.settings.from_email))

    @property
    def message_domain(self) -> str:
        """The domain our Message-IDs end in."""
        return self.settings.from_email.rpartition("@")[2]

    @cached_property
    def provider(self) -> Provider:
        return self.make_provider(self.settings.provider)

    @cached_property
    def subscriber_mail(self) -> SubscriberMail:
        """Confirmation, already-subscribed and goodbye mails, rendered once per process."""
        from mailer.subscriber_mail import SubscriberMail

        return SubscriberMail(self.settings, self.links, self.provider, self.message_domain)

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
            concurrency=s.concurrency, rate=s.rate_per_second,
            error_budget=s.error_budget, budget_window=s.error_budget_window,
        )

    def sources(self) -> list[tuple[str, Source]]:
        """The configured content sources, by name."""
        s = self.settings
        local = SourceConfig(name="local", kind="markdown", location=str(s.path(s.content_dir)))
        return [(local.name, factory_for(local.kind)(local))]


def default_worker_id() -> str:
    """host:pid, unique among live workers."""
    return f"{socket.gethostname()}:{os.getpid()}"
