"""Benchmark: the floor under the SendGrid ratio, the least work any pipeline must do.

    python benchmarks/delivery_floor.py [--sizes 20000,100000] [--concurrency 4]

delivery.py compares the pipeline with a minimal client that posts one pre-built batch
over and over. This benchmark asks how close *any* pipeline with our guarantees could get
on this machine: per batch it does only what cannot be left out, written flat, with no
framework in between:

  claim     one SELECT of the queued rows joined with their subscribers and one UPDATE
            to `sending`, in one SQLite write transaction (bare sqlite3 module);
  personal  the two signed links (mailer.links, already the cheapest signing), the
            greeting, and each personalization written as JSON text in one f-string;
  post      one requests.Session POST per batch, from `concurrency` threads;
  record    one UPDATE to `sent` with the call's X-Message-Id.

It skips what the real pipeline adds for safety (leases, batch keys, retries, the error
budget, erased-subscriber checks, per-recipient outcomes): the floor is lower than any
real pipeline can be. Its personalizations are byte for byte what the SendGrid adapter
writes (checked before the run), so the emulator does the same work per recipient.

Printed per size: the floor's recipients/s, the minimal client's limit, their ratio and
this process's CPU microseconds per recipient. On the 2-core machine the emulator needs
one core at the limit, so the pipeline's whole budget at ratio 0.8 is what is left.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.delivery import (  # noqa: E402
    KEY,
    accept_rate,
    env_for,
    limit_rate,
    running_emulator,
    sample_calls,
    stats,
)
from benchmarks.delivery_cpu import enqueued  # noqa: E402
from mailer.app import App  # noqa: E402
from mailer.providers.http import quoted  # noqa: E402
from mailer.render.personalize import greeting  # noqa: E402

CLAIM = ("select o.id, o.subscriber_id, o.email, s.name, s.token_version, o.message_id "
         "from outbox o join subscribers s on s.id = o.subscriber_id "
         "where o.issue_id = ? and o.status = 'queued' order by o.id limit ?")
MARK_SENDING = ("update outbox set status = 'sending', attempts = attempts + 1, "
                "claimed_by = 'floor' where id in (select value from json_each(?))")
MARK_SENT = ("update outbox set status = 'sent', provider_message_id = ?, claimed_by = null "
             "where id in (select value from json_each(?))")


class Floor:
    """The flat send loop over one prepared database."""

    def __init__(self, app: App, database: Path, issue_id: int, url: str, batch: int,
                 head: bytes):
        self.app, self.database, self.issue_id = app, database, issue_id
        self.url, self.batch, self.head = url, batch, head
        mailto = app.dispatcher().identity.unsubscribe_mailto
        self.mailto = f"mailto:{mailto}?subject=afmelden"  # as message.unsubscribe_headers
        self.lock = threading.Lock()  # one writer at a time, as the write turn does

    def personalizations(self, rows: list[tuple]) -> list[str]:
        urls = self.app.links.personal_urls_of([(r[1], r[4]) for r in rows])
        mailto = self.mailto
        return [
            f'{{"to":[{{"email":{quoted(email)}}}],"substitutions":{{"%%greeting%%":'
            f'{quoted(greeting(name))},"%%preferences_url%%":{quoted(preferences)},'
            f'"%%unsubscribe_url%%":{quoted(unsubscribe)}}},"headers":{{"Message-ID":'
            f'{quoted(message_id)},"List-Unsubscribe":{quoted(f"<{unsubscribe}>, <{mailto}>")}'
            f'}},"custom_args":{{"outbox_id":"{row_id}"}}}}'
            for (row_id, _, email, name, _, message_id), (unsubscribe, preferences)
            in zip(rows, urls, strict=True)]

    def work(self) -> None:
        db = sqlite3.connect(self.database, isolation_level=None, check_same_thread=False)
        session = requests.Session()
        session.headers.update({"Authorization": f"Bearer {KEY}",
                                "Content-Type": "application/json"})
        while True:
            with self.lock:
                db.execute("BEGIN IMMEDIATE")
                rows = db.execute(CLAIM, (self.issue_id, self.batch)).fetchall()
                ids = "[" + ",".join(str(r[0]) for r in rows) + "]"
                db.execute(MARK_SENDING, (ids,))
                db.execute("COMMIT")
            if not rows:
                return
            body = self.head + ",".join(self.personalizations(rows)).encode() + b"]}"
            response = session.post(self.url + "/v3/mail/send", data=body, timeout=120)
            response.raise_for_status()
            with self.lock:
                db.execute("BEGIN IMMEDIATE")
                db.execute(MARK_SENT, (response.headers["X-Message-Id"], ids))
                db.execute("COMMIT")


def payload_head(body: bytes) -> bytes:
    """The adapter's payload up to and including the opening of its personalizations."""
    marker = b'"personalizations":['
    return body[:body.index(marker) + len(marker)]


def check_same_bytes(floor: Floor, body: bytes) -> None:
    """The floor must write what the adapter writes, or it measures something else."""
    adapter = json.loads(body)["personalizations"][0]
    with sqlite3.connect(floor.database) as db:
        row = db.execute(CLAIM, (floor.issue_id, 1)).fetchall()
    ours = json.loads(floor.personalizations(row)[0])
    if ours != adapter:
        raise SystemExit(f"the floor's personalization differs from the adapter's:\n"
                         f"{ours}\n{adapter}")


def bench(size: int, concurrency: int) -> dict:
    with running_emulator("sendgrid") as url, tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        database = folder / "mailer.db"
        env = env_for("sendgrid", url, f"sqlite:///{database}", concurrency)
        app, issue = enqueued(folder, size, env)
        adapter, (call, _), batch = sample_calls(app, size)
        body = call.body()
        floor = Floor(app, database, issue.id, url, batch, payload_head(body))
        check_same_bytes(floor, body)
        stats(url, reset=True)
        cpu = time.process_time()
        threads = [threading.Thread(target=floor.work) for _ in range(concurrency)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        cpu = time.process_time() - cpu
        sent = stats(url)
        limit = limit_rate(adapter, call, url, size, batch, concurrency)
        app.engine.dispose()
    rate = accept_rate(sent)
    return {"size": size, "rate": rate, "limit": limit, "ratio": rate / limit,
            "cpu": cpu / size * 1e6, "ok": sent["recipients"] == sent["distinct"] == size}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="20000,100000")
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    print(f"{'provider':9} {'rcpts':>7} {'rcpt/s':>8} {'limit/s':>8} {'ratio':>5} "
          f"{'CPU us':>6} ok")
    for size in (int(s) for s in args.sizes.split(",")):
        r = bench(size, args.concurrency)
        print(f"{'sendgrid':9} {r['size']:7} {r['rate']:8.0f} {r['limit']:8.0f} "
              f"{r['ratio']:5.2f} {r['cpu']:6.1f} {'yes' if r['ok'] else 'NO'}", flush=True)


if __name__ == "__main__":
    main()
