"""The write turn: SQLite writers queue on a kernel lock, not in SQLite's busy handler."""

from __future__ import annotations

import fcntl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import event, text

from mailer.compose import issue_moment
from mailer.sending import send_issue, store_issue
from mailer.store import db

WAIT = 10  # seconds before a thread that never gets its signal gives up (a failure, not a timing)


@pytest.fixture
def db_url(sqlite_url) -> str:
    """SQLite only: PostgreSQL has no write turn (its writers lock rows, not the database)."""
    return sqlite_url


def test_a_second_writer_waits_for_the_turn_before_it_begins(sqlite_url, monkeypatch):
    engine = db.make_engine(sqlite_url)
    # No busy handler at all: a writer that reached BEGIN IMMEDIATE while the first one
    # holds the database would fail at once with "database is locked".
    event.listen(engine, "connect", lambda dbapi, _: dbapi.execute("PRAGMA busy_timeout=0"))
    with engine.begin() as conn:
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 0
        conn.execute(text("CREATE TABLE writes (who TEXT)"))
    queued = threading.Event()  # a writer found the turn taken and waits for it
    real_flock = fcntl.flock

    def flock(fd: int, operation: int) -> None:
        try:
            real_flock(fd, operation | fcntl.LOCK_NB)
        except BlockingIOError:
            queued.set()
            real_flock(fd, operation)

    monkeypatch.setattr(db.fcntl, "flock", flock)
    first_in = threading.Event()
    order: list[str] = []

    def first() -> None:
        with db.write_transaction(engine) as conn:
            conn.execute(text("INSERT INTO writes VALUES ('first')"))
            first_in.set()
            assert queued.wait(WAIT), "the second writer did not wait for the turn"
            order.append("first commits")

    def second() -> None:
        assert first_in.wait(WAIT)
        with db.write_transaction(engine) as conn:
            order.append("second begins")
            conn.execute(text("INSERT INTO writes VALUES ('second')"))

    errors = _run_threads(first, second)
    assert errors == [] and order == ["first commits", "second begins"]
    with engine.connect() as conn:
        assert sorted(conn.execute(text("SELECT who FROM writes")).scalars()) == [
            "first", "second"]
    assert Path(f"{engine.url.database}.writelock").exists()
    engine.dispose()


def test_sender_threads_begin_every_transaction_inside_the_write_turn(loaded_app, monkeypatch):
    app = loaded_app.with_settings(concurrency=3, batch_size=2)
    holding = threading.local()
    real_turn = db.write_turn

    @contextmanager
    def watched_turn(engine) -> Iterator[None]:
        with real_turn(engine):
            holding.turn = True
            try:
                yield
            finally:
                holding.turn = False

    monkeypatch.setattr(db, "write_turn", watched_turn)
    begun: list[tuple[str, bool]] = []

    def note_begin(_conn) -> None:
        begun.append((threading.current_thread().name, getattr(holding, "turn", False)))

    event.listen(app.engine, "begin", note_begin)
    try:
        issue = store_issue(app, issue_moment(app.settings, app.clock, date(2026, 12, 3)))
        result = send_issue(app, issue)
    finally:
        event.remove(app.engine, "begin", note_begin)
    assert result.finished and result.counts["sent"] == 12
    by_senders = [in_turn for name, in_turn in begun if name.startswith("send-")]
    assert len(by_senders) >= 12  # six batches of two: a claim and a record each
    assert all(by_senders)


def _run_threads(*bodies) -> list[BaseException]:
    """Run each body in its own thread until all are done; the exceptions they raised."""
    errors: list[BaseException] = []

    def guarded(body) -> None:
        try:
            body()
        except BaseException as exc:  # noqa: BLE001 - handed to the test to assert on
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(b,)) for b in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors
