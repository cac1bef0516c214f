"""`mailer send` variants and `mailer issues ...` through the real CLI, against an emulator."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from mailer.cli import main
from mailer.store.outbox_fill import NOTHING_FOR_SEGMENT, NOTHING_NEW_FOR_SEGMENT
from mailer.store.tables import issues, outbox
from tests.conftest import REPO, TEST_KEY
from tests.delivery_support import provider_env, start_emulator


@pytest.fixture
def setup(loaded_app, tmp_path):
    emulator = start_emulator("postmark")
    env = {"MAILER_DATABASE_URL": loaded_app.settings.database_url,
           "MAILER_SECRET_KEY": TEST_KEY, "MAILER_NOW": "2026-12-03T09:00",
           "MAILER_OUTBOX_DIR": str(tmp_path / "outbox"), **provider_env("postmark", emulator)}
    yield loaded_app, emulator, env
    emulator.stop()


def invoke(args, env, input=None):
    return CliRunner().invoke(main, ["--config", str(REPO / "mailer.toml"), *args], env=env,
                              input=input, catch_exceptions=False)


def count(app, table):
    with app.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar()


def test_dry_run_shows_segments_and_a_sample_and_sends_nothing(setup):
    app, emulator, env = setup
    result = invoke(["send", "--dry-run"], env)
    assert result.exit_code == 0, result.output
    assert "Would send to 12 of 12 active subscribers" in result.output
    assert "Subject: WeerbaarNL nr. 1" in result.output
    assert emulator.send_calls == 0 and count(app, issues) == 0


def test_dry_run_lints_like_mailer_lint(setup):
    # The dry run printed only the render's own findings and so "Lint: 0 error(s),
    # 0 warning(s)" for an issue `mailer lint` warns about. The spam check is one the
    # render never makes: without SpamAssassin it always warns.
    app, emulator, env = setup
    env = {**env, "MAILER_SPAMASSASSIN": "no-such-spamassassin"}
    linted = invoke(["lint"], env)
    summary = linted.output.strip().splitlines()[-1]
    assert "spam score not checked" in linted.output and summary.startswith("Lint: ")
    dry = invoke(["send", "--dry-run"], env)
    assert dry.exit_code == 0, dry.output
    assert "spam score not checked" in dry.output
    assert dry.output.strip().splitlines()[-1] == summary


def test_test_send_goes_only_to_the_given_addresses(setup):
    app, emulator, env = setup
    result = invoke(["send", "--test", "redactie@example.org", "--test", "eva@example.org"], env)
    assert result.exit_code == 0, result.output
    assert sorted(emulator.received) == ["eva@example.org", "redactie@example.org"]
    assert all(m["subject"].startswith("[TEST] ") for m in emulator.messages)
    assert count(app, outbox) == 0


def test_send_asks_then_lists_and_shows_as_json(setup):
    app, emulator, env = setup
    declined = invoke(["send"], env, input="n\n")
    assert declined.exit_code == 1 and emulator.send_calls == 0
    sent = invoke(["send", "--yes"], env)
    assert sent.exit_code == 0, sent.output
    assert "sent 12, failed 0" in sent.output and len(emulator.received) == 12
    listing = json.loads(invoke(["issues", "list", "--json"], env).output)
    assert listing == [{**listing[0], "id": 1, "period": "2026-W49", "status": "sent"}]
    assert listing[0]["counts"]["sent"] == 12 and listing[0]["subject"].startswith("WeerbaarNL")
    status = json.loads(invoke(["issues", "status", "1", "--json"], env).output)
    assert status["counts"]["queued"] == 0
    again = invoke(["send", "--yes"], env)
    assert again.exit_code == 0 and not emulator.duplicates()


def paused_by_server_errors(emulator, env: dict) -> tuple[dict, str]:
    """Send while the provider answers 500 until the send pauses (calls failing in a row);
    the environment used and the send's output."""
    emulator.fail_next("status", count=40, status=500)
    env = {**env, "MAILER_ERROR_BUDGET_WINDOW": "10", "MAILER_BATCH_SIZE": "3",
           "MAILER_CONCURRENCY": "1", "MAILER_MAX_ATTEMPTS": "1"}
    paused = invoke(["send", "--yes"], env)
    assert paused.exit_code == 1 and "PAUSED" in paused.output
    return env, paused.output


