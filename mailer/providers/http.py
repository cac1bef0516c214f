"""The recipe every HTTP provider follows: build payload -> post -> parse per recipient.

Only a failure of the whole call raises ProviderError (in the manner of django-anymail);
each subclass says how a batch becomes a request and how an answer becomes statuses.
Each thread gets its own `requests.Session` (connection reuse without sharing sockets).
"""

from __future__ import annotations

import hashlib
import html
import json
import operator
import os
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from json.encoder import encode_basestring
from typing import Any, ClassVar

import requests
import urllib3

from mailer.clock import Clock
from mailer.errors import ConfigError, ProviderError
from mailer.models import Batch, DeliveryEvent, Recipient, RecipientStatus
from mailer.render.personalize import PersonalTemplate

PAYLOAD_TARGET = 2 * 1024 * 1024  # per call; keeps peak memory low and flat over threads
RETRYABLE_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


@dataclass(frozen=True)
class Call:
    """One HTTP request a provider wants made."""

    method: str
    path: str
    json: Any = None
    data: Any = None
    params: Mapping[str, Any] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    json_bytes: bytes | None = None  # a JSON body the provider encoded itself

    def body(self) -> bytes | None:
        """The JSON body as it goes on the wire, if this call has one."""
        if self.json_bytes is not None:
            return self.json_bytes
        if self.json is not None:
            return encode_json(self.json)
        return None


