"""Checks of loaded settings: each section's values, the address settings and the clock.

A setting that cannot work is refused when the settings are loaded, with a ConfigError
naming it, instead of failing half-way through a send.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mailer.addresses import InvalidAddress, normalize_email
from mailer.errors import ConfigError

if TYPE_CHECKING:
    from mailer.settings import Settings


def validate(s: Settings) -> None:
    """Raise a ConfigError naming the first setting whose value cannot work."""
    for checks in (_mailer_checks, _content_checks, _delivery_checks, _preview_checks,
                   _subscription_checks, _retention_checks, _scheduler_checks):
        _require(s, checks(s))
    _check_addresses(s)
    _check_now(s)


# A check: (setting name, whether its value is acceptable, what it must be otherwise).
Check = tuple[str, bool, str]


def _require(s: Settings, checks: list[Check]) -> None:
    """Raise a ConfigError for the first check that fails, naming the setting and its value."""
    for name, ok, problem in checks:
        if not ok:
            raise ConfigError(f"setting {name}: {problem}, got {getattr(s, name)!r}")


def _mailer_checks(s: Settings) -> list[Check]:
    """Where the mailer lives: its public URL and its database."""
    return [
        ("base_url", s.base_url.startswith(("https://", "http://")), "must start with https://"),
        ("database_url", "://" in s.database_url, "must be a SQLAlchemy URL"),
    ]


def _content_checks(s: Settings) -> list[Check]:
    """What goes into an issue, when it is sent, and how sources are fetched."""
    return [
        ("event_horizon_weeks", s.event_horizon_weeks > 0, "must be at least 1"),
        ("first_issue_lookback_days", s.first_issue_lookback_days >= 0, "must not be negative"),
        ("size_budget_kb", s.size_budget_kb > 0, "must be positive"),
        ("send_time", _is_hhmm(s.send_time), "must be HH:MM, e.g. 09:00"),
        ("fetch_timeout_seconds", s.fetch_timeout_seconds > 0, "must be positive"),
        ("fetch_max_bytes", s.fetch_max_bytes > 0, "must be positive"),
        ("fetch_retries", s.fetch_retries >= 0, "must not be negative"),
    ]


def _delivery_checks(s: Settings) -> list[Check]:
    """How the outbox is drained: batches, workers, attempts, rate and error budget."""
    return [
        ("batch_size", s.batch_size >= 0, "must not be negative (0 = the provider's maximum)"),
        ("concurrency", s.concurrency >= 1, "must be at least 1"),
        ("max_attempts", s.max_attempts >= 1, "must be at least 1"),
        ("rate_per_second", s.rate_per_second >= 0, "must not be negative (0 = unlimited)"),
        ("error_budget", 0 < s.error_budget <= 1, "must be a fraction between 0 and 1"),
        ("request_timeout", s.request_timeout > 0, "must be positive"),
    ]


def _preview_checks(s: Settings) -> list[Check]:
    """The editor's preview tools."""
    return [("link_timeout", s.link_timeout > 0, "must be positive (seconds)")]


def _subscription_checks(s: Settings) -> list[Check]:
    """Confirmation, purging, the IP policy and the subscribe rate limits."""
    return [
        ("confirm_max_age_days", s.confirm_max_age_days >= 1, "must be at least 1"),
        ("pending_purge_days", s.pending_purge_days >= 1, "must be at least 1"),
        ("store_ip", s.store_ip in ("stored", "truncated", "none"),
         "must be stored, truncated or none"),
        ("confirm_limit_per_address", s.confirm_limit_per_address >= 1, "must be at least 1"),
        ("confirm_limit_per_ip", s.confirm_limit_per_ip >= 1, "must be at least 1"),
        ("rate_limit_window_minutes", s.rate_limit_window_minutes >= 1, "must be at least 1"),
        ("trusted_proxies", s.trusted_proxies >= 0, "must not be negative"),
    ]


def _retention_checks(s: Settings) -> list[Check]:
    """How long personal data is kept: at least a day each (the job runs daily)."""
    return [(name, getattr(s, name) >= 1, "must be at least 1 (days)")
            for name in ("left_subscriber_days", "delivery_record_days", "consent_ip_days",
                         "webhook_event_days", "job_run_detail_days")]


def _scheduler_checks(s: Settings) -> list[Check]:
    """The scheduler's grace for missed runs and its heartbeat."""
    return [
        ("grace_hours", s.grace_hours > 0, "must be positive"),
        ("heartbeat_seconds", s.heartbeat_seconds >= 1, "must be at least 1"),
    ]


def _check_addresses(s: Settings) -> None:
    """Every address setting (sender, reply-to, unsubscribe, editors) is an e-mail address.

    A typo here would put a broken From, Reply-To or List-Unsubscribe on every message of
    a send, so each is checked as a subscriber's address is.
    """
    for name in ("from_email", "reply_to", "unsubscribe_mailto", "editors"):
        value = getattr(s, name)
        for address in value if isinstance(value, list) else [value]:
            if problem := _address_problem(address):
                raise ConfigError(
                    f"setting {name}: not an e-mail address, got {address!r} ({problem})")


def _address_problem(address: str) -> str | None:
    """Why an address cannot stand in a header, or None: email-validator, no DNS look-up."""
    if address != address.strip():
        return "there are spaces around the address"
    try:
        normalize_email(address)
    except InvalidAddress as exc:
        return str(exc)
    return None


def _check_now(s: Settings) -> None:
    """A fixed clock (MAILER_NOW), when set, is an ISO 8601 time."""
    if not s.now:
        return
    from mailer.clock import parse_instant

    try:
        parse_instant(s.now)
    except ValueError:
        problem = f"not an ISO 8601 time: {s.now!r}"
        raise ConfigError(f"setting now (MAILER_NOW): {problem}") from None


def _is_hhmm(text: str) -> bool:
    parts = text.split(":")
    return (
        len(parts) == 2
        and all(p.isdigit() for p in parts)
        and 0 <= int(parts[0]) < 24
        and 0 <= int(parts[1]) < 60
    )
