"""Real `python -m mailer` processes on one database (SQLite and PostgreSQL): racing
schedulers and manual runs, SIGTERM mid-send, SIGKILL mid-send and restart.

A send is stopped at a known point without timing tricks: a named pipe sits where the
file provider writes the temporary file of outbox row 6, so the writer blocks there
until the test reads the pipe (or kills the process)."""

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from conftest import REPO, TEST_KEY, make_settings
from sqlalchemy import func, select

from mailer.app import App
from mailer.clock import FixedClock
from mailer.sending import store_issue
from mailer.store import jobs as job_store
from mailer.store.jobs import RunStatus
from mailer.store.tables import issues, job_runs, outbox, scheduler_heartbeats, subscribers
from tests.polling import wait_for

THURSDAY_NINE = datetime(2026, 12, 3, 9, 0, tzinfo=ZoneInfo("Europe/Amsterdam")).astimezone(UTC)

BLOCKED_ROW = 6


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """A `python -m mailer` subprocess from this checkout, its output in a log file."""
    full = {**os.environ, "PYTHONPATH": str(REPO), **env}
    with log.open("a") as out:
        return subprocess.Popen([sys.executable, "-m", "mailer", *args], cwd=REPO, env=full,
                                stdout=out, stderr=subprocess.STDOUT, text=True)


class Install:
    """One installation on the test database, driven through subprocesses."""

    def __init__(self, app, tmp_path: Path):
        self.app = app
        self.tmp = tmp_path
        self.jobs = tmp_path / "jobs"
        self.jobs.mkdir()
        shutil.copy(REPO / "jobs" / "newsletter.toml", self.jobs)
        self.outbox = app.settings.path(app.settings.outbox_dir)

    def env(self, now: str, **extra: str) -> dict[str, str]:
        return {"MAILER_DATABASE_URL": self.app.settings.database_url,
                "MAILER_SECRET_KEY": TEST_KEY, "MAILER_OUTBOX_DIR": str(self.outbox),
                "MAILER_JOBS_DIR": str(self.jobs), "MAILER_NOW": now,
                "MAILER_BATCH_SIZE": "4", "MAILER_CONCURRENCY": "1",
                "MAILER_HEARTBEAT_SECONDS": "1", **extra}

    def scheduler(self, now: str, name: str) -> subprocess.Popen:
        return start(["scheduler", "run"], self.env(now), self.tmp / f"{name}.log")

    def log(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text()

    def scalar(self, query):
        with self.app.engine.connect() as conn:
            return conn.execute(query).scalar()

    def row_status(self, row_id: int) -> str | None:
        return self.scalar(select(outbox.c.status).where(outbox.c.id == row_id))

    def counts(self) -> dict[str, int]:
        with self.app.engine.connect() as conn:
            return dict(conn.execute(select(outbox.c.status, func.count())
                                     .group_by(outbox.c.status)).all())

    def issue_status(self) -> str | None:
        return self.scalar(select(issues.c.status))

    def emls(self, issue_id: int) -> list[Path]:
        return sorted((self.outbox / f"issue-{issue_id}").glob("*.eml"))

    def seed_missed_thursday(self) -> int:
        """Coverage up to Wednesday and the week's issue stored: Thursday 09:00 is due."""
        with self.app.engine.begin() as conn:
            job_store.advance_coverage(conn, "newsletter", THURSDAY_NINE - timedelta(days=1),
                                       THURSDAY_NINE)
        return store_issue(self.app, THURSDAY_NINE).id

    def block_row(self, issue_id: int) -> list[Path]:
        """Named pipes where row 6's temporary file will go, whoever row 6 turns out to be."""
        folder = self.outbox / f"issue-{issue_id}"
        folder.mkdir(parents=True, exist_ok=True)
        with self.app.engine.connect() as conn:
            emails = conn.execute(select(subscribers.c.email)).scalars().all()
        pipes = []
        for email in emails:
            safe = re.sub(r"[^a-z0-9.@_-]", "_", email.lower())
            pipe = folder / f"{BLOCKED_ROW:08d}-{safe}.tmp"
            os.mkfifo(pipe)
            pipes.append(pipe)
        return pipes

    def blocked_pipe(self, pipes: list[Path]) -> Path:
        email = self.scalar(select(outbox.c.email).where(outbox.c.id == BLOCKED_ROW))
        safe = re.sub(r"[^a-z0-9.@_-]", "_", email.lower())
        return next(p for p in pipes if p.name.endswith(f"-{safe}.tmp"))

    def run(self) -> dict:
        with self.app.engine.connect() as conn:
            rows = conn.execute(select(job_runs)).all()
        assert len(rows) == 1, rows
        return rows[0]._asdict()


@pytest.fixture
def install(loaded_app, tmp_path) -> Install:
    return Install(loaded_app, tmp_path)


def stop(process: subprocess.Popen) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout=60)


