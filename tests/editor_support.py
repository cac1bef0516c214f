"""Helpers for the editor-tool tests: a real local web server and editable copies of sources."""

from __future__ import annotations

import io
import shutil
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "test-artifacts"


def png_bytes(width: int, height: int, colour: tuple[int, int, int] = (200, 60, 40)) -> bytes:
    """A solid-colour PNG of a given size."""
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, format="PNG")
    return out.getvalue()


@dataclass
class LocalSite:
    """Routes for a real HTTP server on 127.0.0.1: path -> (status, content type, body)."""

    routes: dict[str, tuple[int, str, bytes]] = field(default_factory=dict)
    head_refused: set[str] = field(default_factory=set)  # paths answering HEAD with 405
    port: int = 0
    hits: list[str] = field(default_factory=list)  # paths requested, in order

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@contextmanager
def serve_site(site: LocalSite) -> Iterator[LocalSite]:
    """Serve a LocalSite in a thread for the duration of the block."""

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, with_body: bool) -> None:
            site.hits.append(self.path)
            status, ctype, body = site.routes.get(self.path, (404, "text/plain", b"not found"))
            if not with_body and self.path in site.head_refused:
                status, body = 405, b""
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if with_body:
                self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            self._answer(True)

        def do_HEAD(self) -> None:  # noqa: N802
            self._answer(False)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    site.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield site
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def silent_port() -> Iterator[int]:
    """A port that accepts connections but never answers (for timeout tests)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


def editable_sources(tmp_path: Path) -> tuple[Path, Path]:
    """Copies of the repository's content and templates that a test may change."""
    content, templates = tmp_path / "content", tmp_path / "templates"
    shutil.copytree(REPO / "content", content)
    shutil.copytree(REPO / "templates", templates)
    return content, templates
