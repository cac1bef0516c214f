"""What every fetched (non-local) source shares: the HTTP client, topics, problems, limits."""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from dataclasses import replace
from datetime import timedelta
from typing import Any, ClassVar
from urllib.parse import urljoin, urlsplit

from mailer.clock import Clock, SystemClock
from mailer.errors import ContentError
from mailer.models import EVENT_TYPES
from mailer.sanitize import DROPPED_BLOCK, fit_summary, sanitize_html
from mailer.sources import SourceConfig, Window
from mailer.sources.boilerplate import drop_boilerplate
from mailer.sources.config import normalize_tag
from mailer.sources.http import Document, HttpClient, Validators
from mailer.sources.shortcodes import drop_shortcodes
from mailer.tracking_params import unwrap_google_redirect, without_tracking

SUMMARY_CHARS = 400
ONLINE = re.compile(r"\b(online|webinar|zoom|teams|livestream)\b", re.IGNORECASE)
ABSOLUTE = ("http://", "https://", "mailto:")
HREF = re.compile(r'href="([^"]*)"')
# A root-relative path that urljoin would only append to the base's scheme and host: no
# dot segments, empty segments, parameters, query or fragment to normalise.
PLAIN_PATH = re.compile(r"/(?!/)[A-Za-z0-9_~%!$&'()*+,=:@/.-]*")
EVENT_TYPE_NAMES = {normalize_tag(k): k for k in EVENT_TYPES} | {
    normalize_tag(v): k for k, v in EVENT_TYPES.items()}


class RemoteSource:
    """Base for sources read over HTTP (or file:): one fetch, its validators and problems.

    After `fetch()`: `problems` lists entries that were skipped, `warnings` entries left out
    on purpose (the fetch is still complete), `validators` holds what the
    server sent for the next conditional GET, `not_modified` is set on 304, and `complete` /
    `window` say which missing items the fetch proves gone (see `Window`).
    """

    kind: ClassVar[str]
    options: ClassVar[frozenset[str]] = frozenset({"timeout", "link", "summary_chars"})
    conditional: ClassVar[bool] = True  # single-document kinds may use ETag/Last-Modified

    def __init__(self, config: SourceConfig, *, http: HttpClient | None = None,
                 clock: Clock | None = None, horizon_weeks: int = 12, **_: Any):
        self.config = config
        self.http = http or HttpClient()
        self.clock = clock or SystemClock()
        self.horizon = timedelta(weeks=horizon_weeks)
        self.problems: list[ContentError] = []
        self.warnings: list[ContentError] = []
        self.validators: Validators | None = None
        self.not_modified = False
        self.complete = False
        self.window: Window | None = None

    @property
    def name(self) -> str:
        """The configured name of this source."""
        return self.config.name

    def option(self, key: str, default: Any = None) -> Any:
        """A kind-specific option from sources.toml."""
        return self.config.options.get(key, default)

    def get(self, url: str, *, conditional: bool = False, **kwargs: Any) -> Document:
        """Fetch with this source's limits; conditional GET only when asked and allowed."""
        policy = self.http.policy
        if self.option("timeout") is not None:
            policy = replace(policy, timeout=float(self.option("timeout")))
        validators = self.validators if conditional and self.conditional else None
        document = self.http.get(url, validators=validators, policy=policy, **kwargs)
        if conditional and self.conditional:
            self.not_modified = document.not_modified
            fresh, known = document.validators, self.validators or Validators()
            # A 304 need not repeat the validators; keep the ones it did not resend.
            self.validators = Validators(fresh.etag or known.etag,
                                         fresh.last_modified or known.last_modified) \
                if document.not_modified else fresh
        return document

    def problem(self, where: str, what: str) -> None:
        """Record one skipped entry; the rest of the source still syncs."""
        self.problems.append(ContentError(f"{self.name}: {where}", what))

    def note(self, where: str, what: str) -> None:
        """Record an entry left out on purpose; unlike a problem, the fetch stays complete."""
        self.warnings.append(ContentError(f"{self.name}: {where}", what))

    def topics_for(self, tags: Iterable[str]) -> tuple[str, ...]:
        """Our topics for a set of source tags, through the source's mapping ('*' = all)."""
        mapping = self.config.topics
        found = [mapping[t] for t in (normalize_tag(tag) for tag in tags) if t in mapping]
        if "*" in mapping:
            found.append(mapping["*"])
        return tuple(dict.fromkeys(found))

    def event_type_for(self, tags: Iterable[str]) -> str:
        """A category naming one of our event types wins; else the source's event_type."""
        for tag in tags:
            match = EVENT_TYPE_NAMES.get(normalize_tag(tag))
            if match:
                return match
        return self.option("event_type") or "bijeenkomst"

    def summary_chars(self) -> int:
        """How much summary text to keep per item."""
        return int(self.option("summary_chars", SUMMARY_CHARS))

    def link(self, url: str | None, base: str) -> str | None:
        """An absolute http(s) link without tracking parameters, resolved against base; else
        the source's `link` option."""
        found = self.absolute_link(url, base)
        return without_tracking(found) if found and found != self.option("link") else found

    def absolute_link(self, url: str | None, base: str) -> str | None:
        """`link` as the source wrote it, tracking parameters and all (ids use it)."""
        if url:
            absolute = resolve(base, url)
            if absolute.startswith(("http://", "https://")):
                return absolute
        fallback = self.option("link")
        return str(fallback) if fallback else None


def is_online(location: str | None) -> bool:
    """Whether a location text says the event happens online."""
    return bool(location and (ONLINE.search(location) or location.startswith(("http://",
                                                                               "https://"))))


def summarize(fragment: str, max_chars: int, base: str, own_url: str | None = None) -> str:
    """Sanitised summary HTML with absolute links, without shortcodes left as text and the
    "read more" boilerplate that points back to the item at own_url, cut to max_chars of text
    when longer."""
    if not fragment:
        return ""
    fragment = drop_shortcodes(fragment)
    if "<" in fragment:
        # Dropped block tags keep a space at their place: "<h3>Kop</h3><div>Tekst".
        fragment = DROPPED_BLOCK.sub(r" \g<0> ", fragment)
    cleaned = drop_boilerplate(absolute_links(sanitize_html(fragment), base), own_url)
    return fit_summary(cleaned, max_chars)


def absolute_links(fragment: str, base: str) -> str:
    """Resolve relative hrefs in sanitised HTML against the feed's base, unwrap Google's
    redirects and drop tracking parameters."""
    def fix(match: re.Match) -> str:
        written = html.unescape(match.group(1))
        target = unwrap_google_redirect(written)
        if target.startswith(ABSOLUTE):
            target = without_tracking(target) if "?" in target else target
        else:
            target = without_tracking(resolve(base, target))
        return match.group(0) if target == written else f'href="{html.escape(target)}"'
    return HREF.sub(fix, fragment) if 'href="' in fragment else fragment


def resolve(base: str, url: str) -> str:
    """url resolved against base; absolute http(s) URLs as they are (the common, cheap case)."""
    url = url.strip()
    if url.startswith(("http://", "https://")) and " " not in url:
        return url
    if url.startswith("/") and PLAIN_PATH.fullmatch(url) and "/." not in url \
            and "//" not in url:
        parts = urlsplit(base)  # cached: every link of a feed has the same base
        if parts.scheme in ("http", "https") and parts.netloc:
            return f"{parts.scheme}://{parts.netloc}{url}"
    return urljoin(base, url)