def test_a_manual_run_racing_the_scheduler_sends_one_issue_once(install):
    issue_id = install.seed_missed_thursday()
    scheduler = install.scheduler("2026-12-03T09:05", "scheduler")
    manual = start(["jobs", "run", "newsletter"], install.env("2026-12-03T09:05"),
                   install.tmp / "manual.log")
    assert manual.wait(timeout=120) == 0, install.log("manual")
    wait_for(lambda: install.scalar(select(job_runs.c.status)) == "done", "the run to finish")
    assert stop(scheduler) == 0, install.log("scheduler")
    ran_here = ": ran: done:" in install.log("manual")
    assert ran_here or ": not run: " in install.log("manual")
    assert ("running newsletter" in install.log("scheduler")) != ran_here
    assert install.counts() == {"sent": 12}
    assert install.scalar(select(func.count()).select_from(issues)) == 1
    assert len(install.emls(issue_id)) == 12
    assert install.run()["attempts"] == 1


def test_two_schedulers_catching_up_race_to_one_issue_sent_once(install):
    issue_id = install.seed_missed_thursday()
    procs = [install.scheduler("2026-12-03T09:05", f"scheduler{i}") for i in range(2)]
    wait_for(lambda: install.issue_status() == "sent", "the issue to be sent")
    wait_for(lambda: install.scalar(select(job_runs.c.status)) == "done", "the run to finish")
    assert [stop(p) for p in procs] == [0, 0]
    assert install.counts() == {"sent": 12}
    files = install.emls(issue_id)
    assert len(files) == 12 and len({f.name.split("-", 1)[1] for f in files}) == 12
    run = install.run()
    assert run["status"] == "done" and run["attempts"] == 1 and run["period_key"] == "2026-W49"
    with install.app.engine.connect() as conn:
        beats = conn.execute(select(scheduler_heartbeats)).all()
    assert len(beats) == 2 and all(b.stopped_at is not None for b in beats)


def test_sigterm_mid_send_finishes_the_batch_and_a_restart_resumes(install):
    issue_id = install.seed_missed_thursday()
    pipes = install.block_row(issue_id)
    first = install.scheduler("2026-12-03T09:05", "first")
    wait_for(lambda: install.row_status(BLOCKED_ROW) == "sending", "row 6 to be claimed")
    first.send_signal(signal.SIGTERM)
    # The batch in flight goes on: the provider's write of row 6 completes once read.
    message = install.blocked_pipe(pipes).read_bytes()
    assert b"Subject:" in message and b"List-Unsubscribe" in message
    assert first.wait(timeout=60) == 0, install.log("first")
    assert install.counts() == {"sent": 2 * 4, "queued": 4}  # two whole batches of four
    run = install.run()
    assert run["status"] == RunStatus.INTERRUPTED.value
    assert install.scalar(select(scheduler_heartbeats.c.stopped_at)) is not None
    for pipe in pipes:
        pipe.unlink(missing_ok=True)

    second = install.scheduler("2026-12-03T09:15", "second")
    wait_for(lambda: install.issue_status() == "sent", "the resumed issue to be sent")
    wait_for(lambda: install.scalar(select(job_runs.c.status)) == "done", "the run to finish")
    assert stop(second) == 0
    assert install.counts() == {"sent": 12}
    assert install.scalar(select(func.count()).where(outbox.c.possible_duplicate)) == 0
    assert len(install.emls(issue_id)) == 12
    assert install.run()["attempts"] == 2


