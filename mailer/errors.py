"""Exception types shared across the package.

Configuration errors are their own type so that nothing swallows them by accident;
per-recipient delivery problems are data (see models.RecipientStatus), not exceptions.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class Failure(StrEnum):
    """Why a whole source could not be read: the closed set mailer.sources.failures words."""

    REFUSED = "refused"  # nothing listens at the host and port
    UNKNOWN_HOST = "unknown-host"  # the host name does not resolve
    CONNECTION = "connection"  # reset, no route, TLS: the connection broke
    TIMEOUT = "timeout"  # facts: seconds
    HTTP_STATUS = "http-status"  # facts: status
    REDIRECTS = "redirects"  # a loop, or a redirect without or to a non-http(s) target
    TOO_LARGE = "too-large"  # facts: limit (bytes)
    CUT_OFF = "cut-off"  # the response stopped before its end
    NOT_ALLOWED = "not-allowed"  # a scheme other than http, https or file
    UNREADABLE_FILE = "unreadable-file"  # facts: missing (bool)
    NO_FOLDER = "no-folder"
    HTML_PAGE = "html-page"  # facts: expected (feed, calendar, json), feed_url (a hint)
    NOT_A_FEED = "not-a-feed"
    TRUNCATED_FEED = "truncated-feed"  # facts: parser
    NOT_A_CALENDAR = "not-a-calendar"
    TRUNCATED_CALENDAR = "truncated-calendar"
    INVALID_CALENDAR = "invalid-calendar"  # facts: parser
    INVALID_JSON = "invalid-json"  # facts: parser
    NOT_A_LIST = "not-a-list"  # facts: wanted (posts, events), got (one, error, other), message


class MailerError(Exception):
    """Base class for every error this package raises on purpose."""


class ConfigError(MailerError):
    """A setting is missing or invalid; the message names the setting."""


class ContentError(MailerError):
    """A content file or source could not be read; the message names it and the problem.

    A whole-source failure also says which `failure` it is, with the `facts` its Dutch
    wording needs; the message stays the technical line for operators.
    """

    def __init__(self, where: str, problem: str, failure: Failure | None = None,
                 **facts: Any):
        super().__init__(f"{where}: {problem}")
        self.where = where
        self.problem = problem
        self.failure = failure
        self.facts = facts


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
