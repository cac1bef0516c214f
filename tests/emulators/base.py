"""Shared machinery of the provider emulators: a real HTTP server, a recorder, faults.

Usage (the same for every provider; see README.md in this folder):

    with PostmarkEmulator(key="k") as emu:          # serves on 127.0.0.1:<ephemeral>
        emu.url                                     # -> MAILER_PROVIDER_URL
        emu.fail_next("status", status=429, headers={"Retry-After": "0"})
        emu.fail_next("drop")                       # accept + record, then cut the connection
        emu.fail_next("hang", accept=True)          # accept + record, then never answer
        emu.wait_for_batches(3, timeout=30)         # block until 3 send calls were accepted
        emu.before_lookup = callback                # run before each look-up is answered
        emu.received                                # Counter: recipient address -> deliveries
        emu.messages                                # accepted messages (keep_messages=True)
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import socket
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

ADDRESS = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+$")
logging.getLogger("werkzeug").setLevel(logging.ERROR)


class BigRequest(Request):
    """Requests as large as providers accept (werkzeug's default form limit is 500 KB)."""

    max_content_length = 60 * 1024 * 1024
    max_form_memory_size = 60 * 1024 * 1024
    max_form_parts = 100_000


@dataclass
class Fault:
    """One scripted misbehaviour of the next send call."""

    kind: str  # "status" | "drop" | "hang"
    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b'{"message": "emulated failure"}'
    accept: bool = True  # drop/hang: process and record the call first
    seconds: float = 60.0  # hang: how long at most


class Emulator:
    """Base class: subclasses implement `handle(request)` and call `accept(...)`."""

    name = "emulator"

    def __init__(self, key: str = "test-key", *, keep_messages: bool = True):
        self.key = key
        self.keep_messages = keep_messages
        self.lock = threading.Condition()
        self.received: Counter[str] = Counter()
        self.messages: list[dict[str, Any]] = []
        self.batches_accepted = 0
        self.send_calls = 0
        self.bytes_received = 0
        self.rejected_calls: list[tuple[int, str]] = []
        self.first_call_at: float | None = None
        self.first_accept_at: float | None = None
        self.last_accept_at: float | None = None
        self.faults: deque[Fault] = deque()
        # Run (in the server's thread) before each look-up is answered: a test makes a
        # reconcile slow there, by moving its clock or waiting on an Event it controls.
        self.before_lookup: Callable[[], None] | None = None
        self._release = threading.Event()
        self.server = None
        self.url = ""

    # -- lifecycle --------------------------------------------------------------------

    def start(self, port: int = 0) -> Emulator:
        """Serve on 127.0.0.1 in a background thread."""
        self.server = make_server("127.0.0.1", port, self.wsgi, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Release hung calls and stop serving."""
        self._release.set()
        if self.server:
            self.server.shutdown()
            self.server.server_close()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- scripting and inspection -----------------------------------------------------

    def fail_next(self, kind: str = "status", count: int = 1, **options: Any) -> None:
        """Make the next `count` send calls misbehave."""
        with self.lock:
            self.faults.extend(Fault(kind, **options) for _ in range(count))

    def wait_for_batches(self, count: int, timeout: float = 30.0) -> bool:
        """Block until at least `count` send calls were accepted."""
        with self.lock:
            return self.lock.wait_for(lambda: self.batches_accepted >= count, timeout)

    def duplicates(self) -> dict[str, int]:
        """Addresses that were accepted more than once."""
        return {a: n for a, n in self.received.items() if n > 1}

    def accept(self, messages: list[dict[str, Any]]) -> None:
        """Record one accepted send call and its messages (each has a "to")."""
        now = time.monotonic()
        with self.lock:
            self.batches_accepted += 1
            self.first_accept_at = self.first_accept_at or now
            self.last_accept_at = now
            for m in messages:
                self.received[m["to"].lower()] += 1
                if self.keep_messages:
                    self.messages.append(m)
            self.lock.notify_all()

    # -- the WSGI app -----------------------------------------------------------------

    def is_send(self, request: Request) -> bool:
        """Whether a request is a send call (faults apply only to those)."""
        return request.method == "POST"

    def handle(self, request: Request) -> Response:
        raise NotImplementedError

    def stats(self) -> dict[str, Any]:
        """Counters for benchmarks (also served at GET /_emulator/stats)."""
        with self.lock:
            span = (self.last_accept_at or 0) - (self.first_call_at or 0)
            return {"send_calls": self.send_calls, "batches_accepted": self.batches_accepted,
                    "recipients": sum(self.received.values()), "distinct": len(self.received),
                    "bytes_received": self.bytes_received, "accept_span": span}

    def reset(self) -> None:
        """Forget everything received (between benchmark rounds)."""
        with self.lock:
            self.received.clear()
            self.messages.clear()
            self.batches_accepted = self.send_calls = self.bytes_received = 0
            self.first_call_at = self.first_accept_at = self.last_accept_at = None
            self.on_reset()

    def on_reset(self) -> None:
        """Provider-specific state to forget on reset."""

    def wsgi(self, environ: dict, start_response: Any) -> Any:
        request = BigRequest(environ)
        if request.path.startswith("/_emulator/"):
            if request.method == "POST" and request.path == "/_emulator/reset":
                self.reset()
            return json_response(self.stats())(environ, start_response)
        fault = None
        if not self.is_send(request) and self.before_lookup is not None:
            self.before_lookup()
        if self.is_send(request):
            with self.lock:
                self.first_call_at = self.first_call_at or time.monotonic()
                self.send_calls += 1
                self.bytes_received += (request.content_length or 0) + _header_bytes(request)
                fault = self.faults.popleft() if self.faults else None
        if fault and fault.kind == "status":
            response = Response(fault.body, fault.status, fault.headers,
                                content_type="application/json")
            return response(environ, start_response)
        if fault and not fault.accept:
            self._misbehave(fault, environ)
            return Response(b"", 500)(environ, start_response)
        response = self.handle(request)
        if response.status_code >= 300:
            with self.lock:
                self.rejected_calls.append((response.status_code, response.get_data(True)))
        if fault:
            self._misbehave(fault, environ)
        return response(environ, start_response)

    def _misbehave(self, fault: Fault, environ: dict) -> None:
        if fault.kind == "hang":
            self._release.wait(fault.seconds)
        sock = environ.get("werkzeug.socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def _header_bytes(request: Request) -> int:
    return sum(len(k) + len(v) + 4 for k, v in request.headers.items()) + 40


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None
                  ) -> Response:
    """A JSON answer."""
    return Response(json.dumps(data), status, headers or {}, content_type="application/json")


def new_id(domain: str = "emulator.test") -> str:
    """A provider-style message id."""
    return f"{uuid.uuid4()}@{domain}"


def valid_address(address: str) -> bool:
    """Roughly what providers accept as an address."""
    return bool(ADDRESS.match(address or ""))


def text_bytes(values: dict[str, Any]) -> int:
    """UTF-8 bytes of a mapping's keys and values (of a value that is not a string: its
    JSON text). The providers limit such mappings in bytes or KB without saying what is
    counted; this counts the text they hold, not the JSON quoting around it."""
    size = string_bytes(values)
    if size is None:
        size = string_bytes({k: v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)
                             for k, v in values.items()})
    return size  # type: ignore[return-value]


def string_bytes(values: dict[str, Any]) -> int | None:
    """text_bytes of a mapping of strings; None if a value is not a string."""
    try:
        text = "".join([*values, *values.values()])
    except TypeError:
        return None
    return len(text) if text.isascii() else len(text.encode())
