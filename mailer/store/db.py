"""Engines and schema upgrades: the only place that knows SQLite from PostgreSQL setup."""

from __future__ import annotations

import fcntl
import os
import random
import re
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import NoSuchModuleError, StatementError

from mailer.errors import ConfigError

MIGRATIONS = Path(__file__).parent / "migrations"


def make_engine(url: str) -> Engine:
    """Create an engine; SQLite gets WAL, foreign keys and a busy timeout."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return _server_engine(url, parsed.drivername)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 30}, future=True)
    event.listen(engine, "connect", _sqlite_pragmas)
    event.listen(engine, "begin", _sqlite_begin_immediate)
    return engine


def _server_engine(url: str, kind: str) -> Engine:
    """An engine for a database server; a ConfigError when its kind or driver is unknown."""
    where = "setting database_url (MAILER_DATABASE_URL)"
    try:
        return create_engine(url, pool_pre_ping=True, future=True)
    except NoSuchModuleError:
        raise ConfigError(f"{where}: unknown database kind {kind!r}; use sqlite:///PATH or "
                          "postgresql+psycopg://USER@HOST/DB") from None
    except ImportError as exc:  # the dialect is known, its driver module is not installed
        raise ConfigError(f"{where}: the driver for {kind!r} is not installed ({exc}); "
                          "for PostgreSQL use postgresql+psycopg://… "
                          "(pip install -e '.[postgres]')") from None


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
    # A plain descriptor, not a Python file object: this runs for every one-click POST.
    # Each turn opens its own, because flock excludes per open file, not per process.
    fd = os.open(f"{url.database}.writelock", os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """`engine.begin()` inside the write turn: a connection in one write transaction.

    For writers that queue up behind each other (the dispatcher's sender threads): on a
    SQLite file they wait for the kernel lock of `write_turn`, which wakes them the moment
    the previous writer commits, instead of in SQLite's busy handler, which sleeps up to
    100 ms at a time and so wakes them long after. The turn is taken before BEGIN
    IMMEDIATE and let go after COMMIT (a writer holding the database lock never waits
    for the turn). Never nest it, nor open another write turn inside it.
    """
    with write_turn(engine), engine.begin() as conn:
        yield conn


# SQLite checkpoints its WAL by default once it holds this many pages (SQLITE_DEFAULT_
# WAL_AUTOCHECKPOINT), and a one-click transaction writes about six.
SQLITE_AUTOCHECKPOINT_PAGES = 1000
CHECKPOINT_ONE_IN = SQLITE_AUTOCHECKPOINT_PAGES // 6


@contextmanager
def driver_transaction(engine: Engine) -> Iterator[Any]:
    """One write transaction straight on a pooled driver connection, yielding its cursor.

    For the few hot paths where SQLAlchemy's per-statement machinery costs more than the
    statements (one-click unsubscribe). Commits on success, rolls back on any error.
    Statements use `driver_sql` for the driver's parameter style.

    On SQLite it takes the write turn and BEGIN IMMEDIATE, as `write_turn` plus
    `engine.begin()` would, and keeps WAL checkpoints out of the COMMIT: SQLite runs one
    inside the COMMIT that crosses the threshold, with fsyncs, in every such transaction.
    Instead about one transaction in CHECKPOINT_ONE_IN checkpoints after its commit,
    still inside the turn: a checkpoint racing the next writer never reaches the end of
    the WAL, SQLite then never starts the WAL over, and under steady load it grew by
    every transaction (hundreds of MB in the one-click benchmark, each read slower).
    """
    connection = engine.raw_connection()
    try:
        cursor = connection.cursor()
        if engine.dialect.name != "sqlite":
            with _committed(connection):
                yield cursor
            return
        cursor.execute("PRAGMA wal_autocheckpoint=0")
        try:
            with write_turn(engine):
                with _committed(connection):
                    # The connection runs with isolation_level=None (see _sqlite_pragmas),
                    # so this BEGIN opens the transaction that commit() ends.
                    cursor.execute("BEGIN IMMEDIATE")
                    yield cursor
                if random.randrange(CHECKPOINT_ONE_IN) == 0:
                    cursor.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        finally:
            cursor.execute(f"PRAGMA wal_autocheckpoint={SQLITE_AUTOCHECKPOINT_PAGES}")
    finally:
        connection.close()  # back to the pool


@contextmanager
def _committed(connection) -> Iterator[None]:
    """Commit a driver connection's transaction, or roll it back on any error."""
    try:
        yield
    except BaseException:
        connection.rollback()
        raise
    connection.commit()


_NAMED_PARAMETER = re.compile(r"(?<![:\w]):(\w+)")


@lru_cache(maxsize=64)
def driver_sql(dialect_name: str, sql: str) -> str:
    """Plain SQL written with `:name` parameters, in the parameter style of the dialect's
    driver (sqlite3 takes `:name` as it is, psycopg wants `%(name)s`)."""
    if dialect_name == "sqlite":
        return sql
    if dialect_name == "postgresql":
        return _NAMED_PARAMETER.sub(r"%(\1)s", sql)
    raise NotImplementedError(f"no plain-SQL parameter style known for {dialect_name}")


def alembic_config(engine: Engine) -> Config:
    """An Alembic config that runs our migrations on the given engine."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine) -> list[str]:
    """Bring the schema to the newest revision; returns the revisions applied, sorted."""
    config = alembic_config(engine)
    script = ScriptDirectory.from_config(config)
    before = _with_ancestors(script, current_revisions(engine))
    command.upgrade(config, "heads")
    # The database records only its heads: a revision below a head (0001 below them all)
    # was applied too when it was not below a head before.
    return sorted(_with_ancestors(script, current_revisions(engine)) - before)


def _with_ancestors(script: ScriptDirectory, revisions: tuple[str, ...]) -> set[str]:
    """The given revisions and every revision they build on."""
    if not revisions:
        return set()
    return {r.revision for r in script.iterate_revisions(revisions, "base")}


def current_revisions(engine: Engine) -> tuple[str, ...]:
    """The revisions the database is at (empty for a new database), sorted."""
    with engine.connect() as conn:
        return tuple(sorted(MigrationContext.configure(conn).get_current_heads()))


def head_revisions(engine: Engine) -> tuple[str, ...]:
    """The newest revisions the code knows, sorted (heads come in no particular order)."""
    return tuple(sorted(ScriptDirectory.from_config(alembic_config(engine)).get_heads()))


def driver_reason(exc: StatementError) -> str:
    """The first line of the database driver's own message, or its type when it has none.

    Never str(exc): SQLAlchemy adds the SQL statement and its parameters, which may hold
    subscribers' addresses and do not belong in a one-line report or a warning log.
    """
    cause = exc.orig if exc.orig is not None else exc
    text = str(exc.orig).strip() if exc.orig is not None else ""
    return text.splitlines()[0] if text else type(cause).__name__
