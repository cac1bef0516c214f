"""Brevo emulator: /v3/smtp/email with messageVersions and idempotency keys.

The checks are the limits of section 4 of /work/shared/reference/mail-providers.md; each
problem is answered 400 with `{"code", "message"}`, as documented.
"""

from __future__ import annotations

import json
import re

from werkzeug.wrappers import Request, Response

from tests.emulators.base import Emulator, json_response, new_id, text_bytes, valid_address

PARAM = re.compile(r"\{\{\s*params\.([A-Za-z0-9_]+)\s*\}\}")
MAX_VERSIONS, MAX_PER_VERSION, MAX_RECIPIENTS = 1000, 99, 2000
# "each params <=100 KB, cumulative params <=1000 KB" (for messageVersions). The doc says
# neither what is counted, nor whether a KB is 1000 or 1024 bytes, nor whether the message's
# own params count: text_bytes of each version's params, 1 KB = 1000 bytes (the stricter
# reading), versions only (as the API reference words it). Likewise it does not say whether
# cc/bcc count towards the recipient limits: only `to` is counted.
MAX_PARAMS_BYTES = 100 * 1000
MAX_ALL_PARAMS_BYTES = 1000 * 1000

Problem = tuple[str, str]


def _error(code: str, message: str, status: int = 400) -> Response:
    return json_response({"code": code, "message": message}, status)


class BrevoEmulator(Emulator):
    """Validates api-key, sender (email or id), subject, htmlContent, a single replyTo,
    ≤1000 versions, ≤99 recipients per version, ≤2000 in all, params ≤100 KB per version
    and ≤1000 KB in all; a repeated headers.idempotencyKey gets duplicate_parameter."""

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

    def _validate(self, p: dict) -> Problem | None:
        sender = p.get("sender") or {}
        if not (sender.get("email") or sender.get("id")):
            return "missing_parameter", "sender is missing"
        if not p.get("htmlContent") and not p.get("templateId"):
            return "missing_parameter", "htmlContent is missing"
        if isinstance(p.get("replyTo"), list):
            return "invalid_parameter", "replyTo takes a single address"
        versions = p.get("messageVersions")
        if versions is None:
            versions = [{"to": p.get("to")}]
        if len(versions) > MAX_VERSIONS:
            return "invalid_parameter", "messageVersions: at most 1000 versions"
        return _versions_problem(p, versions)

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


def _versions_problem(p: dict, versions: list[dict]) -> Problem | None:
    """Recipients, subject, replyTo and params of each version, and the totals."""
    recipients = params_bytes = 0
    for v in versions:
        people = v.get("to") or []
        if not people or len(people) > MAX_PER_VERSION:
            return "invalid_parameter", "to: between 1 and 99 recipients per version"
        if not (v.get("subject") or p.get("subject")):
            return "missing_parameter", "subject is missing"
        recipients += len(people)
        if any(not valid_address(w.get("email", "")) for w in people):
            return "invalid_parameter", "email is not valid in to"
        if isinstance(v.get("replyTo"), list):
            return "invalid_parameter", "replyTo takes a single address"
        params = v.get("params")
        size = text_bytes(params) if params else 0
        if size > MAX_PARAMS_BYTES:
            return "invalid_parameter", "params: at most 100 KB per message version"
        params_bytes += size
    if recipients > MAX_RECIPIENTS:
        return "invalid_parameter", "at most 2000 recipients per request"
    if params_bytes > MAX_ALL_PARAMS_BYTES:
        return "invalid_parameter", "params: at most 1000 KB in all message versions"
    return None
