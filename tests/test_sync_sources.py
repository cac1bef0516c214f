"""Syncing configured sources into the ledger (SQLite and PostgreSQL) and the CLI around it."""

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select
from werkzeug import Response

from mailer.app import App
from mailer.cli import main
from mailer.clock import FixedClock
from mailer.errors import ConfigError
from mailer.models import ItemStatus
from mailer.sources.config import load_source_configs
from mailer.store.items import list_items
from mailer.store.tables import items as items_table
from mailer.store.tables import source_state
from mailer.sync import sync_source
from tests.conftest import REPO, make_settings, run_mailer
from tests.source_helpers import fixture

NOW = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
THEMES = {"onderwijs": "Onderwijs", "jeugdhulp": "Jeugdhulp"}


def rss(*entries: tuple[str, str, str | None]) -> bytes:
    """A feed of (id, title, 'DD Mon YYYY' or None) entries."""
    body = "".join(
        f"<item><guid>{gid}</guid><title>{title}</title>"
        f"<link>https://www.platformjep.example.nl/{gid}?utm_source=rss</link>"
        + (f"<pubDate>{day} 10:00:00 +0000</pubDate>" if day else "") + "</item>"
        for gid, title, day in entries)
    return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title>'
            f"{body}</channel></rss>").encode()


def write_sources(tmp_path, httpserver, *blocks: str) -> Path:
    path = tmp_path / "sources.toml"
    path.write_text("\n".join(blocks).replace("SERVER", httpserver.url_for("").rstrip("/")))
    return path


def feed_block(name: str, path: str) -> str:
    return f'[[sources]]\nname = "{name}"\nkind = "feed"\nlocation = "SERVER{path}"\n'


@pytest.fixture
def make_app(tmp_path, db_url):
    apps = []

    def build(sources_file: Path, now: datetime = NOW) -> App:
        settings = make_settings(tmp_path, db_url, sources_file=sources_file,
                                 fetch_timeout_seconds=2.0, fetch_retries=0)
        app = App(settings, FixedClock(now))
        apps.append(app)
        return app
    yield build
    for app in apps:
        app.engine.dispose()


def sync_all(app: App):
    return {name: sync_source(app.engine, name, src, app.clock) for name, src in app.sources()}


def ledger(app: App) -> dict[str, object]:
    with app.engine.connect() as conn:
        return {s.item.source_id: s for s in list_items(conn)}


def test_conditional_get_304_means_nothing_new(tmp_path, httpserver, make_app):
    httpserver.expect_ordered_request("/feed").respond_with_data(
        rss(("a", "Eerste", "01 Dec 2026")), headers={"ETag": '"v1"'})
    httpserver.expect_ordered_request("/feed", headers={"If-None-Match": '"v1"'}
                                      ).respond_with_data("", status=304)
    app = make_app(write_sources(tmp_path, httpserver, feed_block("blog", "/feed")))
    first = sync_all(app)["blog"]
    assert (first.fetched, first.new) == (1, 1)
    second = sync_all(app)["blog"]
    assert second.ok and second.not_modified and second.new == 0
    httpserver.check_assertions()
    with app.engine.connect() as conn:
        state = conn.execute(select(source_state)).one()
    assert state.etag == '"v1"' and state.last_error is None
    assert list(ledger(app)) == ["a"]


def test_a_changed_configuration_ignores_old_validators(tmp_path, httpserver, make_app):
    httpserver.expect_ordered_request("/feed").respond_with_data(
        rss(("a", "Eerste", "01 Dec 2026")), headers={"ETag": '"v1"'})
    httpserver.expect_ordered_request("/feed").respond_with_data(
        rss(("a", "Eerste", "01 Dec 2026")), headers={"ETag": '"v1"'})
    sync_all(make_app(write_sources(tmp_path, httpserver, feed_block("blog", "/feed"))))
    mapped = feed_block("blog", "/feed") + '[sources.topics]\n"*" = "onderwijs"\n'
    app = make_app(write_sources(tmp_path, httpserver, mapped))
    report = sync_all(app)["blog"]
    assert not report.not_modified and report.updated == 1
    assert "If-None-Match" not in httpserver.log[1][0].headers
    assert ledger(app)["a"].item.topics == ("onderwijs",)


def test_validators_from_older_parsing_rules_are_not_used(tmp_path, httpserver, make_app,
                                                        monkeypatch):
    # Version 1 shortened summaries with spaces around inline tags ('rapport , of') and
    # took avatars as article images; a 304 must not keep what it stored.
    import mailer.sync

    httpserver.expect_ordered_request("/feed").respond_with_data(
        rss(("a", "Eerste", "01 Dec 2026")), headers={"ETag": '"v1"'})
    httpserver.expect_ordered_request("/feed").respond_with_data(
        rss(("a", "Eerste", "01 Dec 2026")), headers={"ETag": '"v1"'})
    sources = write_sources(tmp_path, httpserver, feed_block("blog", "/feed"))
    with monkeypatch.context() as old_release:
        old_release.setattr(mailer.sync, "PARSING_VERSION", 1)
        sync_all(make_app(sources))
    report = sync_all(make_app(sources))["blog"]
    assert report.ok and not report.not_modified
    assert "If-None-Match" not in httpserver.log[1][0].headers


def test_one_broken_source_fails_alone_and_commits_nothing(tmp_path, httpserver, make_app):
    httpserver.expect_request("/feed").respond_with_data(rss(("a", "Artikel", "01 Dec 2026")))
    pages = {"1": json.dumps([{"id": 1, "link": "https://x.nl/1", "title": {"rendered": "Een"},
                               "date_gmt": "2026-12-01T09:00:00"}])}

    def wp(request):
        page = request.args.get("page")
        if page in pages:
            return Response(pages[page], headers={"X-WP-TotalPages": "2"},
                            content_type="application/json")
        return Response("kapot", status=500)

    httpserver.expect_request("/wp-json/wp/v2/posts").respond_with_handler(wp)
    app = make_app(write_sources(
        tmp_path, httpserver, feed_block("blog", "/feed"),
        '[[sources]]\nname = "site"\nkind = "wordpress"\nlocation = "SERVER"\n'))
    reports = sync_all(app)
    assert reports["blog"].ok and reports["blog"].new == 1
    site = reports["site"]
    # The editors read which site they configured, in Dutch; the operators the API page.
    assert not site.ok and site.error.startswith("HTTP 500 (fout op de server) voor "
                                                 + httpserver.url_for("").rstrip("/"))
    assert "wp-json" not in site.error and "page=" not in site.error
    assert "/wp-json/wp/v2/posts" in site.detail and "page=2" in site.detail
    assert {s.item.source for s in ledger(app).values()} == {"blog"}  # page 1 not committed
    with app.engine.connect() as conn:
        errors = dict(conn.execute(select(source_state.c.source,
                                               source_state.c.last_error)).all())
    assert errors["blog"] is None and errors["site"] == site.detail


def test_control_characters_from_a_source_are_not_stored(tmp_path, httpserver, make_app):
    # A NUL made PostgreSQL refuse the whole source; a BEL (raw or as &#7; in HTML) reached
    # the issue, where the MJML compiler cannot parse it and no issue renders at all.
    posts = [{"id": 1, "link": "https://x.nl/1", "title": {"rendered": "Een\u0000twee\u0007"},
              "excerpt": {"rendered": "<p>Over&#7; de\u001b keten</p>"},
              "date_gmt": "2026-12-01T09:00:00"},
             {"id": 2, "link": "https://x.nl/2", "title": {"rendered": "Goed"},
              "date_gmt": "2026-12-01T09:00:00"}]
    httpserver.expect_request("/wp-json/wp/v2/posts").respond_with_data(
        json.dumps(posts), content_type="application/json")
    app = make_app(write_sources(
        tmp_path, httpserver,
        '[[sources]]\nname = "site"\nkind = "wordpress"\nlocation = "SERVER"\n'))
    report = sync_all(app)["site"]
    assert report.ok and report.new == 2, report.error
    stored = ledger(app)["1"].item
    assert (stored.title, stored.summary) == ("Eentwee", "<p>Over de keten</p>")


