"""Security for every page: headers, CSRF tokens for forms, and the client's address."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field

from flask import Flask, Response, current_app, request, session
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface

CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")
# The archived newsletter is mail HTML: inline styles, remote images, no forms, no script.
ARCHIVE_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; "
               "form-action 'none'; frame-ancestors 'none'; base-uri 'none'")
CSRF_FIELD = "csrf_token"
FORM_KEY_FIELD = "form_key"


@dataclass
class PageError(Exception):
    """An error shown to a person as a Dutch page with a status code."""

    status: int
    title: str
    text: str
    headers: dict[str, str] = field(default_factory=dict)  # e.g. a 429's Retry-After


# Every page's headers, in the order they are set, for plain http and for https.
_PAGE_HEADERS = (
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Content-Type-Options", "nosniff"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Permissions-Policy", "camera=(), microphone=(), geolocation=(), interest-cohort=()"),
)
_HTTPS_HEADERS = (*_PAGE_HEADERS, ("Strict-Transport-Security", "max-age=31536000"))
_NO_STORE = ("Cache-Control", "no-store")


def security_headers(path: str, scheme: str) -> tuple[tuple[str, str], ...]:
    """CSP, no framing, no referrer (tokens in URLs never leak), no sniffing, no caching:
    the headers a page at `path` gets (a view may set its own CSP first)."""
    fixed = _HTTPS_HEADERS if scheme == "https" else _PAGE_HEADERS
    if path.startswith(("/static/", "/archief")):
        return (("Content-Security-Policy", CSP), *fixed)
    return (("Content-Security-Policy", CSP), *fixed, _NO_STORE)


def add_security_headers(response: Response) -> Response:
    """Give a response the security headers of its page (after_request)."""
    headers = response.headers
    csp, *rest = security_headers(request.path, request.scheme)
    headers.setdefault(*csp)
    for name, value in rest:
        headers[name] = value
    return response


class LazySessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session, but a request without the cookie (every one-click
    POST from a mail client) skips building the signing serializer."""

    def open_session(self, app: Flask, request) -> SecureCookieSession | None:
        if self.get_cookie_name(app) not in request.cookies:
            return self.session_class()
        return super().open_session(app, request)


def csrf_token() -> str:
    """The CSRF token of this browser session, made on first use (for forms)."""
    if CSRF_FIELD not in session:
        session[CSRF_FIELD] = secrets.token_urlsafe(32)
    return session[CSRF_FIELD]


def require_csrf() -> None:
    """Refuse a form post whose CSRF token is missing or not this session's."""
    sent = request.form.get(CSRF_FIELD, "")
    expected = session.get(CSRF_FIELD, "")
    # As bytes: compare_digest refuses str with non-ASCII characters, which anyone can send.
    if not (sent and expected and hmac.compare_digest(sent.encode(), expected.encode())):
        raise PageError(400, "Formulier verlopen",
                        "Je formulier kon niet worden gecontroleerd. Dit gebeurt als de pagina "
                        "lang open heeft gestaan of als je cookies blokkeert. Laad de pagina "
                        "opnieuw en probeer het nog eens.")


# Forms reached through a link's signed token (confirm, preferences) carry no cookie-bound
# CSRF token: mail apps' in-app browsers and strict privacy settings block cookies, and
# people could then not confirm. They need none. CSRF abuses authority a browser attaches
# by itself (a cookie); here the authority is the token in the URL, which a cross-site
# attacker does not know, and whoever does know it can post from anywhere, with or without
# the reader's browser. What such a form carries instead is a key only our page for that
# very link and purpose can hold: an HMAC of both under the app's secret key. So a bare
# POST to a link (a scanner trying forms, a script) or a key from another page (the
# preferences form's key posted to a confirm link) changes nothing. It stays valid as long
# as the token does; revoking or expiring the token ends both. No Origin/Referer check:
# our pages send `Referrer-Policy: no-referrer`, so browsers post our own forms with
# `Origin: null` and without Referer; such a check could tell nothing apart.
def form_key(purpose: str, token: str) -> str:
    """The key a form reached through a link with this token and purpose carries."""
    message = f"web-form\x00{purpose}\x00{token}".encode()
    return hmac.new(_secret(), message, hashlib.sha256).hexdigest()


def require_form_key(purpose: str, token: str) -> None:
    """Refuse a post to a link's form whose key is missing or not that link's page's."""
    sent = request.form.get(FORM_KEY_FIELD, "")
    # As bytes: compare_digest refuses str with non-ASCII characters, which anyone can send.
    if not hmac.compare_digest(sent.encode(), form_key(purpose, token).encode()):
        raise PageError(400, "Formulier niet herkend",
                        "Dit formulier kon niet worden gecontroleerd. Open de link uit je "
                        "e-mail opnieuw en gebruik de knop op die pagina.")


def _secret() -> bytes:
    key = current_app.secret_key
    return key.encode() if isinstance(key, str) else bytes(key)


def client_ip() -> str:
    """The client's IP address (ProxyFix has applied trusted X-Forwarded-For already)."""
    return request.remote_addr or ""


def user_agent() -> str:
    """The client's user agent string."""
    return request.headers.get("User-Agent", "")
