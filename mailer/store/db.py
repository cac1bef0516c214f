"""Engines and schema upgrades: the only place that knows SQLite from PostgreSQL setup."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

MIGRATIONS = Path(__file__).parent / "migrations"


def make_engine(url: str) -> Engine:
    """Create an engine; SQLite gets WAL, foreign keys and a busy timeout."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, future=True)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 30}, future=True)
    event.listen(engine, "connect", _sqlite_pragmas)
    event.listen(engine, "begin", _sqlite_begin_immediate)
    return engine


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # Let SQLAlchemy own transactions (pysqlite's implicit BEGIN would defeat BEGIN IMMEDIATE).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_begin_immediate(connection) -> None:
    # Take the write lock at BEGIN so two writers queue up instead of failing with
    # "database is locked" when a read transaction later tries to write.
    # Straight to the driver: this runs for every transaction, and SQLAlchemy's execution
    # machinery around a constant statement costs more than the statement itself.
    connection.connection.driver_connection.execute("BEGIN IMMEDIATE")


@contextmanager
def write_turn(engine: Engine) -> Iterator[None]:
    """Wait for this process's turn to write, on a SQLite file; nothing elsewhere.

    SQLite lets one writer in at a time and makes the others poll with sleeps that grow
    to 100 ms, so busy web workers lose most of their time asleep. A kernel lock on a
    file next to the database wakes the next writer the moment the lock is free. Hold
    it around one short write transaction only (never nested).
    """
    url = engine.url
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        yield
        return
    with open(f"{url.database}.writelock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def alembic_config(engine: Engine) -> Config:
    """An Alembic config that runs our migrations on the given engine."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine) -> list[str]:
    """Bring the schema to the newest revision; returns the revisions applied."""
    before = set(current_revisions(engine))
    command.upgrade(alembic_config(engine), "heads")
    return sorted(set(current_revisions(engine)) - before)


def current_revisions(engine: Engine) -> tuple[str, ...]:
    """The revisions the database is at (empty for a new database), sorted."""
    with engine.connect() as conn:
        return tuple(sorted(MigrationContext.configure(conn).get_current_heads()))


def head_revisions(engine: Engine) -> tuple[str, ...]:
    """The newest revisions the code knows, sorted (heads come in no particular order)."""
    return tuple(sorted(ScriptDirectory.from_config(alembic_config(engine)).get_heads()))