def test_the_same_article_through_two_sources_is_one_item(tmp_path, httpserver, make_app):
    httpserver.expect_request("/feed").respond_with_data(rss(("a", "Artikel", "01 Dec 2026")))
    post = [{"id": 7, "link": "https://WWW.platformjep.example.nl/a/",
             "date_gmt": "2026-12-01T10:00:00", "title": {"rendered": "Artikel"}}]
    httpserver.expect_request("/wp-json/wp/v2/posts").respond_with_data(
        json.dumps(post), content_type="application/json")
    app = make_app(write_sources(
        tmp_path, httpserver, feed_block("blog", "/feed"),
        '[[sources]]\nname = "site"\nkind = "wordpress"\nlocation = "SERVER"\n'))
    reports = sync_all(app)
    assert reports["site"].duplicates == 1 and reports["site"].new == 0
    assert list(ledger(app)) == ["a"]
    assert sync_all(app)["site"].duplicates == 1  # and stays skipped


def test_edits_update_in_place_and_feed_window_deletes_only_what_it_covers(
        tmp_path, httpserver, make_app):
    httpserver.expect_ordered_request("/feed").respond_with_data(rss(
        ("nov20", "Twintig", "20 Nov 2026"), ("nov12", "Twaalf", "12 Nov 2026"),
        ("nov05", "Vijf", "05 Nov 2026")))
    httpserver.expect_ordered_request("/feed").respond_with_data(rss(
        ("nov25", "Nieuw", "25 Nov 2026"), ("nov12", "Twaalf (bijgewerkt)", "12 Nov 2026")))
    sources = write_sources(tmp_path, httpserver, feed_block("blog", "/feed"))
    sync_all(make_app(sources))
    later = make_app(sources, NOW + timedelta(days=1))
    report = sync_all(later)["blog"]
    assert (report.new, report.updated, report.deleted) == (1, 1, 1)
    stored = ledger(later)
    assert sorted(stored) == ["nov05", "nov12", "nov25"]  # nov20 was taken down
    assert stored["nov12"].item.title == "Twaalf (bijgewerkt)"
    assert stored["nov12"].first_seen_at == NOW  # an edit is not new
    # nov05 merely dropped off the end of the feed: older than what the feed still shows


def test_entries_without_date_are_published_when_first_seen(tmp_path, httpserver, make_app):
    httpserver.expect_request("/feed").respond_with_data(rss(("x", "Zonder datum", None)))
    sources = write_sources(tmp_path, httpserver, feed_block("blog", "/feed"))
    sync_all(make_app(sources))
    later = make_app(sources, NOW + timedelta(days=7))
    assert sync_all(later)["blog"].updated == 0
    assert ledger(later)["x"].item.published_at == NOW


def test_a_cancelled_event_updates_the_existing_item(tmp_path, httpserver, make_app):
    body = fixture("agenda.ics")
    httpserver.expect_ordered_request("/a.ics").respond_with_data(
        body.replace(b"STATUS:CANCELLED\r\n", b""), content_type="text/calendar")
    httpserver.expect_ordered_request("/a.ics").respond_with_data(body,
                                                                  content_type="text/calendar")
    sources = write_sources(tmp_path, httpserver, '[[sources]]\nname = "agenda"\nkind = "ical"\n'
                            'location = "SERVER/a.ics"\nlink = "https://x.nl/agenda"\n')
    app = make_app(sources)
    sync_all(app)
    assert ledger(app)["afgelast@platformjep.example.nl"].item.status is ItemStatus.ACTIVE
    report = sync_all(app)["agenda"]
    assert report.updated == 1 and report.new == 0
    assert ledger(app)["afgelast@platformjep.example.nl"].item.status is ItemStatus.CANCELLED
    with app.engine.connect() as conn:
        assert conn.execute(select(items_table.c.id)).all().__len__() == 5


