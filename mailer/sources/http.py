"""The one HTTP client every remote source uses: timeouts, retries, conditional GET, size cap."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit
from urllib.request import url2pathname

import requests

from mailer.errors import Failure, MailerError

SCHEMES = ("http", "https", "file")
RETRY_STATUSES = {500, 502, 503, 504}
REDIRECT_STATUSES = {301, 302, 303, 307, 308}
CHUNK = 64 * 1024


def _version() -> str:
    try:
        return version("weerbaarnl-mailer")
    except PackageNotFoundError:
        return "dev"


USER_AGENT = f"WeerbaarNL-mailer/{_version()} (+https://www.platformjep.example.nl)"


class FetchError(MailerError):
    """A document could not be fetched; the message names the URL and the reason (for
    operators), `failure` and `facts` say it for mailer.sources.failures to word."""

    def __init__(self, url: str, reason: str, failure: Failure, **facts: Any):
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason
        self.failure = failure
        self.facts = facts


@dataclass(frozen=True)
class Validators:
    """What a server told us last time, so it can answer 304 Not Modified."""

    etag: str | None = None
    last_modified: str | None = None

    def headers(self) -> dict[str, str]:
        """Conditional request headers for these validators."""
        h = {}
        if self.etag:
            h["If-None-Match"] = self.etag
        if self.last_modified:
            h["If-Modified-Since"] = self.last_modified
        return h


@dataclass(frozen=True)
class FetchPolicy:
    """Limits for one fetch: seconds to wait, bytes to accept, retries and redirects."""

    timeout: float = 20.0
    max_bytes: int = 20 * 1024 * 1024
    retries: int = 2
    backoff: float = 0.5  # seconds before the first retry; doubles each time
    max_redirects: int = 5


@dataclass(frozen=True)
class Document:
    """A fetched body with the URL it finally came from and the headers that matter."""

    url: str
    content: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    validators: Validators = Validators()
    not_modified: bool = False

    @property
    def content_type(self) -> str:
        """The media type without parameters, lower-cased ('' when unknown)."""
        return self.headers.get("content-type", "").split(";")[0].strip().lower()


class HttpClient:
    """One shared requests session for all sources, with the project's User-Agent."""

    def __init__(self, policy: FetchPolicy = FetchPolicy(),
                 sleep: Callable[[float], None] = time.sleep):
        self.policy = policy
        self.sleep = sleep
        self.session = requests.Session()
        self.session.headers.update({"User-Agent": USER_AGENT, "Accept-Encoding": "gzip, deflate"})

    def close(self) -> None:
        """Release pooled connections."""
        self.session.close()

    def get(self, url: str, *, validators: Validators | None = None,
            params: Mapping[str, str] | None = None, accept: str | None = None,
            policy: FetchPolicy | None = None) -> Document:
        """GET a URL (or read a file: URL); 304 gives a Document with not_modified set."""
        policy = policy or self.policy
        scheme = urlsplit(url).scheme.lower()
        if scheme not in SCHEMES:
            raise FetchError(url, f"scheme {scheme or '(none)'!r} not allowed; "
                                  "use http, https or file", Failure.NOT_ALLOWED)
        if scheme == "file":
            return _read_file(url, policy.max_bytes)
        headers = {"Accept": accept} if accept else {}
        headers.update(validators.headers() if validators else {})
        if params:
            url = requests.Request("GET", url, params=params).prepare().url or url
        for _hop in range(policy.max_redirects + 1):
            response = self._get_with_retries(url, headers, policy)
            if response.status_code not in REDIRECT_STATUSES:
                return self._document(url, response, policy)
            location = response.headers.get("location")
            response.close()
            if not location:
                raise FetchError(url, f"HTTP {response.status_code} redirect without Location",
                                 Failure.REDIRECTS)
            target = urljoin(url, location)
            if urlsplit(target).scheme.lower() not in ("http", "https"):
                raise FetchError(url, f"redirect to a non-http(s) URL refused: {target}",
                                 Failure.REDIRECTS)
            url = target
        raise FetchError(url, f"more than {policy.max_redirects} redirects", Failure.REDIRECTS)

    def _get_with_retries(self, url: str, headers: dict, policy: FetchPolicy) -> requests.Response:
        delay = policy.backoff
        for attempt in range(policy.retries + 1):
            last = attempt == policy.retries
            try:
                response = self.session.get(url, headers=headers, timeout=policy.timeout,
                                            allow_redirects=False, stream=True)
            except requests.Timeout:
                # A server that hangs would hang again: report instead of waiting 3 times.
                raise FetchError(url, f"timed out after {policy.timeout:g} s", Failure.TIMEOUT,
                                 seconds=policy.timeout) from None
            except requests.ConnectionError as exc:
                if last:
                    raise FetchError(url, f"connection failed: {_root_cause(exc)}",
                                     _connection_failure(exc)) from None
            except requests.RequestException as exc:
                raise FetchError(url, f"request failed: {exc}", Failure.CONNECTION) from None
            else:
                if response.status_code not in RETRY_STATUSES or last:
                    return response
                response.close()
            self.sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")

    def _document(self, url: str, response: requests.Response, policy: FetchPolicy) -> Document:
        with response:
            headers = {k.lower(): v for k, v in response.headers.items()}
            validators = Validators(headers.get("etag"), headers.get("last-modified"))
            if response.status_code == 304:
                return Document(url, b"", headers, validators, not_modified=True)
            if response.status_code >= 400:
                raise FetchError(url, f"HTTP {response.status_code} {response.reason}",
                                 Failure.HTTP_STATUS, status=response.status_code)
            if response.status_code != 200:
                raise FetchError(url, f"unexpected HTTP {response.status_code} {response.reason}",
                                 Failure.HTTP_STATUS, status=response.status_code)
            return Document(url, _read_capped(url, response, policy), headers, validators)