def test_a_paused_issue_is_resumed_and_failed_rows_retried(setup):
    app, emulator, env = setup
    env, _ = paused_by_server_errors(emulator, env)
    refused = invoke(["send", "--yes"], env)
    assert refused.exit_code == 1 and "is paused" in refused.output
    shown = invoke(["issues", "show", "1"], env)
    assert "paused" in shown.output and "HTTP 500" in shown.output
    emulator.faults.clear()
    resumed = invoke(["issues", "resume", "1"], env)
    assert resumed.exit_code == 0, resumed.output
    retried = invoke(["issues", "retry-failed", "1"], env)
    assert retried.exit_code == 0, retried.output
    status = json.loads(invoke(["issues", "status", "1", "--json"], env).output)
    assert status["status"] == "sent" and status["counts"]["sent"] == 12
    assert sorted(emulator.received.values()) == [1] * 12


def test_a_send_that_ends_with_failed_rows_says_how_to_send_them_again(setup):
    # A finished send with failed rows said only "sent" and "failed 2": the operator was
    # not told that the rows stay failed until `issues retry-failed`, the one way back.
    app, emulator, env = setup
    emulator.inactive = set(sorted(active_addresses(app))[:2])
    env = {**env, "MAILER_BATCH_SIZE": "4", "MAILER_CONCURRENCY": "1",
           "MAILER_ERROR_BUDGET": "1"}
    result = invoke(["send", "--yes"], env)
    assert result.exit_code == 0, result.output
    assert "): sent\n" in result.output and "sent 10, failed 2" in result.output
    assert ("2 row(s) failed; once the cause is fixed, `mailer issues retry-failed 1` "
            "sends them again") in result.output


def active_addresses(app) -> set[str]:
    from mailer.store.tables import subscribers

    with app.engine.connect() as conn:
        return {e.lower() for e in conn.execute(select(subscribers.c.email)).scalars()}


def test_a_send_that_delivered_to_nobody_ends_paused_not_sent(setup):
    # Every row failed (here: every address refused) yet the issue ended `sent` and the
    # send exited 0: a list smaller than the error budget's window never pauses.
    app, emulator, env = setup
    emulator.inactive = active_addresses(app)
    result = invoke(["send", "--yes"], {**env, "MAILER_ERROR_BUDGET": "1"})
    assert result.exit_code == 1, result.output
    assert "paused; once the cause is fixed: mailer issues retry-failed 1" in result.output
    assert "nothing was delivered, all 12 row(s) failed" in result.output
    status = json.loads(invoke(["issues", "status", "1", "--json"], env).output)
    assert status["status"] == "paused" and status["counts"]["failed"] == 12


def test_a_send_to_a_provider_nobody_answers_for_pauses_until_resumed(setup):
    # Connection refused on every call used up every row's attempts, failed them all,
    # and the issue said `sent`: now the send pauses with the rows queued.
    import socket

    app, emulator, env = setup
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    down = invoke(["send", "--yes"], {**env, "MAILER_PROVIDER_URL": closed,
                                      "MAILER_BATCH_SIZE": "4", "MAILER_CONCURRENCY": "1"})
    assert down.exit_code == 1, down.output
    assert "paused; once the cause is fixed: mailer issues resume 1" in down.output
    assert "PAUSED: paused: provider unreachable or failing" in down.output
    status = json.loads(invoke(["issues", "status", "1", "--json"], env).output)
    assert status["status"] == "paused" and status["counts"]["queued"] == 12
    resumed = invoke(["issues", "resume", "1"], env)
    assert resumed.exit_code == 0 and "sent 12, failed 0" in resumed.output
    assert sorted(emulator.received.values()) == [1] * 12


