"""Benchmark: RFC 8058 one-click unsubscribe against `mailer serve` (gunicorn, SQLite).

    python benchmarks/one_click.py [--subscribers 20000] [--seconds 10] [--connections 32]
    python benchmarks/one_click.py --in-process [--subscribers 20000]

Creates a SQLite database with many active subscribers, starts `mailer serve`, and runs
Debian's `wrk` POSTing `List-Unsubscribe=One-Click` to their (valid, distinct) unsubscribe
URLs; then does the same against a bare Flask + gunicorn + SQLite app that updates one row.
Prints requests/s, p99 latency and errors for both. Target: >= 3,000 req/s, p99 < 25 ms.
With --in-process it calls both WSGI apps directly instead, without server or load generator,
and prints the CPU time per request: a figure other load on the machine disturbs little.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import insert

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from mailer.links import Links  # noqa: E402
from mailer.store.db import make_engine, upgrade  # noqa: E402
from mailer.store.tables import subscribers  # noqa: E402

KEY = "benchmark-secret-key-0123456789abcdef"
LOAD = ""
LUA = """
paths = {%s}
counter = 0
offset = 0
function setup(thread)
  thread:set("offset", offset)
  offset = offset + math.floor(#paths / 4)
end
function request()
  counter = counter + 1
  local path = paths[((counter + offset) %% #paths) + 1]
  return wrk.format("POST", path, {["Content-Type"] = "application/x-www-form-urlencoded"},
                    "List-Unsubscribe=One-Click")
end
"""


def free_port() -> int:
    """An unused TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(url: str, process: subprocess.Popen, timeout: float = 30) -> None:
    """Poll a URL until it answers, or fail if the server died or the deadline passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited: {process.stderr.read().decode()}")
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not come up")


def seed_mailer_db(path: Path, count: int) -> list[str]:
    """A migrated database with `count` active subscribers; returns their one-click paths."""
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    now = datetime.now(UTC)
    rows = [dict(email=f"lezer{i}@example.org", name=f"Lezer {i}", status="active",
                 sections=["agenda", "magazine"], themes=[], segment_key="s=agenda,magazine;t=",
                 token_version=1, source="benchmark", created_at=now, updated_at=now)
            for i in range(1, count + 1)]
    with engine.begin() as conn:
        conn.execute(insert(subscribers), rows)
    engine.dispose()
    links = Links(KEY, "http://bench")
    return [f"/afmelden/{links.token('unsubscribe', i, 1)}" for i in range(1, count + 1)]


def seed_bare_db(path: Path, count: int) -> list[str]:
    """The baseline's table of `count` rows; returns their paths."""
    import sqlite3

    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE people (id INTEGER PRIMARY KEY, status TEXT NOT NULL)")
    db.executemany("INSERT INTO people VALUES (?, 'active')", [(i,) for i in range(1, count + 1)])
    db.commit()
    db.close()
    return [f"/afmelden/{i}" for i in range(1, count + 1)]


def cpu_seconds(master: int) -> float:
    """User + system CPU seconds of a server's worker processes (children of the master)."""
    total = 0.0
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    for pid in [master, *map(int, children)]:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def run_wrk(base: str, paths: list[str], script_dir: Path, args, master: int) -> dict:
    """Run wrk with a script that cycles through the paths; parse its summary and add the
    server's CPU time per request, a figure that other load on the machine disturbs less."""
    script = script_dir / f"one_click_{abs(hash(base))}.lua"
    script.write_text(LUA % ",".join(json.dumps(p) for p in paths))
    # Warm up: every worker loads its templates, statements and connections first.
    subprocess.run(["wrk", "-t", "1", "-c", str(args.connections), "-d", "2s", "-s", str(script),
                    base], capture_output=True, check=True)
    before = cpu_seconds(master)
    out = subprocess.run(
        ["wrk", "-t", str(args.threads), "-c", str(args.connections), "-d", f"{args.seconds}s",
         "--latency", "-s", str(script), base],
        capture_output=True, text=True, check=True).stdout
    result = parse_wrk(out)
    result["cpu_ms"] = (cpu_seconds(master) - before) * 1000 / max(result["requests"], 1)
    return result


def parse_wrk(out: str) -> dict:
    """Requests/s, p99 latency (ms), non-2xx responses and socket errors from wrk's output."""
    unit = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                       out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p99_ms": float(p99.group(1)) * unit[p99.group(2)],
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": sum(int(x) for x in errors.groups()) if errors else 0,
    }


def serve(command: list[str], env: dict, port: int) -> subprocess.Popen:
    """Start a server process and wait until it answers."""
    process = subprocess.Popen(command, cwd=REPO, env={**os.environ, **env},
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return process


def stop(process: subprocess.Popen) -> None:
    """Stop a server process we started."""
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def bench_mailer(folder: Path, args) -> dict:
    """The mailer's one-click endpoint under `mailer serve`."""
    paths = seed_mailer_db(folder / "mailer.db", args.subscribers)
    port = free_port()
    env = {"MAILER_DATABASE_URL": f"sqlite:///{folder / 'mailer.db'}", "MAILER_SECRET_KEY": KEY,
           "MAILER_BASE_URL": "http://bench", "MAILER_OUTBOX_DIR": str(folder / "outbox"),
           "PYTHONPATH": str(REPO)}
    process = serve([sys.executable, "-m", "mailer", "serve", "--port", str(port),
                     "--workers", str(args.workers), "--threads", str(args.server_threads)],
                    env, port)
    try:
        wait_until_up(f"http://127.0.0.1:{port}/healthz", process)
        return run_wrk(f"http://127.0.0.1:{port}", paths, folder, args, process.pid)
    finally:
        stop(process)


def bench_bare(folder: Path, args) -> dict:
    """The baseline: bare Flask + gunicorn + SQLite doing one UPDATE per POST."""
    paths = seed_bare_db(folder / "bare.db", args.subscribers)
    port = free_port()
    # The same gunicorn setup as `mailer serve` (gthread, keep-alive), so only the app differs.
    process = serve([sys.executable, "-m", "gunicorn", "-w", str(args.workers), "-k", "gthread",
                     "--threads", str(args.server_threads), "--keep-alive", "5",
                     "--graceful-timeout", "5", "-b", f"127.0.0.1:{port}", "--log-level",
                     "warning", "benchmarks.bare_app:app"],
                    {"BARE_DB": str(folder / "bare.db"), "PYTHONPATH": str(REPO)}, port)
    try:
        _wait_post(f"http://127.0.0.1:{port}/afmelden/1", process)
        return run_wrk(f"http://127.0.0.1:{port}", paths, folder, args, process.pid)
    finally:
        stop(process)


def _wait_post(url: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read().decode()
        try:
            urllib.request.urlopen(urllib.request.Request(url, data=b"", method="POST"),
                                   timeout=1).read()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not come up")


def in_process_cpu(app, paths: list[str]) -> float:
    """CPU microseconds per one-click POST, calling a WSGI app directly (after a warm-up)."""
    from werkzeug.test import EnvironBuilder

    def environ(path: str) -> dict:
        return EnvironBuilder(path, method="POST", data=b"List-Unsubscribe=One-Click",
                              content_type="application/x-www-form-urlencoded",
                              environ_base={"REMOTE_ADDR": "127.0.0.1"}).get_environ()

    def post(env: dict) -> None:
        statuses = []
        for _ in app(env, lambda status, headers, exc_info=None: statuses.append(status)):
            pass
        assert statuses[0].startswith("200"), statuses

    warm, timed = paths[:len(paths) // 10], paths[len(paths) // 10:]
    for env in map(environ, warm):
        post(env)
    environs = [environ(path) for path in timed]
    start = time.process_time()
    for env in environs:
        post(env)
    return (time.process_time() - start) * 1e6 / len(environs)


def bench_in_process(folder: Path, args) -> dict:
    """CPU per request of the mailer's and the bare app's WSGI apps, without a server."""
    paths = seed_mailer_db(folder / "mailer.db", args.subscribers)
    os.environ.update(MAILER_DATABASE_URL=f"sqlite:///{folder / 'mailer.db'}",
                      MAILER_SECRET_KEY=KEY, MAILER_BASE_URL="http://bench",
                      MAILER_OUTBOX_DIR=str(folder / "outbox"))
    from mailer.app import App
    from mailer.settings import load_settings
    from mailer.web import create_app

    mailer = App(load_settings())
    results = {"mailer": in_process_cpu(create_app(mailer), paths)}
    mailer.engine.dispose()
    bare_paths = seed_bare_db(folder / "bare.db", args.subscribers)
    os.environ["BARE_DB"] = str(folder / "bare.db")
    from benchmarks.bare_app import app as bare

    results["bare flask"] = in_process_cpu(bare, bare_paths)
    return results


def main() -> None:
    """Run both benchmarks and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=20000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--server-threads", type=int, default=2)  # mailer serve's default
    parser.add_argument("--in-process", action="store_true",
                        help="CPU per request calling the WSGI apps directly, no server")
    args = parser.parse_args()
    if args.in_process:
        folder = Path(tempfile.mkdtemp(prefix="one-click-cpu-"))
        try:
            for name, cpu in bench_in_process(folder, args).items():
                print(f"{name:13} {cpu:6.0f} us CPU per request (in process, no server)")
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed: apt-get install wrk")
    global LOAD
    LOAD = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    folder = Path(tempfile.mkdtemp(prefix="one-click-bench-"))
    try:
        results = {"mailer serve": bench_mailer(folder, args),
                   "bare flask": bench_bare(folder, args)}
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"{args.connections} connections, {args.seconds} s, gunicorn gthread {args.workers} "
          f"workers x {args.server_threads} threads, "
          f"{args.subscribers} subscribers")
    for name, r in results.items():
        print(f"{name:13} {r['requests_per_s']:8.0f} req/s   p99 {r['p99_ms']:6.1f} ms   "
              f"requests {r['requests']}   non-2xx {r['non_2xx']}   "
              f"socket errors {r['socket_errors']}   server CPU {r['cpu_ms']:.2f} ms/request")
    ratio = results["mailer serve"]["requests_per_s"] / results["bare flask"]["requests_per_s"]
    cpu = results["bare flask"]["cpu_ms"] / results["mailer serve"]["cpu_ms"]
    print(f"mailer / bare: {ratio:.0%} of the throughput, {cpu:.0%} by server CPU per request")
    print(f"load average before: {LOAD}   target: >= 3000 req/s, p99 < 25 ms, no errors")


if __name__ == "__main__":
    main()
