"""Notes to the editors about a failing job: one when it starts failing, one when something
new breaks while it fails, one when it works again; none for the same failure each hour."""

from datetime import timedelta
from email import message_from_bytes, policy

from tests.test_scheduler_runs import THURSDAY_NINE, runner_at, spec

GOOD_FEED = '<?xml version="1.0"?><rss version="2.0"><channel><title>x</title></channel></rss>'
BROKEN_FEED = '<?xml version="1.0"?><rss version="2.0"><channel><title>x</title><item><title>H'


def notes_in_order(app) -> list[tuple[str, str]]:
    """(subject, text) of each note mailed to the editors, oldest first: by the Date the
    runner's clock put on it (each run is an hour on), not by file times a fast run can
    leave equal."""
    folder = app.settings.path(app.settings.outbox_dir) / "issue-0"
    mails = sorted((message_from_bytes(p.read_bytes(), policy=policy.default)
                    for p in folder.glob("*.eml")), key=lambda m: m["Date"].datetime)
    return [(m["Subject"], m.get_body(("plain",)).get_content()) for m in mails]


def two_feeds(app, tmp_path):
    """The app with sources `feed-a` and `feed-b`, and their files."""
    a, b = tmp_path / "a.xml", tmp_path / "b.xml"
    a.write_text(GOOD_FEED, encoding="utf-8")
    b.write_text(GOOD_FEED, encoding="utf-8")
    sources = tmp_path / "sources.toml"
    sources.write_text("".join(f'[[sources]]\nname = "feed-{n}"\nkind = "feed"\n'
                               f'location = "{path}"\n\n' for n, path in (("a", a), ("b", b))),
                       encoding="utf-8")
    return app.with_settings(sources_file=sources), a, b


def test_editors_hear_of_a_new_failure_and_of_the_recovery_but_not_of_each_repeat(app,
                                                                                   tmp_path):
    app, feed_a, feed_b = two_feeds(app, tmp_path)

    def run_at(hours: int):
        moment = THURSDAY_NINE + timedelta(hours=hours)
        runner = runner_at(app, moment)
        return runner.run(spec(runner, "sync-content"), moment)

    feed_a.write_text(BROKEN_FEED, encoding="utf-8")
    run_at(0)
    run_at(1)  # the same failure: no second note
    assert [s for s, _ in notes_in_order(app)] == ["Planner: taak sync-content is mislukt"]
    feed_b.write_text(BROKEN_FEED, encoding="utf-8")
    run_at(2)
    run_at(3)
    subjects = [s for s, _ in notes_in_order(app)]
    assert subjects[1:] == ["Planner: taak sync-content mislukt nu ook om een andere reden"]
    new_note = notes_in_order(app)[1][1]
    assert "Bron feed-b kon niet worden gelezen" in new_note
    assert "Nieuw sinds de vorige mail: feed-b" in new_note
    feed_a.write_text(GOOD_FEED, encoding="utf-8")
    run_at(4)  # only feed-b still fails: nothing new, no note
    feed_b.write_text(GOOD_FEED, encoding="utf-8")
    assert run_at(5).status.value == "done"
    run_at(6)
    subjects = [s for s, _ in notes_in_order(app)]
    assert subjects[2:] == ["Planner: taak sync-content lukt weer"]
    assert "is weer gelukt" in notes_in_order(app)[2][1] and "krijg je" in notes_in_order(app)[2][1]
    feed_a.write_text(BROKEN_FEED, encoding="utf-8")
    run_at(7)  # failing again after the recovery is news again
    assert [s for s, _ in notes_in_order(app)][3:] == ["Planner: taak sync-content is mislukt"]


def test_what_the_scheduler_keeps_of_a_failure_names_no_subscriber(app):
    # job_state.failures outlives job_run_detail_days (it stays while the job fails), so
    # it must not hold a detail that quotes a provider's answer naming an address.
    from mailer.job_notes import failure_news
    from mailer.store.jobs import RunStatus
    from mailer.tasks import TaskResult

    runner = runner_at(app, THURSDAY_NINE)
    job = spec(runner, "newsletter")
    failed = TaskResult(RunStatus.FAILED, "ProviderError: 422 jan@example.org is inactive")
    first = failure_news(job, THURSDAY_NINE, failed, None, None)
    assert first.note is not None and first.known
    assert not any("jan@example.org" in key for key in first.known)
    again = failure_news(job, THURSDAY_NINE, failed, RunStatus.FAILED, first.known)
    assert again.note is None and again.known == first.known  # still the same failure
    # A job that names no parts failed as a whole: a detail that differs per run (a count,
    # a request id) is the same failure, or editors would get a mail every hour.
    other = TaskResult(RunStatus.FAILED, "ProviderError: 503 request 7f3a unavailable")
    assert failure_news(job, THURSDAY_NINE, other, RunStatus.FAILED, first.known).note is None