def test_a_paused_send_points_to_resume_not_to_running_send_again(setup):
    # A rerun of `mailer send` refuses a paused issue, so "run again to resume" sent the
    # operator in a circle; the pause itself must say how to go on.
    app, emulator, env = setup
    paused = invoke(["send", "--yes"], {**env, "MAILER_PROVIDER_KEY": "wrong-key"})
    assert paused.exit_code == 1 and "PAUSED" in paused.output
    assert "run again" not in paused.output
    assert "paused; once the cause is fixed: mailer issues resume 1" in paused.output


def test_a_paused_send_prints_each_error_once_with_its_count(setup):
    # Every failed call (each retry, each sender thread) noted its error, and the summary
    # printed the same line up to five times; a different later error was never shown.
    app, emulator, env = setup
    _, output = paused_by_server_errors(emulator, env)
    errors = [line for line in output.splitlines() if line.startswith("  error: ")]
    assert len(errors) == 1, output
    assert "HTTP 500" in errors[0] and re.search(r"\((\d+) times\)$", errors[0])


def test_resuming_a_paused_issue_sends_at_once_not_after_the_retry_backoff(setup):
    # The refused batch put its rows back with a retry delay (up to 30 s, longer after
    # more attempts): a resume right after fixing the key sent nobody and only said
    # "not finished". The operator's resume is the signal to go on now.
    app, emulator, env = setup
    paused = invoke(["send", "--yes"], {**env, "MAILER_PROVIDER_KEY": "wrong-key"})
    assert paused.exit_code == 1 and "PAUSED" in paused.output
    resumed = invoke(["issues", "resume", "1"], env)
    assert resumed.exit_code == 0, resumed.output
    assert "sent 12, failed 0" in resumed.output
    assert sorted(emulator.received.values()) == [1] * 12


def test_a_send_while_another_process_sends_the_issue_says_so(setup):
    # It ended with "not finished (run again to resume)", most rows "in flight" and exit
    # 0, as if this run had done its part; the rows are leased to a live worker elsewhere.
    from datetime import timedelta

    from mailer.store import outbox as box

    app, emulator, env = setup
    queued = invoke(["send", "--yes", "--enqueue-only"], env)
    assert queued.exit_code == 0, queued.output
    with app.engine.begin() as conn:
        taken = box.claim_batch(conn, 1, "other-host:4242", 10, app.clock.now(),
                                timedelta(minutes=10))
    assert len(taken) == 10
    result = invoke(["send", "--yes"], env)
    assert result.exit_code == 3, result.output
    assert "another process is sending it" in result.output
    assert "10 row(s) leased to other-host:4242" in result.output
    assert "run again to resume" not in result.output
    assert len(emulator.received) == 2  # the rows nobody held went out


def test_a_wrong_provider_setting_stops_send_before_the_issue_is_stored(setup):
    # The send used to store the issue, fill its outbox and mark it sending before it
    # noticed the provider could not be built, leaving a frozen issue nobody sends.
    app, emulator, env = setup
    no_key = invoke(["send", "--yes"], {**env, "MAILER_PROVIDER_KEY": ""})
    assert no_key.exit_code == 1 and "MAILER_PROVIDER_KEY" in no_key.output
    unknown = invoke(["send", "--yes"], {**env, "MAILER_PROVIDER": "postmarc"})
    assert unknown.exit_code == 1 and "unknown provider 'postmarc'" in unknown.output
    assert count(app, issues) == 0 and count(app, outbox) == 0


def test_a_missing_secret_key_stops_send_before_the_issue_is_stored(setup):
    # Without MAILER_SECRET_KEY the send stored the issue, queued every subscriber and
    # marked it sending, then failed on the first link it signed: a frozen issue (the
    # editor's later corrections no longer count) that only a resume after fixing the
    # key could finish.
    app, emulator, env = setup
    for key in ("", "too-short"):
        result = invoke(["send", "--yes"], {**env, "MAILER_SECRET_KEY": key})
        assert result.exit_code == 1 and "MAILER_SECRET_KEY" in result.output
        enqueue = invoke(["send", "--yes", "--enqueue-only"], {**env, "MAILER_SECRET_KEY": key})
        assert enqueue.exit_code == 1 and "MAILER_SECRET_KEY" in enqueue.output
    assert count(app, issues) == 0 and count(app, outbox) == 0


