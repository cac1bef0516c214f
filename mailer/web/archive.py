"""`/archief` and `/archief/<period>`: public web versions of sent issues, with no personal
links (the markers get neutral values), and `/afmelden`, `/voorkeuren` without a token."""

from __future__ import annotations

import re

from flask import Blueprint, Response, abort, render_template

from mailer.models import Preferences
from mailer.render.personalize import PersonalTemplate
from mailer.store import issues as issue_store
from mailer.store.outbox import load_renders
from mailer.web import mailer_app
from mailer.web.security import ARCHIVE_CSP

blueprint = Blueprint("archive", __name__)
PERIOD = re.compile(r"^[0-9A-Za-z-]{1,40}$")


class NeutralValues(dict):
    """Marker values for the public copy: a neutral greeting, general pages for links."""

    def __missing__(self, key: str) -> str:
        return ""


def neutral_values() -> NeutralValues:
    """Values that make a rendered issue impersonal."""
    links = mailer_app().links
    return NeutralValues(greeting="Beste lezer,", unsubscribe_url=links.url("afmelden"),
                         preferences_url=links.url("voorkeuren"))


@blueprint.get("/archief")
def archive_index():
    """Every issue whose sending began, newest first."""
    app = mailer_app()
    with app.engine.connect() as conn:
        records = [r for r in issue_store.list_issues(conn, app.settings.list_id) if r.frozen]
    return render_template("archive.html", issues=records)


@blueprint.get("/archief/<period>")
def archived_issue(period: str):
    """The web version of one issue: the all-sections rendering, made impersonal."""
    if not PERIOD.match(period):
        abort(404)
    html = public_html(period)
    if html is None:
        abort(404)
    response = Response(html, mimetype="text/html")
    response.headers["Content-Security-Policy"] = ARCHIVE_CSP
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


def public_html(period: str) -> str | None:
    """The impersonal HTML of a sent issue, or None if there is no such issue."""
    app = mailer_app()
    everything = Preferences()
    with app.engine.connect() as conn:
        record = issue_store.issue_by_period(conn, app.settings.list_id, period)
        if record is None or not record.frozen:
            return None
        stored = load_renders(conn, record.id).get(everything.key())
        issue = None if stored else issue_store.load_issue(conn, record)
    html = stored[1] if stored else app.renderer.render(issue, everything).html
    return PersonalTemplate.parse(html, escape_html=True).fill(neutral_values())


@blueprint.get("/afmelden")
@blueprint.get("/voorkeuren")
def link_help():
    """Where to find your personal link (the archive's footer links here)."""
    return render_template("link_help.html")
