"""`mailer issues unpublish|republish`: an editor takes a sent issue off the public archive
(a retracted article, a cancelled event) and puts it back, recorded with who and when."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from mailer.compose import issue_moment
from mailer.sending import send_issue, store_issue
from mailer.store import issues as issue_store
from mailer.web import create_app
from tests.conftest import DEMO_NOW, TEST_KEY
from tests.test_cli import invoke

GONE = "Dit nummer is niet meer beschikbaar"


@pytest.fixture
def sent(loaded_app):
    """The sample issue sent, and the environment for the command line on its database."""
    issue = store_issue(loaded_app, issue_moment(loaded_app.settings, loaded_app.clock, None))
    assert send_issue(loaded_app, issue).finished
    env = {"MAILER_DATABASE_URL": loaded_app.settings.database_url,
           "MAILER_SECRET_KEY": TEST_KEY, "MAILER_NOW": DEMO_NOW,
           "MAILER_OUTBOX_DIR": str(loaded_app.settings.path(loaded_app.settings.outbox_dir)),
           "LOGNAME": "redacteur"}
    return loaded_app, issue, env


def archive_links(client) -> list[str]:
    return [line for line in client.get("/archief").text.splitlines() if "/archief/" in line]


def test_an_unpublished_issue_is_gone_from_the_archive_until_it_is_republished(sent):
    app, issue, env = sent
    client = create_app(app).test_client()
    page = client.get(f"/archief/{issue.period}")
    assert page.status_code == 200 and len(archive_links(client)) == 1

    out = invoke(["issues", "unpublish", str(issue.id), "--reason", "artikel ingetrokken",
                  "--by", "Anna"], env)
    assert out.exit_code == 0, out.output
    assert f"Nummer {issue.number} ({issue.period}) staat niet meer in het archief" in out.output
    gone = client.get(f"/archief/{issue.period}")
    assert gone.status_code == 410 and GONE in gone.text
    assert issue.magazine[0].item.title not in gone.text
    assert archive_links(client) == []
    shown = json.loads(invoke(["issues", "show", str(issue.id), "--json"], env).output)
    assert shown["unpublished"] == {"at": "2026-12-03T08:00:00+00:00", "by": "Anna",
                                    "reason": "artikel ingetrokken"}
    again = invoke(["issues", "unpublish", str(issue.id)], env)
    assert again.exit_code == 0 and "stond al niet in het archief" in again.output

    back = invoke(["issues", "republish", str(issue.id)], env)
    assert back.exit_code == 0, back.output
    assert f"Nummer {issue.number} ({issue.period}) staat weer in het archief" in back.output
    assert client.get(f"/archief/{issue.period}").text == page.text  # as kept, not redone
    assert len(archive_links(client)) == 1
    status = invoke(["issues", "status", str(issue.id)], env)
    assert "archief" not in status.output
    with app.engine.connect() as conn:
        history = issue_store.archive_history(conn, issue.id)
    # Both changes are kept (the repeated unpublish changed nothing); who put it back
    # defaults to the login name.
    assert [(c.unpublished, c.by, c.reason) for c in history] == [
        (True, "Anna", "artikel ingetrokken"), (False, "redacteur", None)]


def test_the_status_of_an_unpublished_issue_says_who_took_it_off_and_why(sent):
    _, issue, env = sent
    invoke(["issues", "unpublish", str(issue.id), "--reason", "activiteit afgelast"], env)
    status = invoke(["issues", "status", str(issue.id)], env)
    assert ("niet in het archief sinds donderdag 3 december 2026 om 9.00 uur (redacteur): "
            "activiteit afgelast") in status.output


def test_only_an_issue_whose_send_began_can_be_unpublished(sent):
    app, issue, env = sent
    week_later = issue.moment + timedelta(weeks=1)
    draft = store_issue(app, week_later)
    assert draft is not None and draft.id != issue.id
    out = invoke(["issues", "unpublish", str(draft.id)], env)
    assert out.exit_code == 1
    assert f"nummer {draft.number} staat niet in het archief: het is nog niet verstuurd" in (
        out.output)
    missing = invoke(["issues", "unpublish", str(draft.id + 1)], env)
    assert missing.exit_code == 1 and "no issue with id" in missing.output