def test_a_dry_run_reports_a_provider_that_cannot_send(setup):
    app, emulator, env = setup
    result = invoke(["send", "--dry-run"], {**env, "MAILER_PROVIDER": "postmarc"})
    assert result.exit_code == 1 and "unknown provider 'postmarc'" in result.output
    assert "Would send" not in result.output


def test_an_invalid_test_address_is_one_clear_line_and_sends_nothing(setup):
    app, emulator, env = setup
    result = invoke(["send", "--test", "redactie@example.org", "--test", "geen-adres"], env)
    assert result.exit_code == 2
    assert "'geen-adres' is not a valid address" in result.output
    assert "Traceback" not in result.output
    assert emulator.send_calls == 0


def test_the_progress_bar_speaks_english_like_the_rest_of_the_command_line(capsys):
    from mailer.cli.progress import progress_bar
    from mailer.delivery.dispatcher import DrainReport

    with progress_bar(2) as update:
        update(DrainReport(sent=2))
    shown = capsys.readouterr().err
    assert "Sending" in shown and "Verzenden" not in shown


def test_the_confirmation_counts_only_who_has_not_had_the_issue_yet(setup):
    app, emulator, env = setup
    first = invoke(["send"], env, input="n\n")
    assert "to 12 active subscribers?" in first.output
    assert invoke(["send", "--yes"], env).exit_code == 0
    invoke(["subscribers", "add", "nieuw@example.org", "--confirmed", "--consent-note", "x"],
           env)
    again = invoke(["send"], env, input="y\n")
    assert again.exit_code == 0, again.output
    assert "to 1 of 13 active subscribers (12 already done)?" in again.output
    assert len(emulator.received) == 13 and not emulator.duplicates()


@pytest.mark.parametrize("args", [
    ["--dry-run", "--test", "redactie@example.org"],
    ["--dry-run", "--enqueue-only"],
    ["--test", "redactie@example.org", "--enqueue-only"],
    ["--test", "redactie@example.org", "--even-without-news"],
])
def test_send_modes_that_exclude_each_other_are_refused(setup, args):
    app, emulator, env = setup
    result = invoke(["send", "--yes", *args], env)
    assert result.exit_code == 2 and "cannot be combined" in result.output
    assert emulator.send_calls == 0 and count(app, issues) == 0


@pytest.mark.parametrize("status, says", [("held", "is held by the editors"),
                                          ("paused", "is paused: error budget spent")])
def test_send_refuses_a_held_or_paused_issue_before_asking(setup, status, says):
    from mailer.models import IssueStatus
    from mailer.sending import store_issue
    from mailer.store.issues import set_issue_status

    app, emulator, env = setup
    issue = store_issue(app, app.clock.now())
    with app.engine.begin() as conn:
        set_issue_status(conn, issue.id, IssueStatus(status), app.clock.now(),
                         note="error budget spent")
    result = invoke(["send"], env, input="y\n")
    assert result.exit_code == 1
    assert "Send nr." not in result.output  # nobody is asked to confirm what will not happen
    assert says in result.output and emulator.send_calls == 0


def in_week_50(setup) -> dict:
    """Issue 1 sent to everyone; the environment of the next week, whose only news is an
    event for some themes (see test_nothing_new.py)."""
    app, emulator, env = setup
    assert invoke(["send", "--yes"], env).exit_code == 0
    return {**env, "MAILER_NOW": "2026-12-10T09:00"}


MANAGERS = "s=agenda;t=bestuurders,gemeente-en-veiligheid"


