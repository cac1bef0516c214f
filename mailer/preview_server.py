"""`mailer preview --serve`: the upcoming issue on localhost, rebuilt when its sources change.

A watcher thread compares the modification times of the templates, the content files and
the config file every half second; any change bumps the version. Pages poll `/version`
with a few lines of inline script (no CDN, no websocket library) and reload when it moves.
Each request renders the chosen segment for the current version, so an edit shows up on
the next poll, with local content re-synced and settings re-read.
"""

from __future__ import annotations

import html as html_lib
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from mailer.app import App
from mailer.compose import compose_issue, issue_moment
from mailer.errors import MailerError
from mailer.models import SECTIONS, Issue, Preferences
from mailer.preview import Preview, build_preview, is_sent, sent_preview_note, sent_segment
from mailer.render.lint import Finding
from mailer.review import ReviewOptions, review
from mailer.sync import sync_source

log = logging.getLogger(__name__)
POLL_SECONDS = 0.5
SECTION_LABELS = {"magazine": "Magazine", "agenda": "Agenda"}


def watched_files(app: App, config: Path | None) -> list[Path]:
    """Every file whose change should rebuild the preview."""
    s = app.settings
    files = [p for folder in (s.path(s.templates_dir), s.path(s.content_dir))
             for p in sorted(folder.rglob("*")) if p.is_file()]
    return files + [p for p in (config or s.root / "mailer.toml",) if p.is_file()]


def local_sources(app: App) -> list:
    """The enabled local Markdown sources: the files the watcher sees."""
    # Remote sources are left to `mailer content sync`: saving a file never fetches a feed.
    names = [c.name for c in app.source_configs() if c.kind == "markdown" and c.enabled]
    return [pair for name in names for pair in app.sources(only=name)]


def fingerprint(paths: list[Path]) -> tuple:
    """Names, sizes and modification times: changes whenever any file is saved."""
    found = []
    for p in paths:
        try:
            stat = p.stat()
        except FileNotFoundError:
            continue
        found.append((str(p), stat.st_mtime_ns, stat.st_size))
    return tuple(found)


def segments(app: App) -> list[tuple[str, str]]:
    """(segment key, Dutch label): every section choice × all themes or one theme."""
    choices = [frozenset(SECTIONS)] + [frozenset({s}) for s in SECTIONS]
    themes = [(frozenset(), "alle thema's")] + [
        (frozenset({slug}), label) for slug, label in app.settings.themes.items()]
    result = []
    for sections in choices:
        names = " + ".join(SECTION_LABELS[s] for s in SECTIONS if s in sections)
        for chosen, label in themes:
            result.append((Preferences(sections, chosen).key(), f"{names}, {label}"))
    return result


@dataclass
class Build:
    """The app and page state for one version of the sources."""

    version: int
    app: App
    error: str = ""
    # Per-file problems and warnings of the local content: a file with a mistake is left
    # out of the issue, so without these an editor would only see their article vanish.
    notes: tuple[Finding, ...] = ()


