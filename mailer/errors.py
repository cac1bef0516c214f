"""Exception types shared across the package.

Configuration errors are their own type so that nothing swallows them by accident;
per-recipient delivery problems are data (see models.RecipientStatus), not exceptions.
"""

from __future__ import annotations


class MailerError(Exception):
    """Base class for every error this package raises on purpose."""


class ConfigError(MailerError):
    """A setting is missing or invalid; the message names the setting."""


class ContentError(MailerError):
    """A content file or source could not be read; the message names it and the problem."""

    def __init__(self, where: str, problem: str):
        super().__init__(f"{where}: {problem}")
        self.where = where
        self.problem = problem


class ComposeError(MailerError):
    """An issue cannot be composed or rendered as asked."""


class ProviderError(MailerError):
    """A whole provider call failed; `retryable` says whether trying again may help."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        status: int | None = None,
        retry_after: float | None = None,
        response_text: str = "",
        maybe_accepted: bool = False,
    ):
        super().__init__(message)
        self.retryable = retryable
        self.status = status
        self.retry_after = retry_after
        self.response_text = response_text
        # True when the request may have reached the provider (dropped connection, timeout
        # after sending): trying again may deliver twice unless the provider deduplicates.
        self.maybe_accepted = maybe_accepted