def test_a_dry_run_shows_the_segments_with_nothing_new_as_skipped(setup):
    app, emulator, env = setup
    env = in_week_50(setup)
    dry = invoke(["send", "--dry-run"], env)
    assert dry.exit_code == 0, dry.output
    [managers] = [line for line in dry.output.splitlines() if MANAGERS in line]
    assert managers.endswith(f"({NOTHING_NEW_FOR_SEGMENT})")
    assert "Would send to 7 of 12 active subscribers." in dry.output
    anyway = invoke(["send", "--dry-run", "--even-without-news"], env)
    [managers] = [line for line in anyway.output.splitlines() if MANAGERS in line]
    assert managers.endswith("items, none new: sent anyway (--even-without-news))")
    assert "Would send to 10 of 12 active subscribers." in anyway.output
    assert count(app, issues) == 1


def test_the_confirmation_names_the_skipped_segments_and_issues_show_counts_them(setup):
    app, emulator, env = setup
    env = in_week_50(setup)
    declined = invoke(["send"], env, input="n\n")
    assert re.search(rf"^\s+1  {re.escape(MANAGERS)}  \(niet verstuurd: niets nieuws",
                     declined.output, re.MULTILINE)
    assert "to 7 of 12 active subscribers (5 skipped: nothing or nothing new for them)?" \
        in declined.output
    sent = invoke(["send", "--yes"], env)
    assert sent.exit_code == 0, sent.output
    assert "sent 7, failed 0, skipped 5" in sent.output and len(emulator.received) == 12
    shown = invoke(["issues", "show", "2"], env)
    assert ("       3 x niet verstuurd: niets nieuws voor de gekozen onderdelen en thema's "
            "(alles stond al in een eerder nummer)") in shown.output
    status = json.loads(invoke(["issues", "status", "2", "--json"], env).output)
    assert status["counts"]["skipped"] == 5
    assert status["skipped"] == [
        {"reason": "niet verstuurd: niets nieuws voor de gekozen onderdelen en thema's "
                   "(alles stond al in een eerder nummer)", "rows": 3},
        {"reason": "niet verstuurd: niets in dit nummer voor de gekozen onderdelen en thema's",
         "rows": 2}]


def test_an_issue_with_nothing_new_for_anyone_is_sent_only_when_asked(setup):
    from sqlalchemy import update

    from mailer.store.tables import subscribers

    app, emulator, env = setup
    env = in_week_50(setup)
    with app.engine.begin() as conn:
        conn.execute(update(subscribers).where(subscribers.c.email != "r.vandijk@example.org")
                     .values(status="unsubscribed"))
    refused = invoke(["send", "--yes"], env)
    assert refused.exit_code == 0, refused.output
    assert "Niets nieuws voor de abonnees in nr. 2 (2026-W50): het wordt niet verstuurd." \
        in refused.output
    assert "mailer send --even-without-news" in refused.output
    with app.engine.connect() as conn:
        assert conn.execute(select(issues.c.status).where(issues.c.id == 2)).scalar() == "draft"
    assert sum(emulator.received.values()) == 12
    anyway = invoke(["send", "--yes", "--even-without-news"], env)
    assert anyway.exit_code == 0, anyway.output
    assert "sent 1, failed 0" in anyway.output
    assert emulator.received["r.vandijk@example.org"] == 2


def test_a_dry_run_and_the_send_give_the_same_dutch_reasons(setup):
    from sqlalchemy import update

    from mailer.store.tables import subscribers

    app, emulator, env = setup
    env = in_week_50(setup)

    def reasons(output: str, mark: str = "niet verstuurd") -> set[str]:
        return {line for line in output.splitlines() if mark in line}

    dry = reasons(invoke(["send", "--dry-run"], env).output)
    declined = reasons(invoke(["send"], env, input="n\n").output)
    assert dry == declined and dry
    assert {line.endswith((f"({NOTHING_FOR_SEGMENT})", f"({NOTHING_NEW_FOR_SEGMENT})"))
            for line in dry} == {True}
    with app.engine.begin() as conn:
        conn.execute(update(subscribers).where(subscribers.c.email != "r.vandijk@example.org")
                     .values(status="unsubscribed"))
    dry = reasons(invoke(["send", "--dry-run"], env).output, "Niets nieuws voor de abonnees")
    refused = reasons(invoke(["send", "--yes"], env).output, "Niets nieuws voor de abonnees")
    assert dry == refused and len(dry) == 1
