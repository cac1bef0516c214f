"""Helpers for the content-source tests: corpus files, sources with short limits, a clock."""

from __future__ import annotations

import itertools
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from werkzeug import Response

from mailer.clock import FixedClock
from mailer.sources import SourceConfig, factory_for
from mailer.sources.http import FetchPolicy, HttpClient

CORPORA = Path(__file__).parent / "fixtures" / "corpora"
SOURCES = Path(__file__).parent / "fixtures" / "sources"
_PATHS = itertools.count(1)
FAST = FetchPolicy(timeout=2.0, retries=2, backoff=0.01, max_redirects=3)


def corpus(path: str) -> bytes:
    """A real-world file from tests/fixtures/corpora (see its README for origins)."""
    return (CORPORA / path).read_bytes()


def fixture(path: str) -> bytes:
    """A hand-made file from tests/fixtures/sources."""
    return (SOURCES / path).read_bytes()


def make_source(kind: str, location: str, *, at: datetime | None = None,
                topics: dict[str, str] | None = None, http: HttpClient | None = None,
                name: str = "test", **options: Any):
    """A source of a kind with a fast-failing HTTP client and a fixed clock."""
    config = SourceConfig(name=name, kind=kind, location=location, topics=topics or {},
                          options=options)
    clock = FixedClock(at or datetime(2026, 12, 3, 8, 0, tzinfo=UTC))
    return factory_for(kind)(config, http=http or HttpClient(FAST), clock=clock,
                             horizon_weeks=12)


def serve(httpserver, path: str, body: bytes, content_type: str = "application/rss+xml",
          **headers: str) -> str:
    """Serve a body at a fresh path under `path` on the test server; returns its URL."""
    path = f"{path.rstrip('/')}/{next(_PATHS)}"
    httpserver.expect_request(path).respond_with_data(body, content_type=content_type,
                                                      headers=headers or None)
    return httpserver.url_for(path)


def unused_port_url(path: str) -> str:
    """An http URL on 127.0.0.1 at a port nobody listens on: the connection is refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"


@contextmanager
def hanging_url(httpserver, path: str) -> Iterator[str]:
    """The URL of a path on the test server that answers only once the block has ended."""
    release = threading.Event()

    def hang(_request):
        release.wait(10)
        return Response("too late")

    httpserver.expect_request(path).respond_with_handler(hang)
    try:
        yield httpserver.url_for(path)
    finally:
        release.set()