def _read_capped(url: str, response: requests.Response, policy: FetchPolicy) -> bytes:
    """The decoded body, refusing more than max_bytes (also after gzip expansion)."""
    declared = response.headers.get("content-length", "")
    encoded = response.headers.get("content-encoding")
    if declared.isdigit() and not encoded and int(declared) > policy.max_bytes:
        raise FetchError(url, f"document of {int(declared)} bytes exceeds the {policy.max_bytes} "
                              "byte limit", Failure.TOO_LARGE, limit=policy.max_bytes)
    chunks, size = [], 0
    try:
        for chunk in response.iter_content(CHUNK):
            size += len(chunk)
            if size > policy.max_bytes:
                raise FetchError(url, f"document exceeds the {policy.max_bytes} byte limit",
                                 Failure.TOO_LARGE, limit=policy.max_bytes)
            chunks.append(chunk)
    except requests.Timeout:
        raise FetchError(url, f"timed out after {policy.timeout:g} s while reading",
                         Failure.TIMEOUT, seconds=policy.timeout) from None
    except requests.RequestException as exc:
        raise FetchError(url, f"reading the response failed: {_root_cause(exc)}",
                         Failure.CUT_OFF) from None
    body = b"".join(chunks)
    if declared.isdigit() and not encoded and len(body) < int(declared):
        raise FetchError(url, f"truncated response: {len(body)} of {declared} bytes",
                         Failure.CUT_OFF)
    return body


def _read_file(url: str, max_bytes: int) -> Document:
    path = Path(url2pathname(unquote(urlsplit(url).path)))
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise FetchError(url, f"file of {size} bytes exceeds the {max_bytes} byte limit",
                             Failure.TOO_LARGE, limit=max_bytes)
        return Document(url, path.read_bytes())
    except OSError as exc:
        raise FetchError(url, f"cannot read file: {exc.strerror or exc}",
                         Failure.UNREADABLE_FILE,
                         missing=isinstance(exc, FileNotFoundError)) from None


def _connection_failure(exc: BaseException) -> Failure:
    """Which connection failure a requests/urllib3 exception chain ends in."""
    for cause in _chain(exc):
        if isinstance(cause, ConnectionRefusedError):
            return Failure.REFUSED
        if isinstance(cause, socket.gaierror):
            return Failure.UNKNOWN_HOST
    return Failure.CONNECTION


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and the reasons and contexts under it, outermost first."""
    found = [exc]
    while len(found) < 20:
        inner = getattr(found[-1], "reason", None)
        if not isinstance(inner, BaseException):
            inner = found[-1].__context__
        if inner is None or inner in found:
            break
        found.append(inner)
    return found


def _root_cause(exc: BaseException) -> str:
    """The innermost reason of a requests/urllib3 exception chain, in one line."""
    seen = exc
    while seen.__context__ is not None or getattr(seen, "reason", None) is not None:
        inner = getattr(seen, "reason", None) or seen.__context__
        if not isinstance(inner, BaseException) or inner is seen:
            break
        seen = inner
    return str(seen).splitlines()[0] if str(seen) else type(seen).__name__
