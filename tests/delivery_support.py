"""Helpers for delivery tests: an app wired to a provider emulator."""

from __future__ import annotations

from datetime import date

from mailer.app import App
from mailer.compose import issue_moment
from mailer.sending import store_issue
from mailer.settings import with_overrides
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
    """A copy of an app that sends through the emulator."""
    env = provider_env(name, emulator)
    settings = with_overrides(
        app.settings, provider=name, provider_url=env["MAILER_PROVIDER_URL"],
        provider_key=env["MAILER_PROVIDER_KEY"],
        provider_domain=env.get("MAILER_PROVIDER_DOMAIN"), **overrides)
    return App(settings, app.clock)


def the_issue(app: App):
    """The sample issue of 3 December 2026, stored."""
    return store_issue(app, issue_moment(app.settings, app.clock, date(2026, 12, 3)))