def test_sources_file_errors_name_file_source_and_key(tmp_path):
    path = tmp_path / "sources.toml"
    cases = {
        '[[sources]]\nname = "a"\nkind = "rss"\nlocation = "x"\n': "'kind' must be one of",
        '[[sources]]\nname = "A b"\nkind = "feed"\nlocation = "x"\n': "'name' must be",
        '[[sources]]\nname = "a"\nkind = "feed"\n': "'location' (a URL or a path) is required",
        '[[sources]]\nname = "a"\nkind = "feed"\nlocation = "ftp://x/f"\n': "scheme 'ftp'",
        '[[sources]]\nname = "a"\nkind = "feed"\nlocation = "x"\npages = 3\n':
            "unknown key(s) pages",
        '[[sources]]\nname = "a"\nkind = "feed"\nlocation = "x"\n[sources.topics]\nX = "sport"\n':
            "topic 'sport' for tag 'X' is not a theme",
        '[[sources]]\nname = "a"\nkind = "ical"\nlocation = "x"\nitems = "magazine"\n':
            "yields event items",
        '[[sources]]\nname = "a"\nkind = "feed"\nlocation = "x"\n' * 2: "used twice",
        "[sources]\nname = 1\n": "must be [[sources]] tables",
    }
    for text, message in cases.items():
        path.write_text(text)
        with pytest.raises(ConfigError, match="sources file .*" + re.escape(message)):
            load_source_configs(path, THEMES)


def test_relative_locations_are_relative_to_the_sources_file(tmp_path):
    path = tmp_path / "sources.toml"
    path.write_text('[[sources]]\nname = "local"\nkind = "markdown"\nlocation = "."\n'
                    '[[sources]]\nname = "ics"\nkind = "ical"\nlocation = "agenda.ics"\n')
    local, ics = load_source_configs(path, THEMES)
    assert local.location == str(tmp_path) and ics.location == (tmp_path / "agenda.ics").as_uri()
    assert ics.item_kind == "event"


def test_the_repository_sources_file_keeps_local_and_documents_every_kind(app):
    configs = app.source_configs()
    assert configs[0].name == "local" and configs[0].kind == "markdown" and configs[0].enabled
    assert {c.kind for c in configs} == {"markdown", "feed", "ical", "wordpress",
                                        "wordpress-events"}
    assert [name for name, _ in app.sources()] == ["local"]  # the others wait for go-live


@pytest.fixture
def cli_env(tmp_path, sqlite_url, httpserver):
    httpserver.expect_request("/feed").respond_with_data(
        rss(("a", "Café over polarisatie", "01 Dec 2026"), ("b", "Tweede", "30 Nov 2026")),
        content_type="application/rss+xml")
    httpserver.expect_request("/gone.xml").respond_with_data("weg", status=404)
    httpserver.expect_request("/a.ics").respond_with_data(fixture("agenda.ics"),
                                                          content_type="text/calendar")
    sources = write_sources(
        tmp_path, httpserver, feed_block("blog", "/feed"), feed_block("kapot", "/gone.xml"),
        '[[sources]]\nname = "agenda"\nkind = "ical"\nlocation = "SERVER/a.ics"\n'
        'link = "https://x.nl/agenda"\n')
    return {"MAILER_DATABASE_URL": sqlite_url, "MAILER_SOURCES_FILE": str(sources),
            "MAILER_NOW": "2026-12-03T09:00", "MAILER_FETCH_RETRIES": "0",
            "MAILER_SECRET_KEY": "k" * 32}


def test_cli_sync_reports_per_source_and_exits_2_when_one_failed(cli_env):
    result = run_mailer(["content", "sync"], env=cli_env)
    assert result.returncode == 2, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == ("blog: fetched 2, new 2, updated 0, deleted 0, duplicates 0, "
                        "problems 0")
    assert lines[1].startswith("kapot: FAILED: HTTP 404 (niet gevonden) van de server voor "
                               "http://127.0.0.1:")
    assert "/gone.xml. Controleer de URL" in lines[1]
    assert lines[2].startswith("agenda: fetched 5, new 5")
    assert "1 of 3 sources failed: kapot" in result.stderr
    only = invoke(["content", "sync", "--source", "blog"], cli_env)
    assert only.exit_code == 0 and only.stdout.startswith("blog: fetched 2, new 0")
    unknown = invoke(["content", "sync", "--source", "nope"], cli_env)
    assert unknown.exit_code == 1
    assert "unknown source 'nope'; configured: blog, kapot, agenda" in unknown.output


def invoke(args: list[str], env: dict[str, str]):
    """The CLI in-process (the subprocess test above covers the real entry point)."""
    return CliRunner().invoke(main, ["--config", str(REPO / "mailer.toml"), *args], env=env,
                              catch_exceptions=False)