def test_a_scheduler_killed_mid_send_is_resumed_by_the_next_one(install):
    issue_id = install.seed_missed_thursday()
    pipes = install.block_row(issue_id)
    first = install.scheduler("2026-12-03T09:05", "first")
    wait_for(lambda: install.row_status(BLOCKED_ROW) == "sending", "row 6 to be claimed")
    first.kill()
    first.wait(timeout=30)
    for pipe in pipes:
        pipe.unlink()
    # Row 6's group of batch two was in flight (other segments of the batch may be done).
    assert 1 <= install.counts()["sending"] <= 4 and install.run()["status"] == "running"

    # Ten minutes later the outbox leases have expired; the dead owner's run is taken over.
    second = install.scheduler("2026-12-03T09:15", "second")
    wait_for(lambda: install.issue_status() == "sent", "the resumed issue to be sent")
    wait_for(lambda: install.scalar(select(job_runs.c.status)) == "done", "the run to finish")
    assert stop(second) == 0
    assert install.counts() == {"sent": 12}
    assert install.scalar(select(func.count()).where(outbox.c.possible_duplicate)) == 0
    files = install.emls(issue_id)
    assert len(files) == 12 and len({f.name.split("-", 1)[1] for f in files}) == 12
    run = install.run()
    assert run["status"] == "done" and run["attempts"] == 2
    assert "running newsletter" in install.log("second")


def test_apscheduler_fires_a_job_on_its_trigger(tmp_path, sqlite_url):
    # The trigger path does not depend on the database; SQLite alone keeps the suite fast.
    app = App(make_settings(tmp_path, sqlite_url), FixedClock(THURSDAY_NINE))
    install = Install(app, tmp_path)
    (install.jobs / "newsletter.toml").unlink()
    (install.jobs / "sync.toml").write_text(
        'task = "sync-content"\n[trigger]\ntype = "interval"\nseconds = 1\n')
    env = install.env("")  # the machine's clock: the trigger fires within a second
    process = start(["scheduler", "run"], env, install.tmp / "interval.log")
    done = select(func.count()).where(job_runs.c.job_id == "sync", job_runs.c.status == "done")
    wait_for(lambda: install.scalar(done) >= 1, "a sync run fired by the trigger")
    assert stop(process) == 0, install.log("interval")
    assert "scheduler" in install.log("interval") and "stopped" in install.log("interval")
    app.engine.dispose()


def read_unless_dead(pipe: Path, process: subprocess.Popen) -> bytes:
    """What the blocked writer writes into the pipe; b"" if the process died instead (a
    killed writer never opens the pipe, so a plain read would wait for ever)."""
    data: list[bytes] = []
    reader = threading.Thread(target=lambda: data.append(pipe.read_bytes()), daemon=True)
    reader.start()
    wait_for(lambda: not reader.is_alive() or process.poll() is not None,
             "the pipe to be written or the process to end")
    if reader.is_alive():  # a writer of our own lets the reader see the end of the pipe
        os.close(os.open(pipe, os.O_WRONLY | os.O_NONBLOCK))
        reader.join()
    return data[0]


def test_sigterm_stops_a_manual_run_after_the_batch_in_flight(install):
    issue_id = install.seed_missed_thursday()
    pipes = install.block_row(issue_id)
    manual = start(["jobs", "run", "newsletter"], install.env("2026-12-03T09:05"),
                   install.tmp / "manual.log")
    wait_for(lambda: install.row_status(BLOCKED_ROW) == "sending", "row 6 to be claimed")
    manual.send_signal(signal.SIGTERM)
    assert b"Subject:" in read_unless_dead(install.blocked_pipe(pipes), manual)
    assert manual.wait(timeout=60) == 0, install.log("manual")
    for pipe in pipes:
        pipe.unlink(missing_ok=True)
    # Nothing left in flight: the batch was recorded, the run is open for a later attempt.
    assert install.counts() == {"sent": 2 * 4, "queued": 4}
    assert install.run()["status"] == RunStatus.INTERRUPTED.value
    assert ": ran: interrupted:" in install.log("manual")
