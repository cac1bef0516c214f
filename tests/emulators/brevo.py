"""Brevo emulator: /v3/smtp/email with messageVersions and idempotency keys."""

from __future__ import annotations

import json
import re

from werkzeug.wrappers import Request, Response

from tests.emulators.base import Emulator, json_response, new_id, valid_address

PARAM = re.compile(r"\{\{\s*params\.([A-Za-z0-9_]+)\s*\}\}")


def _error(code: str, message: str, status: int = 400) -> Response:
    return json_response({"code": code, "message": message}, status)


class BrevoEmulator(Emulator):
    """Validates api-key, sender, subject, htmlContent, ≤1000 versions, ≤99 recipients per
    version, ≤2000 in all; a repeated headers.idempotencyKey gets duplicate_parameter."""

    name = "brevo"

    def __init__(self, key: str = "test-key", **kw):
        super().__init__(key, **kw)
        self.idempotency_keys: set[str] = set()

    def on_reset(self) -> None:
        self.idempotency_keys.clear()

    def is_send(self, request: Request) -> bool:
        return request.method == "POST" and request.path == "/v3/smtp/email"

    def handle(self, request: Request) -> Response:
        if request.headers.get("api-key") != self.key:
            return _error("unauthorized", "Key not found", 401)
        if not self.is_send(request):
            return _error("not_found", "Invalid route", 404)
        try:
            p = json.loads(request.get_data())
        except ValueError:
            return _error("bad_request", "Input must be a valid JSON object")
        problem = self._validate(p)
        if problem:
            return _error(*problem)
        key = (p.get("headers") or {}).get("idempotencyKey")
        with self.lock:
            if key and key in self.idempotency_keys:
                return _error("duplicate_parameter", "Duplicate request: idempotencyKey "
                              "already used")
            if key:
                self.idempotency_keys.add(key)
        versions = p.get("messageVersions") or [{"to": p.get("to")}]
        ids, records = [], []
        for v in versions:
            ids.append(f"<{new_id('smtp-relay.mailin.fr')}>")
            records += [self._record(p, v, who["email"], ids[-1]) for who in v["to"]]
        self.accept(records)
        return json_response({"messageIds": ids} if p.get("messageVersions")
                             else {"messageId": ids[0]}, 201)

    def _validate(self, p: dict) -> tuple[str, str] | None:
        if not (p.get("sender") or {}).get("email"):
            return "missing_parameter", "sender is missing"
        if not p.get("htmlContent") and not p.get("templateId"):
            return "missing_parameter", "htmlContent is missing"
        versions = p.get("messageVersions")
        if versions is None:
            versions = [{"to": p.get("to")}]
        if len(versions) > 1000:
            return "invalid_parameter", "messageVersions: at most 1000 versions"
        total = 0
        for v in versions:
            people = v.get("to") or []
            if not people or len(people) > 99:
                return "invalid_parameter", "to: between 1 and 99 recipients per version"
            if not (v.get("subject") or p.get("subject")):
                return "missing_parameter", "subject is missing"
            total += len(people)
            if any(not valid_address(w.get("email", "")) for w in people):
                return "invalid_parameter", "email is not valid in to"
        if total > 2000:
            return "invalid_parameter", "at most 2000 recipients per request"
        return None

    def _record(self, p: dict, version: dict, address: str, message_id: str) -> dict:
        params = {**(p.get("params") or {}), **(version.get("params") or {})}

        def fill(text: str) -> str:
            return PARAM.sub(lambda m: str(params.get(m.group(1), "")), text or "")

        headers = {**(p.get("headers") or {}), **(version.get("headers") or {})}
        custom = json.loads(headers.get("X-Mailin-custom") or "{}")
        record = {"to": address, "subject": version.get("subject") or p.get("subject"),
                  "metadata": custom, "headers": headers, "id": message_id}
        if self.keep_messages:
            record.update(html=fill(p.get("htmlContent")), text=fill(p.get("textContent")))
        return record
