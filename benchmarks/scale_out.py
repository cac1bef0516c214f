"""Scale-out on PostgreSQL: enqueue a million subscribers, drain with 1, 2 and 4 workers.

    python benchmarks/scale_out.py [--subscribers 1000000] [--slice 200000] [--workers 1,2,4]

Makes a throwaway database on the local PostgreSQL (MAILER_TEST_POSTGRES_URL, default
postgres@127.0.0.1:5432/test), inserts the subscribers set-based, and times `enqueue`
(INSERT ... SELECT, render once per segment). Then, per worker count, it releases the
next `--slice` queued rows (the rest wait with a retry time far ahead, which
`worker --once` leaves alone), starts that many real `mailer worker --once` processes
(`--provider`, default sendgrid) against that provider's local emulator (tests/emulators),
and prints recipients/s over the wall time from start to the last exit, plus each worker's peak RSS
(VmHWM). Prints a Markdown table at the end.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from population import add_subscribers  # noqa: E402
from sqlalchemy import create_engine, select, text, update  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from mailer.app import App  # noqa: E402
from mailer.compose import issue_moment  # noqa: E402
from mailer.sending import enqueue, store_issue  # noqa: E402
from mailer.settings import load_settings, with_overrides  # noqa: E402
from mailer.store.db import upgrade  # noqa: E402
from mailer.store.tables import outbox  # noqa: E402
from mailer.sync import sync_source  # noqa: E402
from tests.emulators.brevo import BrevoEmulator  # noqa: E402
from tests.emulators.mailgun import MailgunEmulator  # noqa: E402
from tests.emulators.sendgrid import SendGridEmulator  # noqa: E402

# The emulator runs in this process, in one interpreter: its own speed caps the drain.
# SendGrid's accepts about 150,000 recipients/s here, so the workers are what is measured;
# Mailgun's (multipart forms) about 5,000/s, which one worker already reaches.
EMULATORS = {"sendgrid": SendGridEmulator, "brevo": BrevoEmulator, "mailgun": MailgunEmulator}

ADMIN_URL = os.environ.get("MAILER_TEST_POSTGRES_URL",
                           "postgresql+psycopg://postgres@127.0.0.1:5432/test")
KEY = "benchmark-secret-key-long-enough"
PARKED = datetime(2999, 1, 1, tzinfo=UTC)


def main() -> None:
    """Run the benchmark and print its figures."""
    args = parse_args()
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"mailer_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        run(url, args)
    finally:
        with admin.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE datname = :n"), {"n": name})
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=1_000_000)
    parser.add_argument("--slice", type=int, default=200_000,
                        help="rows drained per worker count (0 = all of them, every time)")
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--provider", choices=sorted(EMULATORS), default="sendgrid",
                        help="whose local emulator the workers send to")
    parser.add_argument("--threads", type=int, default=1,
                        help="sender threads per worker (setting concurrency)")
    return parser.parse_args()


def run(url: str, args: argparse.Namespace) -> None:
    settings = with_overrides(load_settings(REPO / "mailer.toml", environ={}), database_url=url,
                              secret_key=KEY, now="2026-12-03T09:00")
    app = App(settings)
    upgrade(app.engine)
    for source_name, source in app.sources():
        sync_source(app.engine, source_name, source, app.clock)
    print(f"provider emulator: {args.provider}")
    print(f"machine: {platform.node()}, {os.cpu_count()} cores, "
          f"{_memory_gib():.0f} GiB RAM, {platform.python_implementation()} "
          f"{platform.python_version()}, PostgreSQL {_server_version(app)}")

    started = time.perf_counter()
    add_subscribers(app.engine, args.subscribers, app.clock.now())
    print(f"insert {args.subscribers:,} subscribers (generate_series): "
          f"{time.perf_counter() - started:.1f} s")
    issue = store_issue(app, issue_moment(settings, app.clock, None))
    started = time.perf_counter()
    added = enqueue(app, issue)
    enqueue_s = time.perf_counter() - started
    print(f"enqueue {added:,} outbox rows (INSERT ... SELECT + render per segment): "
          f"{enqueue_s:.1f} s (target < 20 s)")
    with app.engine.begin() as conn:  # analyse, as autovacuum would after a bulk load
        conn.execute(text("ANALYZE outbox"))

    rows = []
    for count in [int(n) for n in args.workers.split(",")]:
        size = release_slice(app, issue.id, args.slice)
        rate, rss = drain(url, count, size, args.threads, args.provider)
        rows.append((count, size, rate, rss))
        print(f"{count} worker(s): {size:,} recipients, {rate:,.0f} recipients/s, "
              f"peak RSS per worker {', '.join(f'{r:.0f}' for r in rss)} MB")
    print("\n| workers | recipients | recipients/s | peak RSS per worker (MB) |")
    print("|---|---|---|---|")
    for count, size, rate, rss in rows:
        print(f"| {count} | {size:,} | {rate:,.0f} | {', '.join(f'{r:.0f}' for r in rss)} |")
    print(f"\nenqueue of {added:,} rows: {enqueue_s:.1f} s")
    app.engine.dispose()


def release_slice(app: App, issue_id: int, size: int) -> int:
    """Make the next `size` queued rows due; park every other queued row far ahead."""
    with app.engine.begin() as conn:
        queued = outbox.c.status == "queued"
        conn.execute(update(outbox).where(outbox.c.issue_id == issue_id, queued)
                     .values(next_attempt_at=PARKED))
        ids = select(outbox.c.id).where(outbox.c.issue_id == issue_id, queued)
        if size:
            ids = ids.order_by(outbox.c.id).limit(size)
        return conn.execute(update(outbox).where(outbox.c.id.in_(ids.scalar_subquery()))
                            .values(next_attempt_at=None)).rowcount


def drain(url: str, count: int, size: int, threads: int,
          provider: str) -> tuple[float, list[float]]:
    """Run `count` worker processes until the slice is sent; (recipients/s, RSS MB each)."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    with EMULATORS[provider](keep_messages=False) as emulator:
        env = {**os.environ, "PYTHONPATH": str(REPO), "MAILER_NOW": "",
               "MAILER_DATABASE_URL": url, "MAILER_SECRET_KEY": KEY,
               "MAILER_PROVIDER": provider, "MAILER_PROVIDER_URL": emulator.url,
               "MAILER_PROVIDER_KEY": emulator.key,
               "MAILER_PROVIDER_DOMAIN": getattr(emulator, "domain", ""),
               "MAILER_CONCURRENCY": str(threads)}
        started = time.perf_counter()
        workers = [subprocess.Popen([sys.executable, "-m", "mailer", "worker", "--once"],
                                    cwd=REPO,
                                    env=env, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL) for _ in range(count)]
        # VmHWM of each live worker: its own peak RSS. (wait4's ru_maxrss would also count
        # this process's memory, copied at fork before the worker's exec.)
        peaks = {w.pid: 0 for w in workers}
        while any(w.poll() is None for w in workers):
            for w in workers:
                peaks[w.pid] = max(peaks[w.pid], _peak_rss_mb(w.pid))
            time.sleep(0.2)  # sampling interval of the measurement, not synchronisation
        for w in workers:
            if w.returncode != 0:
                raise SystemExit(f"worker {w.pid} exited with {w.returncode}")
        rss = [peaks[w.pid] for w in workers]
        elapsed = time.perf_counter() - started
        accepted = sum(emulator.received.values())
        if accepted < size:
            raise SystemExit(f"only {accepted} of {size} recipients accepted")
    return size / elapsed, rss


def _peak_rss_mb(pid: int) -> float:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:  # already gone
        return 0.0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _memory_gib() -> float:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30


def _server_version(app: App) -> str:
    with app.engine.connect() as conn:
        return conn.execute(text("SHOW server_version")).scalar()


if __name__ == "__main__":
    main()
