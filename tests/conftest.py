"""Shared fixtures: real databases (a SQLite file, the machine's PostgreSQL), settings, apps.

PostgreSQL tests run against MAILER_TEST_POSTGRES_URL (default: the local server's `test`
database). Each test session gets a database of its own, so parallel runs never collide.
Under CI=true a missing PostgreSQL fails the run instead of skipping.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from mailer.app import App
from mailer.clock import FixedClock, parse_instant
from mailer.settings import load_settings, with_overrides
from mailer.store.db import make_engine, upgrade
from mailer.store.tables import metadata

REPO = Path(__file__).resolve().parent.parent
TEST_KEY = "test-secret-key-that-is-long-enough"
DEMO_NOW = "2026-12-03T09:00"
POSTGRES_URL = os.environ.get(
    "MAILER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _postgres_admin():
    try:
        engine = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        return engine
    except Exception as exc:  # noqa: BLE001 - any failure means "no PostgreSQL here"
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is required in CI but unreachable at {POSTGRES_URL}: {exc}")
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL}")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this test session."""
    admin = _postgres_admin()
    name = f"mailer_test_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE datname = :n"), {"n": name})
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    """A migrated SQLite file, copied for each test (migrating once is faster)."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


def _truncate_postgres(url: str) -> None:
    engine = create_engine(url)
    names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request, tmp_path) -> str:
    """An empty, migrated database: a SQLite file, then the session's PostgreSQL database."""
    if request.param == "sqlite":
        target = tmp_path / "mailer.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), target)
        return f"sqlite:///{target}"
    url = request.getfixturevalue("postgres_url")
    _truncate_postgres(url)
    return url


@pytest.fixture
def sqlite_url(tmp_path, sqlite_template) -> str:
    """An empty, migrated SQLite database (for tests that need only the embedded store)."""
    target = tmp_path / "mailer.db"
    shutil.copy(sqlite_template, target)
    return f"sqlite:///{target}"


def make_settings(tmp_path: Path, database_url: str, **overrides):
    """Repository settings pointed at a test database and folders, with a test key."""
    settings = load_settings(REPO / "mailer.toml", environ={})
    return with_overrides(
        settings, database_url=database_url, outbox_dir=tmp_path / "outbox",
        preview_dir=tmp_path / "preview", secret_key=TEST_KEY, **overrides,
    )


@pytest.fixture
def settings(tmp_path, db_url):
    return make_settings(tmp_path, db_url)


@pytest.fixture
def clock():
    return FixedClock(parse_instant(DEMO_NOW))


@pytest.fixture
def app(settings, clock) -> Iterator[App]:
    application = App(settings, clock)
    yield application
    application.engine.dispose()


@pytest.fixture
def mailer(tmp_path, sqlite_url) -> Iterator[App]:
    """An app for the subscriber site at http://localhost, on an empty SQLite database
    (the web tests)."""
    application = App(make_settings(tmp_path, sqlite_url, base_url="http://localhost"),
                      FixedClock(parse_instant(DEMO_NOW)))
    yield application
    application.engine.dispose()


@pytest.fixture
def loaded_app(app) -> App:
    """An app whose database holds the sample content and the sample subscribers."""
    from mailer.cli.demo import add_sample_subscribers
    from mailer.sync import sync_source

    for name, source in app.sources():
        assert sync_source(app.engine, name, source, app.clock).ok
    add_sample_subscribers(app)
    return app


def run_mailer(args: list[str], env: dict[str, str] | None = None, cwd: Path = REPO,
               timeout: float = 120, **kwargs) -> subprocess.CompletedProcess:
    """Run `python -m mailer` from this checkout as a real subprocess."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run([sys.executable, "-m", "mailer", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout, **kwargs)


@pytest.fixture(scope="session")
def httpserver_listen_address():
    """pytest-httpserver on 127.0.0.1 with an ephemeral port (never "localhost"/IPv6)."""
    return ("127.0.0.1", 0)


@pytest.fixture(scope="session")
def node_modules() -> Path:
    """The npm packages the editor tools use (caniemail data, official MJML).

    Installed from the committed lock file when missing, so `pytest` alone works on a
    fresh checkout; CI's `.ci/run` has usually installed them already.
    """
    folder = REPO / "node_modules"
    if not ((folder / "caniemail").is_dir() and (folder / "mjml").is_dir()):
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail("npm is needed for the editor tools' tests (Debian: apt-get install npm)")
        subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=REPO,
                       check=True, timeout=600)
    return folder
