"""Benchmark: the sample issue to 20,000 and 100,000 recipients through each provider
adapter to its local emulator (a separate process), against a minimal client's limit.

    python benchmarks/delivery.py [--providers postmark,sendgrid,mailgun,brevo]
                                  [--sizes 20000,100000] [--concurrency 4] [--workers 1]

For each provider and size: a fresh SQLite database gets the sample content and N active
subscribers (one set-based INSERT), then a real `python -m mailer send --yes` runs. With
--workers W > 1, `mailer send --enqueue-only` queues the issue and W `mailer worker --once`
processes drain it together instead (the scale-out path, here on one machine). Printed:
  rcpt/s    recipients per second the emulator accepted from the pipeline (first call to
            last accepted batch);
  limit/s   the same for a minimal client posting pre-built batches of the same shape and
            size from the same number of threads (each with its own requests.Session);
  ratio     rcpt/s / limit/s (target >= 0.8);
  B/rcpt    request bytes on the wire per recipient, everything included;
  +B/rcpt   bytes one more recipient adds to a call (body-once providers: target <= 1 KB);
  RSS MB    peak resident memory of the `mailer send` process, or of the largest worker
            (target <= 150, flat);
  ok        every subscriber accepted exactly once.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlencode

import requests

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from mailer.app import App  # noqa: E402
from mailer.clock import FixedClock, parse_instant  # noqa: E402
from mailer.settings import load_settings, with_overrides  # noqa: E402
from mailer.store import outbox as box  # noqa: E402
from mailer.store import outbox_fill  # noqa: E402
from mailer.store.db import upgrade  # noqa: E402
from mailer.sync import sync_source  # noqa: E402
from tests.delivery_support import add_subscribers  # noqa: E402

NOW = "2026-12-03T09:00"
KEY = "bench-key"
DOMAIN = "mg.example.test"
SECRET = "benchmark-secret-key-0123456789"


def start_emulator(provider: str) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen([sys.executable, "-m", "tests.emulators", provider, "--key", KEY,
                                "--domain", DOMAIN], cwd=REPO, stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONPATH": str(REPO)})
    return process, process.stdout.readline().strip()


@contextmanager
def running_emulator(provider: str) -> Iterator[str]:
    """A provider's emulator in its own process for the block; yields its base URL."""
    emulator, url = start_emulator(provider)
    try:
        yield url
    finally:
        emulator.stdin.close()
        emulator.wait()


def env_for(provider: str, url: str, db: str, concurrency: int) -> dict[str, str]:
    return {"MAILER_DATABASE_URL": db, "MAILER_SECRET_KEY": SECRET, "MAILER_NOW": NOW,
            "MAILER_PROVIDER": provider, "MAILER_PROVIDER_URL": url, "MAILER_PROVIDER_KEY": KEY,
            "MAILER_PROVIDER_DOMAIN": DOMAIN, "MAILER_CONCURRENCY": str(concurrency)}


def prepare(folder: Path, size: int, env: dict[str, str]) -> App:
    """A database with the sample content and `size` subscribers."""
    settings = load_settings(REPO / "mailer.toml", environ=env)
    app = App(with_overrides(settings, outbox_dir=folder / "outbox"),
              FixedClock(parse_instant(NOW)))
    upgrade(app.engine)
    for name, source in app.sources():
        sync_source(app.engine, name, source, app.clock)
    add_subscribers(app.engine, size, app.clock.now())
    return app


def run_send(env: dict[str, str], workers: int = 1) -> tuple[float, float]:
    """Run `mailer send --yes`, or enqueue only and drain with `workers` worker processes;
    returns (seconds, peak RSS MB of the largest process)."""
    if workers == 1:
        drains = [start_mailer(env, "send", "--yes")]
    else:
        finish(start_mailer(env, "send", "--yes", "--enqueue-only"))
        drains = [start_mailer(env, "worker", "--once", "--idle-max", "0.1")
                  for _ in range(workers)]
    started = time.monotonic()
    rss = max([finish(p) for p in drains])
    return time.monotonic() - started, rss


def start_mailer(env: dict[str, str], *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "mailer", *args], cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO), **env},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def finish(process: subprocess.Popen) -> float:
    """Wait for a mailer process; its peak RSS in MB (it must have succeeded)."""
    output = process.stdout.read().decode()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise SystemExit(f"{' '.join(map(str, process.args[2:]))} failed:\n{output}")
    return usage.ru_maxrss / 1024


