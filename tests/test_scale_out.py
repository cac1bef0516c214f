"""Real worker processes draining one issue together against the Mailgun emulator."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from contextlib import ExitStack
from datetime import date
from pathlib import Path

import pytest
import requests
from population import add_subscribers, email_of
from sqlalchemy import select

from mailer.app import App
from mailer.compose import issue_moment
from mailer.models import IssueStatus
from mailer.sending import store_issue
from mailer.store import issues as issue_store
from mailer.store import outbox as box
from mailer.store.tables import outbox
from mailer.sync import sync_source
from tests.emulators.mailgun import MailgunEmulator

REPO = Path(__file__).resolve().parent.parent
ISSUE_DATE = date(2026, 12, 3)


class StallingMailgun(MailgunEmulator):
    """Accepts and records the first call made after `after` recipients were accepted,
    then holds its answer until released: a worker caught with a batch in flight."""

    def __init__(self, after: int, **kw):
        super().__init__(keep_messages=False, **kw)
        self.after = after
        self.accepted = 0
        self.caught = threading.Event()
        self.release = threading.Event()
        self.stalled: list[str] = []

    def accept(self, messages: list[dict]) -> None:
        super().accept(messages)
        with self.lock:
            hold = not self.caught.is_set() and self.accepted >= self.after
            self.accepted += len(messages)
            if hold:
                self.stalled = [m["to"] for m in messages]
                self.caught.set()
        if hold:
            self.release.wait(120)

    def stop(self) -> None:
        self.release.set()
        super().stop()


def worker_env(app: App, emulator: MailgunEmulator, **extra: str) -> dict[str, str]:
    """Environment of a mailer process: the test database and the emulator.

    The lease stays long (the default): the workers share this host, so a dead worker's
    rows are taken over as soon as its process is gone (lease expiry on another machine
    is tested in test_worker.py), and reconciling a taken-over batch one event look-up
    per row must not outlast the lease."""
    return {
        **os.environ, "PYTHONPATH": str(REPO), "MAILER_NOW": "",
        "MAILER_DATABASE_URL": app.settings.database_url,
        "MAILER_SECRET_KEY": app.settings.secret_key, "MAILER_PROVIDER": "mailgun",
        "MAILER_PROVIDER_URL": emulator.url, "MAILER_PROVIDER_KEY": emulator.key,
        "MAILER_PROVIDER_DOMAIN": emulator.domain, "MAILER_BATCH_SIZE": "500",
        "MAILER_CONCURRENCY": "1", **extra,
    }


def mailer(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """Start `python -m mailer ARGS` from this checkout as a real process."""
    return subprocess.Popen([sys.executable, "-m", "mailer", *args], cwd=REPO, env=env,
                            stdout=log.open("w"), stderr=subprocess.STDOUT)


def prepare(app: App, count: int) -> int:
    """Sample content, `count` subscribers and the stored (draft) issue; returns its id."""
    for name, source in app.sources():
        assert sync_source(app.engine, name, source, app.clock).ok
    add_subscribers(app.engine, count, app.clock.now())
    return store_issue(app, issue_moment(app.settings, app.clock, ISSUE_DATE)).id


def enqueue_only(env: dict[str, str], tmp_path: Path) -> str:
    process = mailer(["send", "--enqueue-only", "--yes", "--date", ISSUE_DATE.isoformat()],
                     env, tmp_path / "send.log")
    assert process.wait(timeout=120) == 0, (tmp_path / "send.log").read_text()
    return (tmp_path / "send.log").read_text()


def claimed_by(app: App, issue_id: int, addresses: list[str]) -> dict[str, str]:
    """Address -> the worker id holding its row."""
    with app.engine.connect() as conn:
        return dict(conn.execute(select(outbox.c.email, outbox.c.claimed_by).where(
            outbox.c.issue_id == issue_id, outbox.c.email.in_(addresses))).all())


def outbox_rows(app: App, issue_id: int, addresses: list[str]):
    with app.engine.connect() as conn:
        return conn.execute(select(outbox.c.email, outbox.c.status, outbox.c.possible_duplicate)
                            .where(outbox.c.issue_id == issue_id,
                                   outbox.c.email.in_(addresses))).all()


class EventsRecordedInBetween(list):
    """An events list where another call's event is recorded right after the first
    append, as a send call recorded side by side with this one can be."""

    def __init__(self, record_other):
        super().__init__()
        self.record_other = record_other

    def append(self, event) -> None:
        super().append(event)
        record, self.record_other = self.record_other, None
        if record:
            record()


def test_the_stalling_emulator_lists_each_message_under_its_own_recipient():
    """Four workers' calls are recorded side by side, and the survivors reconcile the
    killed worker's batch by each recipient's accepted event: a look-up that lists
    another call's event under a recipient of the stalled call (and not its own) makes
    a survivor resend that recipient's message, a duplicate the test then blames on the
    workers."""
    from werkzeug.datastructures import MultiDict

    with StallingMailgun(after=10**9) as emu:
        emu.events = EventsRecordedInBetween(lambda: emu._record(
            MultiDict({"v:outbox_id": "2"}), email_of(2), {}, "<other@mg>"))
        auth = ("api", emu.key)
        sent = requests.post(f"{emu.url}/v3/{emu.domain}/messages", auth=auth, timeout=30,
                             data={"from": "a@example.org", "to": email_of(1), "text": "t",
                                   "v:outbox_id": "1"})
        assert sent.status_code == 200
        for n in (1, 2):
            found = requests.get(f"{emu.url}/v3/{emu.domain}/events", auth=auth, timeout=30,
                                 params={"event": "accepted", "recipient": email_of(n)})
            assert [i["user-variables"]["outbox_id"] for i in found.json()["items"]] == [str(n)]


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_four_workers_drain_50000_and_take_over_a_killed_one(app, tmp_path):
    total = int(os.environ.get('SCALE_TOTAL', 50_000))
    issue_id = prepare(app, total)
    with ExitStack() as stack:
        emulator = stack.enter_context(StallingMailgun(after=total * 3 // 10))
        env = worker_env(app, emulator)
        queued = enqueue_only({**env, "MAILER_NOW": "2026-12-03T09:00"}, tmp_path)
        assert f"{total} added to the outbox" in queued
        workers = [mailer(["worker", "--once", "--idle-max", "0.5"], env,
                          tmp_path / f"worker-{i}.log") for i in range(4)]
        stack.callback(lambda: [w.kill() for w in workers if w.poll() is None])

        # A worker's call was accepted, and its answer is held: kill that worker now.
        assert emulator.caught.wait(90), "no worker reached the stalled call"
        holders = set(claimed_by(app, issue_id, emulator.stalled).values())
        assert len(holders) == 1
        victim_pid = int(holders.pop().rpartition(":")[2])
        victim = next(w for w in workers if w.pid == victim_pid)
        victim.send_signal(signal.SIGKILL)
        assert victim.wait(timeout=30) == -signal.SIGKILL
        emulator.release.set()

        survivors = [(i, w) for i, w in enumerate(workers) if w is not victim]
        for i, w in survivors:
            assert w.wait(timeout=120) == 0, (tmp_path / f"worker-{i}.log").read_text()
        logs = [(tmp_path / f"worker-{i}.log").read_text() for i, _ in survivors]

    with app.engine.connect() as conn:
        counts = box.status_counts(conn, issue_id)
        issue = issue_store.issue_by_id(conn, issue_id)
    assert counts["sent"] == total
    assert counts["queued"] == counts["sending"] == counts["failed"] == 0
    assert issue.status is IssueStatus.SENT

    # Everyone got it exactly once: the survivors took the dead worker's batch over and
    # the provider's events told them which of its rows had been accepted.
    assert set(emulator.received) == {email_of(n) for n in range(1, total + 1)}
    assert emulator.duplicates() == {}
    stalled = outbox_rows(app, issue_id, emulator.stalled)
    assert {(status, dup) for _, status, dup in stalled} == {("sent", False)}
    taken_over = sum(int(log.split("taken over ")[1].split(",")[0]) for log in logs)
    assert taken_over >= len(emulator.stalled)
    # Rows of its batch the provider never saw were sent again, flagged as it must.
    assert counts["possible_duplicates"] == taken_over - len(emulator.stalled)


def test_two_workers_on_sqlite_send_nobody_twice(sqlite_url, tmp_path, clock):
    from conftest import make_settings

    total = 2_000
    app = App(make_settings(tmp_path, sqlite_url), clock)
    issue_id = prepare(app, total)
    with MailgunEmulator(keep_messages=False) as emulator:
        env = worker_env(app, emulator, MAILER_BATCH_SIZE="100")
        enqueue_only({**env, "MAILER_NOW": "2026-12-03T09:00"}, tmp_path)
        workers = [mailer(["worker", "--once"], env, tmp_path / f"w{i}.log") for i in range(2)]
        try:
            for i, w in enumerate(workers):
                assert w.wait(timeout=120) == 0, (tmp_path / f"w{i}.log").read_text()
        finally:
            for w in workers:
                w.kill()
    assert set(emulator.received) == {email_of(n) for n in range(1, total + 1)}
    assert emulator.duplicates() == {}
    with app.engine.connect() as conn:
        counts = box.status_counts(conn, issue_id)
    assert counts["sent"] == total and counts["possible_duplicates"] == 0
    app.engine.dispose()


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_sigterm_finishes_the_batch_in_flight_and_exits_0(app, tmp_path):
    issue_id = prepare(app, 1_200)
    with StallingMailgun(after=0) as emulator:
        env = worker_env(app, emulator)
        enqueue_only({**env, "MAILER_NOW": "2026-12-03T09:00"}, tmp_path)
        worker = mailer(["worker"], env, tmp_path / "worker.log")
        try:
            assert emulator.caught.wait(60)
            worker.send_signal(signal.SIGTERM)
            emulator.release.set()
            assert worker.wait(timeout=60) == 0, (tmp_path / "worker.log").read_text()
        finally:
            worker.kill()
    with app.engine.connect() as conn:
        counts = box.status_counts(conn, issue_id)
        sent = set(conn.execute(select(outbox.c.email).where(
            outbox.c.issue_id == issue_id, outbox.c.status == "sent")).scalars())
    # The claimed batch (500 rows, one provider call per segment) was finished and recorded.
    assert set(emulator.stalled) < sent and len(sent) == 500
    assert counts["sending"] == 0 and counts["queued"] == 1_200 - 500
    assert "stopped: sent 500" in (tmp_path / "worker.log").read_text()
