"""The subscriber web app: `create_app(app)` builds a Flask app over one mailer App.

Pages are Dutch, work without JavaScript and send strict security headers. Each area is
a blueprint in its own module; BLUEPRINTS lists them, so another area (e.g. webhooks)
is one more line.
"""

from __future__ import annotations

import importlib
from datetime import timedelta

from flask import Flask, current_app, render_template
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from mailer.app import App
from mailer.web.mailqueue import MailQueue
from mailer.web.security import LazySessionInterface, PageError, add_security_headers

# Modules under mailer.web, each with a `blueprint`.
BLUEPRINTS = [
    "mailer.web.subscribe",
    "mailer.web.preferences",
    "mailer.web.unsubscribe",
    "mailer.web.archive",
    "mailer.web.health",
    "mailer.web.webhooks",
]

EXTENSION = "weerbaarnl"


def create_app(app: App) -> Flask:
    """The Flask app serving subscribers of one mailer installation."""
    web = Flask(__name__)
    secure = app.settings.base_url.startswith("https://")
    web.config.update(
        SECRET_KEY=app.settings.require_secret_key(),
        SESSION_COOKIE_NAME="weerbaarnl_sessie",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=secure,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=12),
        MAX_CONTENT_LENGTH=64 * 1024,
        SEND_FILE_MAX_AGE_DEFAULT=3600,
    )
    web.session_interface = LazySessionInterface()
    web.extensions[EXTENSION] = app
    web.extensions[EXTENSION + ".mail"] = MailQueue(app.subscriber_mail)
    web.jinja_env.globals.update(list_name=app.settings.list_name, settings=app.settings)
    for module in BLUEPRINTS:
        web.register_blueprint(importlib.import_module(module).blueprint)
    web.after_request(add_security_headers)
    web.register_error_handler(PageError, _page_error)
    web.register_error_handler(HTTPException, _http_error)
    from mailer.web.one_click import OneClickLayer  # it uses the blueprints' modules

    # Beneath ProxyFix, so the one-click layer sees the client's address and scheme.
    web.wsgi_app = OneClickLayer(web, app, web.wsgi_app)  # type: ignore[method-assign]
    if app.settings.trusted_proxies:
        n = app.settings.trusted_proxies
        web.wsgi_app = ProxyFix(web.wsgi_app, x_for=n, x_proto=n, x_host=n)  # type: ignore
    return web


def mailer_app() -> App:
    """The mailer App behind the current request."""
    return current_app.extensions[EXTENSION]


def mail_queue() -> MailQueue:
    """The queue that sends subscriber mails after the response."""
    return current_app.extensions[EXTENSION + ".mail"]


def _page_error(error: PageError):
    return render_template("error.html", error=error), error.status, error.headers


HTTP_TEXTS = {
    404: ("Pagina niet gevonden", "Deze pagina bestaat niet (meer). Controleer het adres."),
    405: ("Dat kan zo niet", "Deze pagina kan niet op deze manier worden opgevraagd."),
    413: ("Te veel gegevens", "Je formulier bevat te veel gegevens."),
}


def _http_error(error: HTTPException):
    code = error.code or 500
    title, text = HTTP_TEXTS.get(code, ("Er ging iets mis", "Probeer het later opnieuw."))
    # The error's own headers (a 405's Allow, a 429's Retry-After) stay; the page is ours.
    headers = [(k, v) for k, v in error.get_headers() if k.lower() != "content-type"]
    return render_template("error.html", error=PageError(code, title, text)), code, headers
