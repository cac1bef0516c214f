"""Postmark emulator: `/email/batch` with per-message ErrorCodes, outbound search."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from werkzeug.wrappers import Request, Response

from tests.emulators.base import Emulator, json_response, new_id, valid_address

INACTIVE_ALL = ("You tried to send to a recipient that has been marked as inactive. Found "
                "inactive addresses: {0}. Inactive recipients are ones that have generated a "
                "hard bounce, a spam complaint, or a manual suppression. ")
STREAMS = {"outbound", "broadcast"}


class PostmarkEmulator(Emulator):
    """Validates token, batch size (500), payload (50 MB), fields; `inactive` addresses
    are answered with ErrorCode 406 and Postmark's verbatim message."""

    name = "postmark"

    def __init__(self, key: str = "test-key", **kw):
        super().__init__(key, **kw)
        self.inactive: set[str] = set()
        self.sent: list[dict] = []  # for outbound search: MessageID, Recipients, Metadata

    def on_reset(self) -> None:
        self.sent.clear()

    def is_send(self, request: Request) -> bool:
        return request.method == "POST" and request.path == "/email/batch"

    def handle(self, request: Request) -> Response:
        if request.headers.get("X-Postmark-Server-Token") != self.key:
            return json_response({"ErrorCode": 10, "Message": "Request does not contain a "
                                  "valid Server token."}, 401)
        if request.path == "/messages/outbound" and request.method == "GET":
            return self._search(request)
        if request.path != "/email/batch" or request.method != "POST":
            return json_response({"ErrorCode": 404, "Message": "not found"}, 404)
        if "application/json" not in request.headers.get("Content-Type", ""):
            return json_response({"ErrorCode": 409, "Message": "JSON data required"}, 415)
        if (request.content_length or 0) > 50 * 1024 * 1024:
            return json_response({"ErrorCode": 300, "Message": "Payload too large"}, 422)
        try:
            messages = json.loads(request.get_data())
        except ValueError:
            return json_response({"ErrorCode": 402, "Message": "Invalid JSON"}, 422)
        if not isinstance(messages, list):
            return json_response({"ErrorCode": 403, "Message": "Incompatible JSON"}, 422)
        if len(messages) > 500:
            return json_response({"ErrorCode": 410, "Message": "Too many batch messages."}, 422)
        answers, accepted = [], []
        for m in messages:
            answer = self._one(m)
            answers.append(answer)
            if answer["ErrorCode"] == 0:
                accepted.append(self._record(m, answer["MessageID"]))
        self.accept(accepted)
        return json_response(answers)

    def _one(self, m: dict) -> dict:
        to = str(m.get("To", ""))
        if not m.get("From") or not to:
            return {"ErrorCode": 300, "Message": "Invalid email request: From and To required"}
        if not (m.get("HtmlBody") or m.get("TextBody")):
            return {"ErrorCode": 300,
                    "Message": "Provide either email TextBody or HtmlBody or both."}
        if m.get("MessageStream", "outbound") not in STREAMS:
            return {"ErrorCode": 1235, "Message": "The 'MessageStream' provided does not exist."}
        if not valid_address(to):
            return {"ErrorCode": 300, "Message": f"Invalid 'To' address: '{to}'."}
        if to.lower() in self.inactive:
            return {"ErrorCode": 406, "Message": INACTIVE_ALL.format(to.lower())}
        return {"ErrorCode": 0, "Message": "OK", "MessageID": new_id().split("@")[0],
                "SubmittedAt": datetime.now(UTC).isoformat(), "To": to}

    def _record(self, m: dict, message_id: str) -> dict:
        headers = {h["Name"]: h["Value"] for h in m.get("Headers") or []}
        record = {"to": m["To"], "subject": m.get("Subject"), "metadata": m.get("Metadata", {}),
                  "headers": headers, "stream": m.get("MessageStream"), "id": message_id}
        if self.keep_messages:
            record.update(html=m.get("HtmlBody"), text=m.get("TextBody"))
        with self.lock:
            self.sent.append({"MessageID": message_id, "Recipients": [m["To"]],
                              "Metadata": m.get("Metadata", {}), "Status": "Sent",
                              "MessageStream": m.get("MessageStream")})
        return record

    def _search(self, request: Request) -> Response:
        args = request.args
        if "count" not in args or "offset" not in args:
            return json_response({"ErrorCode": 300, "Message": "count and offset required"}, 422)
        count, offset = int(args["count"]), int(args["offset"])
        if count > 500 or count + offset > 10000:
            return json_response({"ErrorCode": 300, "Message": "count too large"}, 422)
        wanted = {k[len("metadata_"):]: v for k, v in args.items() if k.startswith("metadata_")}
        with self.lock:
            found = [s for s in self.sent
                     if (not args.get("recipient") or args["recipient"].lower()
                         in [r.lower() for r in s["Recipients"]])
                     and all(str(s["Metadata"].get(k)) == v for k, v in wanted.items())]
        return json_response({"TotalCount": len(found), "Messages": found[offset:offset + count]})