def sample_calls(app: App, size: int) -> tuple[object, object, int]:
    """The provider, a call for one batch of the pipeline's size, and the batch size."""
    dispatcher = app.dispatcher()
    with app.engine.connect() as conn:
        renders = outbox_fill.load_renders(conn, 1)
        segment = next(iter(renders))
        batch_size = dispatcher._batch_size_for(dispatcher.check_sizes(renders))
        ids = [i for i, in conn.exec_driver_sql(
            f"select id from outbox order by id limit {min(batch_size, size)}")]
        rows = box.rows_with_subscribers(conn, ids)
    batch = dispatcher.batch_for(1, renders[segment], segment, rows)
    one = dispatcher.batch_for(1, renders[segment], segment, rows[:1])
    provider = app.provider
    return provider, (provider.build_call(batch), provider.build_call(one)), len(rows)


def encoded(call) -> bytes:
    body = call.body()
    if body is not None:
        return body
    return call.data if isinstance(call.data, bytes) else urlencode(call.data).encode()


def minimal_client(provider, call, url: str, calls: int, concurrency: int) -> None:
    """Post the same pre-built batch `calls` times from `concurrency` threads."""
    body = encoded(call)
    # From the encoded body: a provider may write its JSON itself (Call.json_bytes).
    payload = json.loads(body) if call.body() is not None else None
    key = payload.get("headers", {}).get("idempotencyKey") if isinstance(payload, dict) \
        else None
    content_type = "application/json" if call.body() is not None else \
        "application/x-www-form-urlencoded"
    counter = iter(range(calls))
    lock = threading.Lock()

    def work() -> None:
        session = requests.Session()
        session.headers.update({"Accept": "application/json", "Content-Type": content_type,
                                **provider.auth_headers()})
        session.auth = provider.auth()
        while True:
            with lock:
                n = next(counter, None)
            if n is None:
                return
            data = body.replace(key.encode(), f"{n:032x}".encode()) if key else body
            response = session.post(url + call.path, data=data, timeout=120)
            response.raise_for_status()

    threads = [threading.Thread(target=work) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def stats(url: str, reset: bool = False) -> dict:
    if reset:
        return requests.post(url + "/_emulator/reset", timeout=10).json()
    return requests.get(url + "/_emulator/stats", timeout=10).json()


def accept_rate(counters: dict) -> float:
    """Recipients per second the emulator accepted, first call to last accepted batch."""
    return counters["recipients"] / counters["accept_span"]


def limit_rate(adapter, call, url: str, size: int, batch: int, concurrency: int) -> float:
    """The minimal client's rate: `size` recipients in pre-built batches of `batch`."""
    stats(url, reset=True)
    minimal_client(adapter, call, url, -(-size // batch), concurrency)
    return accept_rate(stats(url))


def bench(provider: str, size: int, concurrency: int, workers: int = 1) -> dict:
    with running_emulator(provider) as url, tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        env = env_for(provider, url, f"sqlite:///{folder}/mailer.db", concurrency)
        app = prepare(folder, size, env)
        stats(url, reset=True)
        seconds, rss = run_send(env, workers)
        sent = stats(url)
        adapter, (call, one), batch = sample_calls(app, size)
        marginal = (len(encoded(call)) - len(encoded(one))) / max(batch - 1, 1)
        limit = limit_rate(adapter, call, url, size, batch, concurrency)
        app.engine.dispose()
    rate = accept_rate(sent)
    return {"provider": provider, "workers": workers, "recipients": size, "batch": batch,
            "seconds": seconds,
            "rate": rate, "limit": limit, "ratio": rate / limit,
            "bytes": sent["bytes_received"] / size, "marginal": marginal, "rss": rss,
            "ok": sent["recipients"] == sent["distinct"] == size,
            "body_once": adapter.body_once}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--providers", default="postmark,sendgrid,mailgun,brevo")
    parser.add_argument("--sizes", default="20000,100000")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--workers", type=int, default=1,
                        help="worker processes draining the issue (1: `mailer send` alone)")
    args = parser.parse_args()
    print(f"{'provider':9} {'procs':>5} {'rcpts':>7} {'batch':>5} {'wall s':>7} {'rcpt/s':>8} "
          f"{'limit/s':>8} {'ratio':>5} {'B/rcpt':>8} {'+B/rcpt':>7} {'RSS MB':>6} ok")
    for provider in args.providers.split(","):
        for size in (int(s) for s in args.sizes.split(",")):
            r = bench(provider, size, args.concurrency, args.workers)
            print(f"{r['provider']:9} {r['workers']:5} {r['recipients']:7} {r['batch']:5} "
                  f"{r['seconds']:7.1f} "
                  f"{r['rate']:8.0f} {r['limit']:8.0f} {r['ratio']:5.2f} {r['bytes']:8.0f} "
                  f"{r['marginal']:7.0f} {r['rss']:6.0f} {'yes' if r['ok'] else 'NO'}",
                  flush=True)


if __name__ == "__main__":
    main()
