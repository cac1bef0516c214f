"""`mailer preview` of a week whose issue was sent shows the issue as stored then; a
draft is composed and rendered afresh."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy import update

from mailer.app import App
from mailer.cli import main
from mailer.cli.demo import add_sample_subscribers
from mailer.clock import FixedClock, parse_instant
from mailer.models import Preferences
from mailer.sending import send_issue, store_issue
from mailer.store.tables import issue_renders, items
from mailer.sync import sync_source
from tests.conftest import DEMO_NOW, REPO, TEST_KEY, make_settings

SENT_NOTE = "Dit nummer is al verstuurd"


@pytest.fixture
def setup(tmp_path, sqlite_url):
    env = {"MAILER_DATABASE_URL": sqlite_url, "MAILER_SECRET_KEY": TEST_KEY,
           "MAILER_NOW": DEMO_NOW, "MAILER_PREVIEW_DIR": str(tmp_path / "p"),
           "MAILER_OUTBOX_DIR": str(tmp_path / "outbox")}
    app = App(make_settings(tmp_path, sqlite_url), FixedClock(parse_instant(DEMO_NOW)))
    for name, source in app.sources():
        assert sync_source(app.engine, name, source, app.clock).ok
    add_sample_subscribers(app)
    yield app, env, tmp_path / "p" / "issue.html"
    app.engine.dispose()


def preview(env) -> str:
    result = CliRunner().invoke(main, ["--config", str(REPO / "mailer.toml"), "preview"],
                                env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def retitle(app, item, title: str) -> None:
    with app.engine.begin() as conn:
        conn.execute(update(items).where(items.c.source == item.source,
                                         items.c.source_id == item.source_id)
                     .values(title=title))


def test_a_draft_is_composed_afresh_and_a_sent_issue_shown_as_stored(setup):
    app, env, html = setup
    lead = store_issue(app, app.clock.now()).magazine[0].item
    retitle(app, lead, "Een kop van voor het versturen")
    output = preview(env)
    assert SENT_NOTE not in output
    assert "Een kop van voor het versturen" in html.read_text()  # the draft as it is now

    assert send_issue(app, store_issue(app, app.clock.now())).finished
    retitle(app, lead, "Een kop van na het versturen")
    output = preview(env)
    assert f"{SENT_NOTE}: dit is het opgeslagen nummer, precies zoals" in output
    assert "Lint: 0 error(s)" in output
    shown = html.read_text()
    assert "Een kop van voor het versturen" in shown
    assert "Een kop van na het versturen" not in shown


def test_a_sent_issue_nobody_got_whole_is_said_to_be_laid_out_again(setup):
    app, env, html = setup
    issue = store_issue(app, app.clock.now())
    assert send_issue(app, issue).finished
    with app.engine.begin() as conn:
        conn.execute(issue_renders.delete().where(
            issue_renders.c.segment_key == Preferences().key()))
    output = preview(env)
    assert f"{SENT_NOTE}, maar niemand kreeg alle onderdelen" in output
    assert issue.magazine[0].item.title in html.read_text()


def test_the_diff_of_a_sent_week_is_of_the_stored_rendering(setup):
    """`--diff` compares what was sent, not a new layout of the content as edited since."""
    from mailer.sending import send_test

    app, env, _ = setup
    issue = store_issue(app, app.clock.now())
    send_test(app, issue, ["redactie@example.org"])
    assert send_issue(app, store_issue(app, app.clock.now())).finished
    retitle(app, issue.magazine[0].item, "Een veel langere kop van na het versturen " * 5)
    result = CliRunner().invoke(main, ["--config", str(REPO / "mailer.toml"), "preview",
                                       "--diff"], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "Het verschil gaat over het opgeslagen nummer" in result.output
    since_proof = result.output[result.output.index("Since the last proof"):].splitlines()
    assert since_proof[1] == "  no changes", result.output
