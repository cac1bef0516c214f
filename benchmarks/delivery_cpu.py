"""Benchmark: CPU time per recipient of the sending pipeline, robust on a busy machine.

    python benchmarks/delivery_cpu.py [--providers sendgrid,brevo,mailgun,postmark]
                                      [--size 20000] [--concurrency 4] [--profile]

The sample issue is composed and enqueued for `size` subscribers in a fresh SQLite
database, then drained in this process (as `mailer send` does) to the provider's
emulator (a separate process). Printed per provider: CPU microseconds per recipient of
this process during the drain (time.process_time: user + system, all threads), the
share of it spent in garbage collection, and the wall-clock rate for orientation.
Wall-clock rates depend on what else the machine runs; CPU per recipient barely does,
so compare changes with it. --profile prints where the time goes (cProfile, all threads).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.delivery import env_for, prepare, running_emulator, stats  # noqa: E402
from mailer.app import App  # noqa: E402
from mailer.clock import FixedClock, parse_instant  # noqa: E402
from mailer.compose import issue_moment  # noqa: E402
from mailer.models import Issue  # noqa: E402
from mailer.sending import enqueue, send_issue, store_issue  # noqa: E402
from mailer.settings import load_settings, with_overrides  # noqa: E402

NOW = "2026-12-03T09:00"


class GcTimer:
    """CPU seconds spent in garbage collection while installed."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._started = 0.0

    def __call__(self, phase: str, _info: dict) -> None:
        if phase == "start":
            self._started = time.process_time()
        else:
            self.seconds += time.process_time() - self._started


@contextmanager
def profiled_threads(enabled: bool) -> Iterator[list[cProfile.Profile]]:
    """Profile every thread started inside (the dispatcher's senders)."""
    profiles: list[cProfile.Profile] = []
    run = threading.Thread.run
    if not enabled:
        yield profiles
        return

    def profiled_run(self: threading.Thread) -> None:
        profile = cProfile.Profile()
        profiles.append(profile)
        profile.enable()
        try:
            run(self)
        finally:
            profile.disable()

    threading.Thread.run = profiled_run  # type: ignore[method-assign]
    try:
        yield profiles
    finally:
        threading.Thread.run = run  # type: ignore[method-assign]


def enqueued(folder: Path, size: int, env: dict[str, str]) -> tuple[App, Issue]:
    """A fresh app over a prepared database whose issue is stored and enqueued, as
    `mailer send` leaves it just before draining."""
    prepare(folder, size, env).engine.dispose()
    app = App(with_overrides(load_settings(REPO / "mailer.toml", environ=env),
                             outbox_dir=folder / "outbox"),
              FixedClock(parse_instant(NOW)))
    issue = store_issue(app, issue_moment(app.settings, app.clock, None))
    enqueue(app, issue)
    return app, issue


def measure(provider: str, size: int, concurrency: int, profile: bool) -> None:
    with running_emulator(provider) as url, tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        env = env_for(provider, url, f"sqlite:///{folder}/mailer.db", concurrency)
        app, issue = enqueued(folder, size, env)
        stats(url, reset=True)
        main = cProfile.Profile() if profile else None
        gc_timer = GcTimer()
        gc.callbacks.append(gc_timer)
        with profiled_threads(profile) as profiles:
            if main:
                main.enable()
            cpu, wall = time.process_time(), time.monotonic()
            result = send_issue(app, issue)
            cpu, wall = time.process_time() - cpu, time.monotonic() - wall
            if main:
                main.disable()
        gc.callbacks.remove(gc_timer)
        app.engine.dispose()
    sent = result.drain.sent
    print(f"{provider:9} {sent:7} {cpu / sent * 1e6:8.1f} {gc_timer.seconds / sent * 1e6:6.1f} "
          f"{sent / wall:8.0f}", flush=True)
    if main:
        report = pstats.Stats(main)
        for p in profiles:
            report.add(p)
        report.sort_stats("tottime").print_stats(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--providers", default="sendgrid,brevo,mailgun,postmark")
    parser.add_argument("--size", type=int, default=20000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    print(f"{'provider':9} {'sent':>7} {'CPU us':>8} {'GC us':>6} {'rcpt/s':>8}   "
          "(CPU and GC: microseconds per recipient)")
    for provider in args.providers.split(","):
        measure(provider, args.size, args.concurrency, args.profile)


if __name__ == "__main__":
    main()