def test_cli_list_json_new_and_upcoming(cli_env):
    invoke(["content", "sync"], cli_env)
    listed = invoke(["content", "list", "--json"], cli_env)
    data = json.loads(listed.stdout)
    assert len(data) == 7
    assert all(list(d) == ["id", "kind", "source", "title", "url", "published", "starts",
                           "ends", "location", "topics"] for d in data)
    cafe = next(d for d in data if d["title"] == "Café over polarisatie")
    assert cafe["published"] == "2026-12-01T10:00:00+00:00" and cafe["starts"] is None
    upcoming = json.loads(invoke(["content", "list", "--upcoming", "--json"], cli_env).stdout)
    assert [d["kind"] for d in upcoming] == ["event"] * 5
    assert upcoming[0]["starts"] == "2026-12-10T12:30:00+00:00"
    assert upcoming[0]["location"] == "Jaarbeurs, Utrecht"
    new = json.loads(invoke(["content", "list", "--new", "--upcoming", "--json"],
                            cli_env).stdout)
    assert len(new) == 4  # the cancelled one is never new
    text = invoke(["content", "list", "--upcoming"], cli_env).stdout
    assert "Werkatelier informatie delen (cancelled)" in text


def test_cli_check_shows_what_would_happen_and_stores_nothing(cli_env):
    result = invoke(["content", "check", "agenda"], cli_env)
    assert result.exit_code == 0, result.output
    assert "Training signalen herkennen" in result.stdout
    assert "agenda: 5 items; syncing now would add 5" in result.stdout
    assert json.loads(invoke(["content", "list", "--json"], cli_env).stdout) == []
    failed = invoke(["content", "check", "kapot"], cli_env)
    assert failed.exit_code == 2 and "HTTP 404" in failed.stdout


