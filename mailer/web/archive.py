"""`/archief` and `/archief/<period>`: public web versions of sent issues, rendered as web
pages for anyone (no personal value or link), and `/afmelden`, `/voorkeuren` without a token."""

from __future__ import annotations

import re

from flask import Blueprint, Response, abort, render_template

from mailer.store import issues as issue_store
from mailer.web import mailer_app
from mailer.web.security import ARCHIVE_CSP, PageError

blueprint = Blueprint("archive", __name__)
PERIOD = re.compile(r"^[0-9A-Za-z-]{1,40}$")


@blueprint.get("/archief")
def archive_index():
    """Every issue whose sending began and that is not taken off the archive, newest first."""
    app = mailer_app()
    with app.engine.connect() as conn:
        unpublished = issue_store.unpublished_issue_ids(conn)
        records = [r for r in issue_store.list_issues(conn, app.settings.list_id)
                   if r.frozen and r.id not in unpublished]
    name = app.settings.list_name
    return render_template("archive.html", issues=records,
                           title=lambda r: archive_title(r.subject, r.number, name))


@blueprint.get("/archief/<period>")
def archived_issue(period: str):
    """The web version of one issue: every section, as a page for anyone."""
    if not PERIOD.match(period):
        abort(404)
    html = public_html(period)
    if html is None:
        abort(404)
    response = Response(html, mimetype="text/html")
    response.headers["Content-Security-Policy"] = ARCHIVE_CSP
    response.headers["Cache-Control"] = CACHE_CONTROL
    return response


CACHE_CONTROL = "public, max-age=300"


def public_html(period: str) -> str | None:
    """The web version of a sent issue as kept when its sending began, or None if there
    is no such issue; PageError 410 when the editors took it off the archive.

    An issue sent before web versions were kept (migration 0016) has none: it is rendered
    from its stored items as they are now, the best there is for it. Every send since
    keeps it in the transaction that marks the issue sending (`sending.begin_sending`,
    `sending.enqueue`)."""
    app = mailer_app()
    with app.engine.connect() as conn:
        record = issue_store.issue_by_period(conn, app.settings.list_id, period)
        if not issue_store.send_begun(record):
            return None
        if issue_store.unpublished_since(conn, record.id):
            raise unpublished_page()
        kept = issue_store.kept_web_version(conn, record.id)
        if kept is not None:
            return kept
        issue = issue_store.load_issue(conn, record)
    return app.renderer.web_html(issue)


def unpublished_page() -> PageError:
    """What a reader finds at the address of an issue the editors took off the archive."""
    # 410 Gone: the page was there and was removed on purpose, so search engines drop it.
    # Cached no longer than the page itself was, so putting it back shows soon enough.
    return PageError(410, "Dit nummer is niet meer beschikbaar",
                     "De redactie heeft dit nummer uit het archief gehaald. De andere "
                     "nummers vind je in het archief.", {"Cache-Control": CACHE_CONTROL})


@blueprint.get("/afmelden")
@blueprint.get("/voorkeuren")
def link_help():
    """Where to find your personal link, for whoever opens these pages without one."""
    return render_template("link_help.html")


def archive_title(subject: str, number: int, list_name: str) -> str:
    """How the index names an issue: its number once, whether or not the subject has it."""
    derived = re.match(rf"{re.escape(list_name)}\s+nr\.?\s*{number}\b[\s:,.–—-]*", subject,
                       re.IGNORECASE)
    if derived:  # "WeerbaarNL nr. 4: <lead>", as compose.derive_subject writes it
        rest = subject[derived.end():]
        return f"Nr. {number}: {rest}" if rest else f"Nr. {number}"
    if re.search(rf"\b(nr\.?|nummer)\s*{number}\b", subject, re.IGNORECASE):
        return subject  # an editor's subject that names the number itself
    return f"Nr. {number}: {subject}"
