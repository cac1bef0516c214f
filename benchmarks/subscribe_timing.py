"""Benchmark: does the subscribe form answer in the same time for every kind of address?

    python benchmarks/subscribe_timing.py [--rounds 200]

Posts the form (Flask test client, real SQLite file, file provider) for new, pending,
active and erased addresses in rounds of shuffled order and prints the median and p90 answer
time per kind. Mails go out on a background thread after the answer, so the figures
should be alike; a kind that is clearly slower or faster would let an attacker tell.
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from mailer.app import App  # noqa: E402
from mailer.models import Preferences, SubscriberStatus  # noqa: E402
from mailer.settings import load_settings, with_overrides  # noqa: E402
from mailer.store import subscribers as subs  # noqa: E402
from mailer.store.db import upgrade  # noqa: E402
from mailer.subscriptions import forget  # noqa: E402
from mailer.web import create_app  # noqa: E402

KINDS = ("new", "pending", "active", "erased")


def seed(app: App, rounds: int) -> None:
    """Pending, active and erased subscribers for every round."""
    now = app.clock.now()
    with app.engine.begin() as conn:
        for i in range(rounds):
            for kind, status in (("pending", SubscriberStatus.PENDING),
                                 ("active", SubscriberStatus.ACTIVE),
                                 ("erased", SubscriberStatus.ACTIVE)):
                subs.add_subscriber(conn, email=f"{kind}{i}@example.org", name="",
                                    preferences=Preferences(), status=status,
                                    source="benchmark", now=now)
    for i in range(rounds):
        forget(app, f"erased{i}@example.org", "benchmark")


def main() -> None:
    """Time the form per kind of address and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="subscribe-timing-"))
    settings = with_overrides(
        load_settings(REPO / "mailer.toml", environ={}),
        database_url=f"sqlite:///{folder / 'mailer.db'}", outbox_dir=folder / "outbox",
        secret_key="benchmark-secret-key-0123456789abcdef",
        confirm_limit_per_ip=10 ** 6, confirm_limit_per_address=10 ** 6)
    app = App(settings)
    upgrade(app.engine)
    seed(app, args.rounds)
    web = create_app(app)
    client = web.test_client()
    token = re.search(r'name="csrf_token" value="([^"]+)"',
                      client.get("/aanmelden").text).group(1)
    times: dict[str, list[float]] = {kind: [] for kind in KINDS}
    shuffle = random.Random(4)  # the order varies per round, so no kind always follows another
    for i in range(args.rounds):
        for kind in shuffle.sample(KINDS, len(KINDS)):
            started = time.perf_counter()
            response = client.post("/aanmelden", data={"csrf_token": token,
                                                       "email": f"{kind}{i}@example.org"})
            times[kind].append((time.perf_counter() - started) * 1000)
            assert response.status_code == 303  # Post/Redirect/Get, whoever the address is
            response.close()  # as a WSGI server does after sending: starts the mail work
    web.extensions["weerbaarnl.mail"].join(timeout=None)
    for kind in KINDS:
        values = sorted(times[kind])
        print(f"{kind:8} median {statistics.median(values):6.2f} ms   "
              f"p90 {values[int(len(values) * 0.9)]:6.2f} ms")


if __name__ == "__main__":
    main()