def encode_json(value: Any) -> bytes:
    """Compact UTF-8 JSON, as every JSON call is sent."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


# The function encode_json quotes each string with (json.dumps with ensure_ascii=False;
# C-accelerated). Per-recipient JSON written as text quotes with it, so the text is exactly
# what encode_json gives for the same dicts (tests check): building those dicts for the
# encoder cost more than writing the text, ~2 us per recipient of SendGrid and Brevo.
quoted = encode_basestring


def json_object(fields: Mapping[str, str]) -> str:
    """encode_json(fields) as text, for a flat mapping of strings."""
    return json_object_slots(fields) % tuple(map(quoted, fields.values()))


def json_objects(keys: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """json_object(dict(zip(keys, row))) for each row of string values, the rest of the
    text written once: per row only the values are quoted and put in their slots."""
    slots = json_object_slots(keys)
    return [slots % tuple(map(quoted, row)) for row in rows]


def json_object_slots(keys: Sequence[str]) -> str:
    """json_object's text for `keys` with a %s slot for each value, to fill by
    %-formatting with quoted values (a '%' in a key is doubled)."""
    return "{" + ",".join(quoted(k).replace("%", "%%") + ":%s" for k in keys) + "}"


def json_with_entries(payload: Mapping[str, Any], entries: Sequence[str]) -> bytes:
    """encode_json(payload) with its last value, an empty list, holding `entries`: objects
    a provider wrote as JSON text itself (with `quoted`, `json_object`...)."""
    head = encode_json(payload)
    if not head.endswith(b"[]}"):
        raise ValueError("the payload's last value must be the empty list of entries")
    return head[:-2] + ",".join(entries).encode() + b"]}"


# What quote_plus does to each UTF-8 byte: the always-safe ASCII stays, space becomes
# '+', every other byte %XX. As a str.translate table over the bytes read as Latin-1.
_FORM_QUOTED = {b: chr(b) if chr(b).isascii() and (chr(b).isalnum() or chr(b) in "_.-~")
                else "+" if b == 0x20 else f"%{b:02X}" for b in range(256)}


def form_encode(fields: Sequence[tuple[str, str]]) -> bytes:
    """An application/x-www-form-urlencoded body, byte for byte what requests sends for
    `data=fields` (urlencode with quote_plus), quoting in C rather than byte by byte in
    Python: a Mailgun call quotes ~0.7 MB of recipient variables."""
    def plus_quoted(text: str) -> str:
        return text.encode().decode("latin-1").translate(_FORM_QUOTED)

    return "&".join(f"{plus_quoted(k)}={plus_quoted(v)}" for k, v in fields).encode()


def json_inside(text: str) -> str:
    """`text` escaped as the inside of a JSON string, exactly as encode_json escapes it.

    JSON escapes character by character, so escaping parts and joining them gives the
    same text as escaping the joined whole."""
    return json.dumps(text, ensure_ascii=False)[1:-1]


@dataclass(frozen=True)
class JsonTemplate:
    """A personal template whose fill is already the UTF-8 inside of a JSON string.

    A provider that sends each recipient the whole body escapes and encodes its large
    literal parts once per batch instead of once per recipient; per recipient only the
    values are escaped, and the rest is joining bytes.
    """

    parts: tuple[bytes, ...]
    keys: tuple[str, ...]
    escape_html: bool

    @classmethod
    def of(cls, template: PersonalTemplate) -> JsonTemplate:
        """The JSON-escaped, encoded form of a template."""
        return cls(tuple(json_inside(p).encode() for p in template.parts), template.keys,
                   template.escape_html)

    def fill(self, values: Mapping[str, str], out: list[bytes]) -> None:
        """Append the pieces of json_inside(template.fill(values)).encode() to `out`,
        without redoing the literal parts (one join of all pieces then copies each once)."""
        out.append(self.parts[0])
        for key, literal in zip(self.keys, self.parts[1:], strict=True):
            value = values[key]
            out.append(json_inside(html.escape(value) if self.escape_html else value).encode())
            out.append(literal)


def batch_key(batch: Batch) -> str:
    """A key naming exactly these rows of this issue: stable across resends of the batch."""
    explicit = batch.metadata.get("batch_key")
    if explicit:
        return explicit
    ids = ",".join(str(r.outbox_id) for r in batch.recipients)
    return hashlib.sha256(f"{batch.issue_id}:{ids}".encode()).hexdigest()[:32]


def body_once(batch: Batch, placeholder: Callable[[str], str],
              name: Callable[[str], str] = str) -> tuple[str, str, list[dict[str, str]]]:
    """HTML and text written once with provider placeholders, plus each recipient's values
    under `name(key)` (the provider's variable name; the key itself by default).

    A value that HTML-escaping changes (a name with '&') gets a separate escaped variable,
    decided per batch, so the common case sends each value once.
    """
    html_body, text_body, names, rows = _body_once(batch, placeholder, name)
    return html_body, text_body, [dict(zip(names, row, strict=True)) for row in rows]


def body_once_json(batch: Batch, placeholder: Callable[[str], str],
                   name: Callable[[str], str] = str) -> tuple[str, str, list[str]]:
    """body_once with each recipient's values as the JSON object encode_json writes for
    them, without the dicts."""
    html_body, text_body, names, rows = _body_once(batch, placeholder, name)
    return html_body, text_body, json_objects(names, rows)


def _body_once(batch: Batch, placeholder: Callable[[str], str], name: Callable[[str], str]
               ) -> tuple[str, str, list[str], list[tuple[str, ...]]]:
    """The bodies with placeholders, the variable names, and each recipient's values in
    the names' order."""
    html_keys, text_keys = batch.html_template.keys, batch.text_template.keys
    escaped = sorted(k for k in set(html_keys)
                     if _NEEDS_ESCAPE.search("".join(r.values[k] for r in batch.recipients)))
    html_body = batch.html_template.with_syntax(
        lambda k: placeholder(f"{k}_html" if k in escaped else k))
    text_body = batch.text_template.with_syntax(placeholder)
    plain = sorted(set(text_keys) | (set(html_keys) - set(escaped)))
    names = [name(k) for k in plain] + [name(f"{k}_html") for k in escaped]
    return html_body, text_body, names, _personal_values(batch.recipients, plain, escaped)


# The characters html.escape(quote=True) replaces: a value without them is the same escaped.
_NEEDS_ESCAPE = re.compile(r"[&<>\"']")


def _personal_values(recipients: Sequence[Recipient], plain: list[str], escaped: list[str]
                     ) -> list[tuple[str, ...]]:
    # Per recipient only C-level work: itemgetter picks the values (plain, then escaped).
    if not plain and not escaped:
        return [() for _ in recipients]
    pick = operator.itemgetter(*plain, *escaped)
    if len(plain) + len(escaped) == 1:
        values = [(v,) for v in map(pick, (r.values for r in recipients))]
    else:
        values = [pick(r.values) for r in recipients]
    if escaped:
        cut = len(plain)
        values = [v[:cut] + tuple(map(html.escape, v[cut:])) for v in values]
    return values


def split_headers(batch: Batch) -> tuple[dict[str, str], list[dict[str, str]]]:
    """Headers equal for every recipient (sent once) and the personal rest, per recipient."""
    shared = _shared_headers(batch)
    return {**batch.headers, **shared}, _personal_headers(batch, shared)


def _personal_headers(batch: Batch, shared: Mapping[str, str]) -> list[dict[str, str]]:
    """Each recipient's headers but the shared ones, with its Message-ID first."""
    return [{"Message-ID": r.message_id,
             **{k: v for k, v in r.headers.items() if k not in shared}}
            for r in batch.recipients]


def _shared_headers(batch: Batch) -> dict[str, str]:
    """The recipients' headers that are the same for all of them."""
    first = batch.recipients[0].headers if batch.recipients else {}
    return {k: v for k, v in first.items() if all(r.headers.get(k) == v for r in batch.recipients)}


def split_header_objects(batch: Batch) -> tuple[dict[str, str], list[str]]:
    """split_headers with each recipient's personal headers as the JSON text encode_json
    writes for them.

    Recipients of a send all carry the same personal header names, so the text around the
    values is written once per batch (json_object_slots); a batch whose recipients differ
    in their header names gets the general form."""
    shared = _shared_headers(batch)
    first = tuple(batch.recipients[0].headers) if batch.recipients else ()
    names = tuple(k for k in first if k not in shared)
    if "Message-ID" in names or any(tuple(r.headers) != first for r in batch.recipients):
        texts = [json_object(h) for h in _personal_headers(batch, shared)]
    else:
        slots = json_object_slots(("Message-ID", *names))
        texts = [slots % tuple(map(quoted, (r.message_id, *map(r.headers.__getitem__, names))))
                 for r in batch.recipients]
    return {**batch.headers, **shared}, texts


def subject_of(batch: Batch) -> str:
    """The subject line, marked for test sends."""
    return ("[TEST] " if batch.test else "") + batch.subject


def retry_after_seconds(value: str | None) -> float | None:
    """Parse a Retry-After header: seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        from datetime import UTC, datetime

        return max((parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds(), 0.0)
    except (TypeError, ValueError):
        return None


def _never_connected(exc: requests.exceptions.ConnectionError) -> bool:
    """Whether a connection error happened before any byte of the request was sent: the
    connection was refused or the name did not resolve (urllib3's NewConnectionError and
    its subclass NameResolutionError, whose text does not say NewConnectionError)."""
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, urllib3.exceptions.NewConnectionError)


class HttpProvider:
    """Base of the HTTP API providers; subclasses fill in the provider's own shapes."""

    name: ClassVar[str] = ""
    max_batch: ClassVar[int] = 500
    max_payload_bytes: ClassVar[int] = 10 * 1024 * 1024
    max_message_bytes: ClassVar[int] = 10 * 1024 * 1024
    body_once: ClassVar[bool] = True  # whether the body travels once per batch
    idempotent: ClassVar[bool] = False  # whether resending a batch can never deliver twice
    default_url: ClassVar[str] = ""

    def __init__(self, base_url: str, key: str, sender: str, reply_to: str, clock: Clock, *,
                 timeout: float = 30.0, options: Mapping[str, str] | None = None):
        self.base_url = base_url.rstrip("/")
        self.key = key
        self.sender = sender
        self.reply_to = reply_to
        self.clock = clock
        self.timeout = timeout
        self.options = dict(options or {})
        self._local = threading.local()

    @classmethod
    def from_settings(cls, settings: Any, *, sender: str, clock: Clock) -> HttpProvider:
        """Build from settings; the key comes from MAILER_PROVIDER_KEY only."""
        if not settings.provider_key:
            raise ConfigError(f"setting provider_key: provider {cls.name} needs an API key; "
                              "set MAILER_PROVIDER_KEY in the environment")
        return cls(settings.provider_url or cls.default_url, settings.provider_key, sender,
                   settings.reply_to, clock, timeout=settings.request_timeout,
                   options=cls.options_from(settings))

    @classmethod
    def options_from(cls, settings: Any) -> dict[str, str]:
        """Provider-specific settings (sending domain, message stream)."""
        return {}

    # -- the recipe -------------------------------------------------------------------

    def send_batch(self, batch: Batch) -> list[RecipientStatus]:
        """Send one batch; per-recipient statuses in recipient order."""
        if not batch.recipients:
            return []
        response = self.perform(self.build_call(batch))
        return self.parse_response(batch, response)

    def build_call(self, batch: Batch) -> Call:
        raise NotImplementedError

    def parse_response(self, batch: Batch, response: requests.Response) -> list[RecipientStatus]:
        raise NotImplementedError

    def auth_headers(self) -> dict[str, str]:
        """Headers that authenticate a request."""
        return {}

    def auth(self) -> Any:
        """A `requests` auth object, for providers that use HTTP Basic auth."""
        return None

    def session(self) -> requests.Session:
        """This thread's session: connections are reused, never shared between threads."""
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.headers.update({"Accept": "application/json", **self.auth_headers()})
            session.auth = self.auth()
            self._read_environment_once(session)
            self._local.session = session
        return session

    def _read_environment_once(self, session: requests.Session) -> None:
        """Take what requests would read from the environment on every request (proxies
        and no_proxy, CA bundle, ~/.netrc) once per session: scanning os.environ per
        call cost ~0.5 ms, ~10 us per recipient where a call carries whole messages."""
        session.proxies.update(requests.utils.get_environ_proxies(self.base_url))
        bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        if bundle:
            session.verify = bundle
        if session.auth is None:
            session.auth = requests.utils.get_netrc_auth(self.base_url)
        session.trust_env = False

    def perform(self, call: Call) -> requests.Response:
        """Make the request; turn transport failures and whole-call errors into ProviderError."""
        kwargs: dict[str, Any] = {"params": call.params, "headers": dict(call.headers),
                                  "timeout": (min(self.timeout, 10.0), self.timeout)}
        body = call.body()
        if body is not None:
            kwargs["data"] = body
            kwargs["headers"]["Content-Type"] = "application/json"
        elif call.data is not None:
            kwargs["data"] = call.data
        try:
            response = self.session().request(call.method, self.base_url + call.path, **kwargs)
        except requests.exceptions.ConnectTimeout as exc:
            raise ProviderError(f"{self.name}: could not connect: {exc}", retryable=True) from None
        except requests.exceptions.ConnectionError as exc:
            # Unless the connection was never made, the request may have been read and
            # acted on before the connection broke.
            never_sent = _never_connected(exc)
            raise ProviderError(f"{self.name}: connection failed: {exc}", retryable=True,
                                maybe_accepted=not never_sent) from None
        except requests.exceptions.Timeout as exc:
            raise ProviderError(f"{self.name}: no answer within {self.timeout:g} s: {exc}",
                                retryable=True, maybe_accepted=True) from None
        except requests.exceptions.RequestException as exc:
            raise ProviderError(f"{self.name}: request failed: {exc}", retryable=True,
                                maybe_accepted=True) from None
        if response.status_code >= 300 and not self.is_answer(response):
            raise self.call_error(response)
        return response

    def is_answer(self, response: requests.Response) -> bool:
        """Whether a non-2xx response is still a per-recipient answer to parse."""
        return False

    def call_error(self, response: requests.Response) -> ProviderError:
        """The ProviderError for a failed call, with retry advice from the headers."""
        text = response.text[:500]
        status = response.status_code
        return ProviderError(
            f"{self.name}: HTTP {status}: {self.error_message(response) or text}",
            retryable=status in RETRYABLE_STATUS, status=status,
            retry_after=self.retry_after(response), response_text=text,
        )

    def error_message(self, response: requests.Response) -> str:
        """The provider's own explanation in an error body, if it gave one."""
        try:
            data = response.json()
        except ValueError:
            return ""
        if isinstance(data, dict):
            return str(data.get("message") or data.get("Message") or data.get("errors") or "")
        return ""

    def retry_after(self, response: requests.Response) -> float | None:
        """Seconds to wait before the next call, from the response headers."""
        return retry_after_seconds(response.headers.get("Retry-After"))

    # -- defaults for the rest of the protocol ---------------------------------------

    def batch_limit(self, message_bytes: int) -> int:
        """Recipients per call that keep the payload within the provider's limit and our
        memory target (each thread holds one payload twice: as objects and as JSON)."""
        per_recipient = 2048 if self.body_once else message_bytes + 2048
        fixed = message_bytes if self.body_once else 0
        ceiling = min(self.max_payload_bytes, PAYLOAD_TARGET)
        room = max(ceiling - fixed, per_recipient)
        return max(1, min(self.max_batch, room // per_recipient))

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> list[DeliveryEvent]:
        """Webhooks are parsed in mailer.web.webhooks; kept for the protocol."""
        return []

    def reconcile(self, issue_id: int, recipients: Sequence[Recipient]
                  ) -> list[RecipientStatus | None]:
        """Without a look-up API nothing is known: the caller resends as a possible duplicate."""
        return [None] * len(recipients)
