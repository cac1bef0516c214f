"""SendGrid emulator: v3 mail/send with personalizations; 202 + X-Message-Id."""

from __future__ import annotations

import json
import uuid

from werkzeug.wrappers import Request, Response

from tests.emulators.base import Emulator, json_response, valid_address

FORBIDDEN_HEADERS = {"x-sg-id", "x-sg-eid", "received", "dkim-signature", "content-type",
                     "content-transfer-encoding", "to", "from", "subject", "reply-to", "cc",
                     "bcc"}


def _error(message: str, field: str | None = None, status: int = 400) -> Response:
    return json_response({"errors": [{"message": message, "field": field, "help": None}]}, status)


class SendGridEmulator(Emulator):
    """Validates bearer key, 1000 personalizations/recipients, unique addresses, string
    headers/custom_args/substitutions, content order, 30 MB."""

    name = "sendgrid"

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

    def _validate(self, p: dict) -> tuple[str, str] | None:
        people = p.get("personalizations")
        if not isinstance(people, list) or not 1 <= len(people) <= 1000:
            return "The personalizations field is required and must have at least one " \
                   "personalization, at most 1000.", "personalizations"
        if not (p.get("from") or {}).get("email"):
            return "The from object must be provided for every email send.", "from.email"
        content = p.get("content") or []
        if not content and not p.get("template_id"):
            return "Unless a valid template_id is provided, the content parameter is required.", \
                "content"
        types = [c.get("type") for c in content]
        if "text/html" in types and "text/plain" in types and \
                types.index("text/plain") > types.index("text/html"):
            return "text/plain must come before text/html", "content"
        seen: set[str] = set()
        for i, person in enumerate(people):
            if not person.get("to"):
                return "The to array is required for all personalization objects", \
                    f"personalizations.{i}.to"
            if not (person.get("subject") or p.get("subject")):
                return "The subject is required.", "subject"
            for who in person["to"]:
                email = str(who.get("email", "")).lower()
                if not valid_address(email):
                    return "Does not contain a valid address.", f"personalizations.{i}.to"
                if email in seen:
                    return "Each email address in the personalization block should be unique " \
                           "between to, cc, and bcc.", f"personalizations.{i}.to"
                seen.add(email)
            for section in ("headers", "custom_args", "substitutions"):
                values = person.get(section) or {}
                if any(not isinstance(v, str) for v in values.values()):
                    return "Bad Request", None
            if any(k.lower() in FORBIDDEN_HEADERS for k in person.get("headers") or {}):
                return "Invalid header", f"personalizations.{i}.headers"
        if len(seen) > 1000:
            return "too many recipients", "personalizations"
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
