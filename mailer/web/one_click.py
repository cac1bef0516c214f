"""The RFC 8058 one-click POST answered beneath Flask.

Mail providers POST `List-Unsubscribe=One-Click` to the List-Unsubscribe URL of every
unsubscribing reader, in bursts after a send. Flask's request machinery (context, routing,
response object, after-request hooks) cost more than the unsubscribe itself, so this WSGI
layer answers exactly that request: a urlencoded body, a genuine token, no cookie. It
answers the way the `unsubscribe.one_click` view does (same write, same page, same
headers; tests compare the two) and passes everything else to Flask untouched: other
paths and methods, the page's own button, multipart bodies, bad or revoked tokens, and
any error.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterable
from urllib.parse import parse_qsl

from flask import Flask

from mailer.app import App
from mailer.links import TokenClaims, TokenInvalid
from mailer.subscriptions import LinkState, consent_context, unsubscribe_by_link
from mailer.web.pagecache import cached_page, filled_page
from mailer.web.security import security_headers
from mailer.web.unsubscribe import FIELD, VALUE

log = logging.getLogger(__name__)

PREFIX = "/afmelden/"
MAX_BODY = 1024  # a one-click body is 26 bytes; anything bigger takes the general way
ANSWERED = (LinkState.UNSUBSCRIBED, LinkState.ALREADY)

WSGIApp = Callable[[dict, Callable], Iterable[bytes]]


class OneClickLayer:
    """WSGI middleware around a Flask app's `wsgi_app` for mail clients' one-click POSTs."""

    def __init__(self, web: Flask, app: App, inner: WSGIApp):
        self.web = web
        self.app = app
        self.inner = inner

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        token = one_click_token(environ)
        if token is None:
            return self.inner(environ, start_response)
        body = _read_body(environ)
        try:
            answer = self.answer(environ, token, body)
        except Exception:  # noqa: BLE001 - Flask answers (and logs) failures its own way
            log.exception("one-click shortcut failed; passing the request to Flask")
            answer = None
        if answer is None:
            environ["wsgi.input"] = io.BytesIO(body)  # Flask reads the body again
            return self.inner(environ, start_response)
        start_response("200 OK", answer[0])
        return [answer[1]]

    def answer(self, environ: dict, token: str,
               body: bytes) -> tuple[list[tuple[str, str]], bytes] | None:
        """Unsubscribe and return the goodbye page's headers and body; None for a request
        this layer leaves to Flask (before changing anything)."""
        fields = dict(parse_qsl(body.decode("utf-8", "replace")))
        if fields.get(FIELD) != VALUE or fields.get("via") == "pagina":
            return None
        claims = self._claims(token)
        if claims is None:
            return None
        context = consent_context(self.app.settings, "web:one-click",
                                  environ.get("REMOTE_ADDR") or "",
                                  environ.get("HTTP_USER_AGENT", ""))
        result = unsubscribe_by_link(self.app, claims, context, goodbye=False)
        if result.state not in ANSWERED:
            return None  # revoked or unknown: nothing changed, Flask shows the error page
        page = self._goodbye(environ, claims).encode()  # a repeat gets the same page
        headers = [("Content-Type", "text/html; charset=utf-8"),
                   ("Content-Length", str(len(page))),
                   *security_headers(environ.get("PATH_INFO", ""),
                                     environ.get("wsgi.url_scheme", "http"))]
        return headers, page

    def _claims(self, token: str) -> TokenClaims | None:
        try:
            return self.app.links.read("unsubscribe", token)
        except TokenInvalid:  # expired too: Flask answers with the right error page
            return None

    def _goodbye(self, environ: dict, claims: TokenClaims) -> str:
        values = {"preferences_url":
                  self.app.links.preferences_url(claims.subscriber_id, claims.version)}
        page = cached_page(self.web, "goodbye.html", already=False)
        if page is not None:
            return page.fill(values)
        with self.web.request_context(environ):  # the first time: render it the usual way
            return filled_page("goodbye.html", values, already=False)


def one_click_token(environ: dict) -> str | None:
    """The token of a POST that may be a mail client's one-click unsubscribe, else None."""
    if environ.get("REQUEST_METHOD") != "POST" or "HTTP_COOKIE" in environ:
        return None  # a browser with a session takes the general way, cookies and all
    path = environ.get("PATH_INFO", "")
    if not path.startswith(PREFIX):
        return None
    token = path[len(PREFIX):]
    content_type = environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower()
    if not token or "/" in token or not token.isascii() \
            or content_type != "application/x-www-form-urlencoded":
        return None
    length = environ.get("CONTENT_LENGTH", "")
    return token if length.isdigit() and 0 < int(length) <= MAX_BODY else None


def _read_body(environ: dict) -> bytes:
    return environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"]))
