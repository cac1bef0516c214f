"""`mailer preview --diff`: changes since the last proof and since the last sent issue."""

from __future__ import annotations

from datetime import date

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from mailer.app import App
from mailer.cli import main
from mailer.cli.demo import add_sample_subscribers
from mailer.clock import FixedClock, parse_instant
from mailer.compose import compose_issue, issue_moment
from mailer.issue_diff import diff_issue, format_diff
from mailer.sending import send_issue, send_test, store_issue
from mailer.settings import with_overrides
from mailer.store.tables import proofs
from mailer.sync import sync_source
from tests.conftest import REPO, make_settings
from tests.editor_support import editable_sources

NEW_ARTICLE = """---
id: magazine-2026-12-02-nieuw
title: "Nieuw: een podcast over weerbaarheid"
url: https://www.platformjep.example.nl/magazine/2026/12/02/nieuw
published: {published}
topics: [onderwijs]
---

Een nieuwe podcast over weerbare professionals.
"""


@pytest.fixture
def diff_app(tmp_path, db_url, clock):
    content, _ = editable_sources(tmp_path)
    app = App(with_overrides(make_settings(tmp_path, db_url), content_dir=content), clock)
    sync(app)
    yield app
    app.engine.dispose()


def sync(app: App) -> None:
    for name, source in app.sources():
        assert sync_source(app.engine, name, source, app.clock).ok


def upcoming(app: App):
    with app.engine.connect() as conn:
        return compose_issue(conn, app.settings, app.clock.now())


def diff_against(app: App, reference: str):
    diffs, _ = diff_issue(app, upcoming(app))
    return next(d for d in diffs if d.reference.startswith(reference))


def test_nothing_to_compare_with_yet(diff_app):
    diffs, notes = diff_issue(diff_app, upcoming(diff_app))
    assert diffs == []
    assert notes == ["No sent issue to compare with yet.", "No proof to compare with yet."]


def test_proof_then_content_change_shows_items_subject_and_size(diff_app):
    content = diff_app.settings.content_dir
    moment = issue_moment(diff_app.settings, diff_app.clock, date(2026, 12, 3))
    issue = store_issue(diff_app, moment)
    sent = send_test(diff_app, issue, ["redactie@example.org"])
    assert sent == [("redactie@example.org", "sent")]
    with diff_app.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(proofs)).scalar() == 1
    assert diff_against(diff_app, "last proof").unchanged

    (content / "magazine" / "2026-12-02-nieuw.md").write_text(
        NEW_ARTICLE.format(published="2026-12-02T08:00:00+01:00"))
    removed = next((content / "magazine").glob("*professionele-eenzaamheid*.md"), None) or next(
        (content / "magazine").glob("*weerbaar-blijven*.md"))
    removed_title = removed.read_text().split('title: "', 1)[1].split('"', 1)[0]
    removed.unlink()
    editorial = content / "issues" / "2026-12-03.md"
    editorial.write_text(
        editorial.read_text().replace("---\n", "---\nsubject: Nieuw onderwerp\n", 1))
    sync(diff_app)

    diff = diff_against(diff_app, "last proof")
    assert diff.added == ["Nieuw: een podcast over weerbaarheid"]
    assert diff.removed == [removed_title]
    assert diff.subject[1] == "Nieuw onderwerp" and diff.subject[0] != diff.subject[1]
    before, after = diff.size
    assert before and after and before != after
    lines = format_diff(diff)
    assert lines[0].startswith("Since the last proof")
    assert "  + Nieuw: een podcast over weerbaarheid" in lines
    assert f"  - {removed_title}" in lines
    assert any(line.startswith("  HTML size: ") for line in lines)


def test_diff_against_the_last_sent_issue(diff_app):
    add_sample_subscribers(diff_app)
    first = store_issue(diff_app, diff_app.clock.now())
    assert send_issue(diff_app, first).finished
    (diff_app.settings.content_dir / "magazine" / "2026-12-08-nieuw.md").write_text(
        NEW_ARTICLE.format(published="2026-12-08T08:00:00+01:00"))
    later = diff_app.with_clock(FixedClock(parse_instant("2026-12-10T09:00")))
    sync(later)
    diff = diff_against(later, "last sent issue")
    assert diff.reference == f"last sent issue nr. 1 ({first.period})"
    assert "Nieuw: een podcast over weerbaarheid" in diff.added
    sent_titles = {s.item.title for s in first.magazine}
    assert sent_titles <= set(diff.removed)  # articles never appear in two issues
    assert diff.subject and diff.subject[0] == first.subject
    assert diff.size[0] and diff.size[1]
    later.engine.dispose()


def test_preview_diff_command(tmp_path, sqlite_url):
    env = {"MAILER_DATABASE_URL": sqlite_url, "MAILER_SECRET_KEY": "k" * 32,
           "MAILER_NOW": "2026-12-03T09:00", "MAILER_PREVIEW_DIR": str(tmp_path / "p"),
           "MAILER_OUTBOX_DIR": str(tmp_path / "outbox")}
    runner, config = CliRunner(), ["--config", str(REPO / "mailer.toml")]
    assert runner.invoke(main, [*config, "content", "sync"], env=env).exit_code == 0
    app = App(make_settings(tmp_path, sqlite_url), FixedClock(parse_instant("2026-12-03T09:00")))
    send_test(app, store_issue(app, app.clock.now()), ["redactie@example.org"])
    app.engine.dispose()
    result = runner.invoke(main, [*config, "preview", "--diff"], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "No sent issue to compare with yet." in result.output
    assert "Since the last proof (2026-12-03 09:00, 1 recipient(s)):\n  no changes" in result.output