def test_an_announced_event_cancelled_in_the_calendar_shows_as_cancelled(
        tmp_path, httpserver, make_app):
    from mailer.compose import compose_issue
    from mailer.models import IssueStatus
    from mailer.sending import store_issue
    from mailer.store.issues import set_issue_status

    body = fixture("agenda.ics")
    extra = (b"BEGIN:VEVENT\r\nUID:nieuw@platformjep.example.nl\r\nDTSTAMP:20261101T120000Z\r\n"
             b"DTSTART:20261222T090000Z\r\nDTEND:20261222T110000Z\r\nSUMMARY:Nieuwe training\r\n"
             b"URL:https://x.nl/nieuw\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
    httpserver.expect_ordered_request("/a.ics").respond_with_data(
        body.replace(b"STATUS:CANCELLED\r\n", b""), content_type="text/calendar")
    httpserver.expect_ordered_request("/a.ics").respond_with_data(
        body.replace(b"END:VCALENDAR\r\n", extra), content_type="text/calendar")
    sources = write_sources(tmp_path, httpserver, '[[sources]]\nname = "agenda"\nkind = "ical"\n'
                            'location = "SERVER/a.ics"\nlink = "https://x.nl/agenda"\n')
    app = make_app(sources)
    sync_all(app)
    first = store_issue(app, NOW)
    cancelled_title = "Werkatelier informatie delen"
    assert cancelled_title in [e.item.title for e in first.events]
    with app.engine.begin() as conn:
        set_issue_status(conn, first.id, IssueStatus.SENT, NOW)
    week_later = make_app(sources, NOW + timedelta(days=7))
    assert sync_all(week_later)["agenda"].updated == 1
    with week_later.engine.connect() as conn:
        second = compose_issue(conn, week_later.settings, NOW + timedelta(days=7))
    statuses = {e.item.title: e.item.status for e in second.events}
    assert statuses[cancelled_title] is ItemStatus.CANCELLED  # announced: shown as cancelled
    assert statuses["Nieuwe training"] is ItemStatus.ACTIVE


def test_cli_check_lists_problems_and_exits_1(tmp_path, sqlite_url, httpserver):
    body = rss(("a", "Goed", "01 Dec 2026")).replace(
        b"</channel>",
        b'<item><title>Zonder link</title><guid isPermaLink="false">z</guid></item></channel>')
    httpserver.expect_request("/feed").respond_with_data(body)
    sources = write_sources(tmp_path, httpserver, feed_block("blog", "/feed"))
    env = {"MAILER_DATABASE_URL": sqlite_url, "MAILER_SOURCES_FILE": str(sources),
           "MAILER_NOW": "2026-12-03T09:00"}
    result = invoke(["content", "check", "blog"], env)
    assert result.exit_code == 1
    assert "blog: 1 items; syncing now would add 1" in result.stdout
    assert "problem: blog: entry z: entry has no http(s) link; skipped" in result.stdout


def test_an_article_a_feed_lists_twice_shows_once_in_the_issue(tmp_path, httpserver, make_app):
    from mailer.compose import compose_issue

    # Two entries (other guids) for one article, e.g. listed under two categories; the
    # tracking parameters differ, the article does not. A third entry shares only the link.
    body = rss(("a", "Artikel", "01 Dec 2026"), ("b", "Ander", "30 Nov 2026")).replace(
        b"</channel>",
        b"<item><guid>a-dubbel</guid><title>Artikel</title>"
        b"<link>https://www.platformjep.example.nl/a?utm_source=mail</link>"
        b"<pubDate>01 Dec 2026 10:00:00 +0000</pubDate></item>"
        b"<item><guid>c</guid><title>Derde</title>"
        b"<link>https://www.platformjep.example.nl/a</link>"
        b"<pubDate>29 Nov 2026 10:00:00 +0000</pubDate></item></channel>")
    httpserver.expect_request("/feed").respond_with_data(body)
    app = make_app(write_sources(tmp_path, httpserver, feed_block("blog", "/feed")))
    assert sync_all(app)["blog"].ok
    with app.engine.connect() as conn:
        issue = compose_issue(conn, app.settings, NOW)
    assert [s.item.title for s in issue.magazine] == ["Artikel", "Ander", "Derde"]


def test_a_database_failure_is_reported_in_one_line_without_sql(db_url, tmp_path, caplog):
    import logging

    from mailer.models import Item, ItemKind
    from mailer.store.db import make_engine

    class Untitled:
        """A source whose item the database refuses (NOT NULL title)."""

        kind = "test"

        def fetch(self):
            return [Item(source="s", source_id="x" * 40, kind=ItemKind.MAGAZINE, title=None,
                         url="https://x.nl/geheim-pad", summary="geheime samenvatting")]

    engine = make_engine(db_url)
    try:
        with caplog.at_level(logging.DEBUG, logger="mailer.sync"):
            report = sync_source(engine, "s", Untitled(), FixedClock(NOW))
        with engine.connect() as conn:
            stored = conn.execute(select(source_state.c.last_error)).scalar_one()
    finally:
        engine.dispose()
    assert not report.ok
    assert report.error.startswith("de database kon de stukken van deze bron niet opslaan")
    assert report.detail.startswith("database error: ")
    assert "title" in report.detail and "\n" not in report.detail
    for text in (report.error, report.detail, stored):
        assert "INSERT" not in text and "geheim" not in text and "xxxx" not in text
    assert stored == report.detail
    assert "INSERT INTO items" in caplog.text  # the statement is in the debug log


def test_sync_on_a_database_without_schema_is_one_line_and_no_traceback(tmp_path):
    env = {"MAILER_DATABASE_URL": f"sqlite:///{tmp_path / 'new.db'}", "MAILER_SECRET_KEY": "k" * 32,
           "MAILER_NOW": "2026-12-03T09:00"}
    result = run_mailer(["content", "sync"], env=env)
    assert result.returncode == 1, result.stderr
    # The database failed, not the source: the operator reads what to do, nothing else.
    assert result.stdout == ""
    assert result.stderr.strip() == (
        "Error: the database schema is not up to date: run `mailer init` first")


def test_check_on_a_database_without_schema_blames_the_database_not_the_source(tmp_path):
    env = {"MAILER_DATABASE_URL": f"sqlite:///{tmp_path / 'new.db'}",
           "MAILER_NOW": "2026-12-03T09:00"}
    result = invoke(["content", "check", "local"], env)
    assert result.exit_code == 1, result.output
    assert result.output.strip() == (
        "Error: the database schema is not up to date: run `mailer init` first")
