"""SendGrid emulator: v3 mail/send with personalizations; 202 + X-Message-Id.

The checks are the limits of section 2 of /work/shared/reference/mail-providers.md; each
problem is answered 400 with `{"errors": [{"message", "field", "help"}]}`, as documented.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable

from werkzeug.wrappers import Request, Response

from tests.emulators.base import Emulator, json_response, string_bytes, valid_address

FORBIDDEN_HEADERS = {"x-sg-id", "x-sg-eid", "received", "dkim-signature", "content-type",
                     "content-transfer-encoding", "to", "from", "subject", "reply-to", "cc",
                     "bcc"}
RECIPIENT_FIELDS = ("to", "cc", "bcc")
MAX_PERSONALIZATIONS = MAX_RECIPIENTS = 1000
MAX_CATEGORIES, MAX_CATEGORY_CHARS = 10, 255
MAX_GROUPS_TO_DISPLAY = 25
MAX_SCHEDULE_AHEAD = 72 * 3600  # send_at, in seconds from now
# The doc gives "substitutions ... <=10,000 bytes per personalization" and "total custom args
# <10,000 bytes" without saying what is counted: string_bytes counts keys and values. SendGrid
# merges the message's custom_args into each personalization's, so their total is taken per
# personalization; over the whole request, 1000 personalizations with an id each (what the
# docs recommend for correlation) could not be sent.
MAX_SUBSTITUTION_BYTES = 10_000  # at most
CUSTOM_ARGS_BYTES_BELOW = 10_000  # strictly less

Problem = tuple[str, str | None]


def _error(message: str, field: str | None = None, status: int = 400) -> Response:
    return json_response({"errors": [{"message": message, "field": field, "help": None}]}, status)


class SendGridEmulator(Emulator):
    """Validates bearer key, < 30 MB and the documented request limits: 1-1000
    personalizations, 1000 recipients (to + cc + bcc), each address once, names without
    ';' or ',', ASCII `from`, reply_to or reply_to_list, categories, string and allowed
    headers, string custom_args/substitutions and their sizes, content order, send_at."""

    name = "sendgrid"

    def __init__(self, key: str = "test-key", *, now: Callable[[], float] = time.time, **kw):
        super().__init__(key, **kw)
        self.now = now  # unix seconds, for the send_at bound

    def is_send(self, request: Request) -> bool:
        return request.method == "POST" and request.path == "/v3/mail/send"

    def handle(self, request: Request) -> Response:
        if request.headers.get("Authorization") != f"Bearer {self.key}":
            return _error("The provided authorization grant is invalid, expired, or revoked",
                          status=401)
        if not self.is_send(request):
            return _error("not found", status=404)
        if (request.content_length or 0) >= 30 * 1000 * 1000:
            return _error("content too large", status=413)
        try:
            payload = json.loads(request.get_data())
        except ValueError:
            return _error("Bad Request")
        problem = self._validate(payload)
        if problem:
            return _error(*problem)
        self.accept([self._record(payload, p) for p in payload["personalizations"]])
        return Response(b"", 202, {"X-Message-Id": uuid.uuid4().hex[:22]})

    def _validate(self, p: dict) -> Problem | None:
        people = p.get("personalizations")
        if not isinstance(people, list) or not 1 <= len(people) <= MAX_PERSONALIZATIONS:
            return "The personalizations field is required and must have at least one " \
                   "personalization, at most 1000.", "personalizations"
        return self._message_problem(p) or self._people_problem(p, people)

    def _message_problem(self, p: dict) -> Problem | None:
        """What is wrong with the message-level fields, if anything."""
        if not (p.get("from") or {}).get("email"):
            return "The from object must be provided for every email send.", "from.email"
        if p.get("reply_to") and p.get("reply_to_list"):
            return "Use either reply_to or reply_to_list, not both.", "reply_to"
        args = string_bytes(p.get("custom_args") or {})
        if args is None or string_bytes(p.get("headers") or {}) is None:
            return "Bad Request", None
        if args >= CUSTOM_ARGS_BYTES_BELOW:
            return "Custom args must total less than 10,000 bytes.", "custom_args"
        if _reserved_header(p.get("headers")):
            return "Invalid header", "headers"
        return (_from_problem(p["from"], "from") or _content_problem(p)
                or _categories_problem(p.get("categories"))
                or self._send_at_problem(p, "send_at") or _asm_problem(p.get("asm")))

    def _people_problem(self, p: dict, people: list[dict]) -> Problem | None:
        seen: set[str] = set()
        message_args = p.get("custom_args") or {}
        message_bytes = string_bytes(message_args) or 0
        for i, person in enumerate(people):
            if not person.get("to"):
                return "The to array is required for all personalization objects", \
                    f"personalizations.{i}.to"
            if not (person.get("subject") or p.get("subject")):
                return "The subject is required.", "subject"
            problem = (_recipients_problem(person, i, seen)
                       or _personal_fields_problem(person, i, message_args, message_bytes)
                       or _from_problem(person.get("from"), f"personalizations.{i}.from")
                       or self._send_at_problem(person, f"personalizations.{i}.send_at"))
            if problem:
                return problem
        if len(seen) > MAX_RECIPIENTS:  # each address once: seen counts every recipient
            return "At most 1000 recipients (to, cc and bcc) per request.", "personalizations"
        return None

    def _send_at_problem(self, fields: dict, at: str) -> Problem | None:
        """send_at at most 72 hours ahead (the doc states it for the message's send_at; a
        personalization's overrides that one, so it is held to the same bound)."""
        when = fields.get("send_at")
        if isinstance(when, int | float) and when > self.now() + MAX_SCHEDULE_AHEAD:
            return "send_at may be at most 72 hours ahead.", at
        return None

    def _record(self, payload: dict, person: dict) -> dict:
        record = {"to": person["to"][0]["email"], "subject": person.get("subject")
                  or payload.get("subject"),
                  "metadata": {**payload.get("custom_args", {}), **person.get("custom_args", {})},
                  "headers": {**payload.get("headers", {}), **person.get("headers", {})}}
        if self.keep_messages:
            subs = person.get("substitutions") or {}
            for c in payload.get("content", []):
                body = c["value"]
                for key, value in subs.items():
                    body = body.replace(key, value)
                record["html" if c["type"] == "text/html" else "text"] = body
        return record


def _content_problem(p: dict) -> Problem | None:
    content = p.get("content") or []
    if not content and not p.get("template_id"):
        return "Unless a valid template_id is provided, the content parameter is required.", \
            "content"
    types = [c.get("type") for c in content]
    if "text/html" in types and "text/plain" in types and \
            types.index("text/plain") > types.index("text/html"):
        return "text/plain must come before text/html", "content"
    return None


def _from_problem(sender: dict | None, at: str) -> Problem | None:
    """`from` must be ASCII. The doc does not say whether that includes the name: held to
    it too (format_address, which makes our sender, writes a non-ASCII name as ASCII RFC 2047
    encoded words)."""
    if sender and not f"{sender.get('email') or ''}{sender.get('name') or ''}".isascii():
        return "Unicode is not supported in the from field.", at
    return None


def _categories_problem(categories: object) -> Problem | None:
    """At most 10 categories, unique, each a string of at most 255 characters."""
    if not categories:
        return None
    if not isinstance(categories, list) or len(categories) > MAX_CATEGORIES:
        return "At most 10 categories per request.", "categories"
    if any(not isinstance(c, str) or len(c) > MAX_CATEGORY_CHARS for c in categories):
        return "A category is a string of at most 255 characters.", "categories"
    if len(set(categories)) != len(categories):
        return "Categories must be unique.", "categories"
    return None


def _recipients_problem(person: dict, i: int, seen: set[str]) -> Problem | None:
    """Valid addresses in to/cc/bcc, each once in the request; names without ';' or ','."""
    for kind in RECIPIENT_FIELDS:
        for who in person.get(kind) or ():
            email = str(who.get("email", "")).lower()
            if not valid_address(email):
                return "Does not contain a valid address.", f"personalizations.{i}.{kind}"
            if email in seen:
                return "Each email address in the personalization block should be unique " \
                       "between to, cc, and bcc.", f"personalizations.{i}.{kind}"
            seen.add(email)
            name = who.get("name")
            if isinstance(name, str) and (";" in name or "," in name):
                return "A recipient's name may not contain ';' or ','.", \
                    f"personalizations.{i}.{kind}.name"
    return None


def _reserved_header(headers: dict | None) -> bool:
    return bool(headers) and not FORBIDDEN_HEADERS.isdisjoint(map(str.lower, headers))


def _personal_fields_problem(person: dict, i: int, message_args: dict, message_bytes: int
                             ) -> Problem | None:
    """Headers, custom_args and substitutions hold strings only (else a bare Bad Request),
    no reserved header; substitutions at most 10,000 bytes; the message's and this
    personalization's custom_args together under 10,000 bytes."""
    headers = person.get("headers")
    substitutions = string_bytes(person.get("substitutions") or {})
    args = string_bytes(person.get("custom_args") or {})
    if substitutions is None or args is None or (headers and string_bytes(headers) is None):
        return "Bad Request", None
    if _reserved_header(headers):
        return "Invalid header", f"personalizations.{i}.headers"
    if substitutions > MAX_SUBSTITUTION_BYTES:
        return "Substitutions may hold at most 10,000 bytes per personalization.", \
            f"personalizations.{i}.substitutions"
    # The sum bounds the merged size (a key in both counts twice): merge only near the limit.
    if args and message_bytes + args >= CUSTOM_ARGS_BYTES_BELOW:
        merged = string_bytes({**message_args, **person["custom_args"]}) or 0
        if merged >= CUSTOM_ARGS_BYTES_BELOW:
            return "Custom args must total less than 10,000 bytes.", \
                f"personalizations.{i}.custom_args"
    return None


def _asm_problem(asm: object) -> Problem | None:
    groups = asm.get("groups_to_display") if isinstance(asm, dict) else None
    if groups and len(groups) > MAX_GROUPS_TO_DISPLAY:
        return "asm.groups_to_display holds at most 25 groups.", "asm.groups_to_display"
    return None