class PreviewServer:
    """A local HTTP server for the upcoming issue, with a file watcher thread."""

    def __init__(self, make_app: Callable[[], App], on: date | None, config: Path | None,
                 host: str = "127.0.0.1", port: int = 0):
        self.make_app, self.on, self.config = make_app, on, config
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._build = self._rebuild(0, None)
        self._seen = fingerprint(watched_files(self._build.app, config))
        self._server = make_server(host, port, self.wsgi, threaded=True)
        self._threads: list[threading.Thread] = []

    @property
    def url(self) -> str:
        return f"http://{self._server.host}:{self._server.port}/"

    @property
    def version(self) -> int:
        return self._build.version

    def start(self) -> None:
        """Serve and watch in background threads."""
        for target in (self._server.serve_forever, self._watch):
            thread = threading.Thread(target=target, daemon=True)
            thread.start()
            self._threads.append(thread)

    def serve_forever(self) -> None:
        """Watch in the background and serve in this thread until interrupted."""
        watcher = threading.Thread(target=self._watch, daemon=True)
        watcher.start()
        try:
            self._server.serve_forever()
        finally:
            self.stop()

    def stop(self) -> None:
        """Stop serving and watching."""
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()
        self._build.app.engine.dispose()

    def _watch(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            try:
                current = fingerprint(watched_files(self._build.app, self.config))
                if current != self._seen:
                    self._seen = current
                    old = self._build
                    self._build = self._rebuild(old.version + 1, old.app)
                    if self._build.app is not old.app:
                        old.app.engine.dispose()
            except Exception:  # noqa: BLE001 - the watcher must outlive any one bad save
                log.exception("preview watcher failed; retrying")

    def _rebuild(self, version: int, previous: App | None) -> Build:
        """Re-read settings and content; errors are shown on the page, not raised.

        A broken config file keeps the previous settings (the first build has none to keep).
        """
        try:
            app = self.make_app()
        except MailerError as exc:
            if previous is None:
                raise
            return Build(version, previous, f"Instellingen: {exc}")
        notes: list[Finding] = []
        try:
            for name, source in local_sources(app):
                report = sync_source(app.engine, name, source, app.clock)
                if report.error:
                    return Build(version, app, f"Content {name}: {report.error}")
                notes += [Finding("error", "content-problem", f"{name}: {p}")
                          for p in report.problems]
                notes += [Finding("warning", "content-warning", f"{name}: {w}")
                          for w in report.warnings]
        except MailerError as exc:
            return Build(version, app, str(exc))
        log.info("preview version %s built", version)
        return Build(version, app, notes=tuple(notes))

    def wsgi(self, environ, start_response):
        """The WSGI entry point."""
        request = Request(environ)
        routes = {"/": self.page, "/mail": self.mail, "/text": self.text,
                  "/version": self.version_json}
        handler = routes.get(request.path)
        response = handler(request) if handler else Response("Niet gevonden", 404)
        response.headers["Cache-Control"] = "no-store"
        return response(environ, start_response)

    def version_json(self, request: Request) -> Response:
        return Response(json.dumps({"version": self.version}), mimetype="application/json")

    def render(self, request: Request):
        """(build, (issue, preview, note)) for the requested segment, or (build, an error
        Response)."""
        build = self._build
        keys = dict(segments(build.app))
        key = request.args.get("segment") or Preferences().key()
        if key not in keys:
            return build, Response(f"Onbekend segment: {html_lib.escape(key)}", 404)
        if build.error:
            return build, Response(build.error, 500)
        try:
            with build.app.engine.connect() as conn:
                moment = issue_moment(build.app.settings, build.app.clock, self.on)
                issue = compose_issue(conn, build.app.settings, moment)
            if issue is None:
                return build, Response("Er is niets nieuws: voor deze datum is er geen nummer.",
                                       404)
            return build, preview_of(build.app, issue, Preferences.from_key(key))
        except Exception as exc:  # noqa: BLE001 - a template error belongs on the page
            log.exception("preview render failed")
            return build, Response(f"{type(exc).__name__}: {exc}", 500)

    def mail(self, request: Request) -> Response:
        _, result = self.render(request)
        if isinstance(result, Response):
            return result
        return Response(result[1].html, mimetype="text/html")

    def text(self, request: Request) -> Response:
        _, result = self.render(request)
        if isinstance(result, Response):
            return result
        return Response(result[1].text, mimetype="text/plain")

    def page(self, request: Request) -> Response:
        from mailer.preview_page import preview_page

        build, result = self.render(request)
        key = request.args.get("segment") or Preferences().key()
        if isinstance(result, Response):
            body = preview_page(build.version, segments(build.app), key, None, [],
                                result.get_data(as_text=True))
            return Response(body, result.status_code, mimetype="text/html")
        issue, preview, note = result
        findings = [*build.notes, *review(build.app, issue, preview, ReviewOptions(spam=False))]
        # The header shows what this segment's readers see in their inbox.
        shown = replace(issue, subject=preview.segment.subject,
                        preheader=preview.segment.preheader)
        return Response(preview_page(build.version, segments(build.app), key, shown, findings,
                                     note=note), mimetype="text/html")


def preview_of(app: App, issue: Issue, preferences: Preferences) -> tuple[Issue, Preview, str]:
    """(issue, preview, note) for one segment: as `mailer preview` shows it, a sent issue
    as its readers got it (stored) and said so in the note; a draft rendered now, no note."""
    if not is_sent(app, issue):
        return issue, build_preview(app, issue, preferences), ""
    stored = sent_segment(app, issue, preferences)
    return (issue, build_preview(app, issue, preferences, segment=stored),
            sent_preview_note(stored is not None, "dit segment"))
