"""Mailgun emulator: form-encoded messages with recipient-variables; events look-up."""

from __future__ import annotations

import json
import re
import time

from werkzeug.wrappers import Request, Response

from tests.emulators.base import Emulator, json_response, new_id, valid_address

VARIABLE = re.compile(r"%recipient\.([^%]+)%")


class MailgunEmulator(Emulator):
    """Validates Basic auth (api:key), the domain, ≤1000 `to`, addresses, recipient-variables
    JSON and 25 MB; answers {"id","message"}; serves accepted events by recipient."""

    name = "mailgun"

    def __init__(self, key: str = "test-key", domain: str = "mg.example.test", **kw):
        super().__init__(key, **kw)
        self.domain = domain
        self.events: list[dict] = []
        # The events per recipient, so a look-up stays O(1) at 50,000 events (a taken-over
        # batch is reconciled one look-up per row).
        self.by_recipient: dict[str, list[dict]] = {}
        self.invalid: set[str] = set()  # addresses Mailgun's parser refuses

    def on_reset(self) -> None:
        self.events.clear()
        self.by_recipient.clear()

    def is_send(self, request: Request) -> bool:
        return request.method == "POST" and request.path.endswith("/messages")

    def handle(self, request: Request) -> Response:
        auth = request.authorization
        if not auth or auth.username != "api" or auth.password != self.key:
            return Response("Forbidden", 401)
        match = re.fullmatch(r"/v3/([^/]+)/(messages|events)", request.path)
        if not match:
            return json_response({"message": "Mailgun Magnificent API"}, 200)
        if match.group(1) != self.domain:
            return json_response({"message": f"Domain not found: {match.group(1)}"}, 404)
        if match.group(2) == "events":
            return self._events(request)
        if (request.content_length or 0) > 25 * 1024 * 1024:
            return json_response({"message": "Message size exceeds the limit"}, 413)
        form = request.form
        to = form.getlist("to")
        if not form.get("from"):
            return json_response({"message": "from parameter is missing"}, 400)
        if not to:
            return json_response({"message": "to parameter is missing"}, 400)
        if len(to) > 1000:
            return json_response({"message": "Too many recipients"}, 400)
        if not (form.get("text") or form.get("html")):
            return json_response({"message": "Need at least one of 'text' or 'html' "
                                  "parameters specified"}, 400)
        if any(not valid_address(a) or a.lower() in self.invalid for a in to):
            return json_response({"message": "'to' parameter is not a valid address. please "
                                  "check documentation"}, 400)
        try:
            variables = json.loads(form.get("recipient-variables") or "{}")
        except ValueError:
            return json_response({"message": "recipient-variables parameter is not a valid "
                                  "JSON"}, 400)
        message_id = f"<{new_id(self.domain)}>"
        self.accept([self._record(form, a, variables.get(a, {}), message_id) for a in to])
        return json_response({"id": message_id, "message": "Queued. Thank you."})

    def _record(self, form, address: str, variables: dict, message_id: str) -> dict:
        def fill(text: str) -> str:
            return VARIABLE.sub(lambda m: str(variables.get(m.group(1), "")), text)

        user = {k[2:]: fill(v) for k, v in form.items(multi=True) if k.startswith("v:")}
        headers = {k[2:]: fill(v) for k, v in form.items(multi=True) if k.startswith("h:")}
        record = {"to": address, "subject": fill(form.get("subject", "")), "metadata": user,
                  "headers": headers, "id": message_id}
        if self.keep_messages:
            record.update(html=fill(form.get("html", "")), text=fill(form.get("text", "")))
        event = {"event": "accepted", "recipient": address, "timestamp": time.time(),
                 "user-variables": user,
                 "message": {"headers": {"message-id": message_id.strip("<>")}}}
        with self.lock:  # the event itself, not events[-1]: calls are recorded side by side
            self.events.append(event)
            self.by_recipient.setdefault(address, []).append(event)
        return record

    def _events(self, request: Request) -> Response:
        args = request.args
        limit = min(int(args.get("limit", 100)), 300)
        recipient = args.get("recipient")
        with self.lock:
            events = self.by_recipient.get(recipient, []) if recipient else self.events
            items = [e for e in events if not args.get("event") or e["event"] == args["event"]]
        return json_response({"items": items[:limit], "paging": {}})
