"""Retention of the scheduler's run records: a proof run's outcome line names the editors'
addresses, so it goes after `job_run_detail_days`; the run row itself stays, because it is
what makes a job run exactly once per period. On both databases."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from mailer.clock import FixedClock
from mailer.retention import apply_retention
from mailer.store import jobs as job_store
from mailer.store.jobs import RunStatus
from mailer.store.tables import job_runs
from tests.test_scheduler_runs import at, runner_at

PROOF_TIME = datetime(2026, 12, 2, 13, 0, tzinfo=UTC)


def runs(app) -> dict[str, object]:
    with app.engine.connect() as conn:
        return {r.job_id: r for r in conn.execute(select(job_runs))}


def run_by_machine_clock(app, moment: datetime, job_id: str):
    """Run a job as the scheduler would at `moment`, its record stamped with that time."""
    runner = runner_at(app, moment)
    runner.machine = FixedClock(moment)  # leases and finish times, normally the machine's
    return runner, runner.run(runner.specs[job_id], moment)


def test_a_proof_runs_addresses_go_after_job_run_detail_days_but_the_run_stays(loaded_app):
    app = loaded_app
    assert app.settings.job_run_detail_days == 90
    runner, proof = run_by_machine_clock(app, PROOF_TIME, "proof")
    assert proof.status is RunStatus.DONE and "redactie@platformjep.example.nl" in proof.detail
    _, recent = run_by_machine_clock(app, PROOF_TIME + timedelta(days=60), "purge-pending")
    with app.engine.begin() as conn:  # a run still going has no outcome line yet: untouched
        job_store.claim_run(conn, job_id="retry-failed", period_key="k", task="retry-failed",
                            fire_time=PROOF_TIME, owner="host:1", now=PROOF_TIME,
                            lease=timedelta(minutes=10), manual=False,
                            owner_is_dead=lambda owner: False)

    later = at(app, PROOF_TIME + timedelta(days=91))
    assert apply_retention(later, dry_run=True).run_details == 1
    assert apply_retention(later).run_details == 1

    kept = runs(app)
    assert kept["proof"].detail is None
    assert (kept["proof"].status, kept["proof"].issue_id) == ("done", proof_issue(proof))
    assert kept["purge-pending"].detail == recent.detail
    assert kept["retry-failed"].status == "running"
    assert apply_retention(later).run_details == 0  # nothing left to thin
    # The row still says the period ran: the proof is not sent again, not even by hand.
    again = runner.run(runner.specs["proof"], PROOF_TIME, manual=True)
    assert not again.ran and again.status is RunStatus.DONE


def proof_issue(outcome) -> int:
    """The issue id a proof run's outcome line names ("proof of issue 1 for ...")."""
    return int(outcome.detail.split()[3])
