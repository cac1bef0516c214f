"""Baseline for benchmarks/one_click.py: bare Flask + gunicorn + SQLite, one UPDATE per POST.

Run by the benchmark as `gunicorn benchmarks.bare_app:app`; BARE_DB names the SQLite file.
"""

from __future__ import annotations

import os
import sqlite3
import threading

from flask import Flask

app = Flask(__name__)
_local = threading.local()  # one connection per worker thread: the point of a baseline


def connection() -> sqlite3.Connection:
    """This thread's connection, with the pragmas the mailer uses."""
    if not hasattr(_local, "db"):
        _local.db = sqlite3.connect(os.environ["BARE_DB"], timeout=30, isolation_level=None)
        _local.db.execute("PRAGMA journal_mode=WAL")
        _local.db.execute("PRAGMA synchronous=NORMAL")
    return _local.db


@app.post("/afmelden/<int:row_id>")
def unsubscribe(row_id: int):
    """Set one row's status, in a write transaction, and answer 200."""
    db = connection()
    db.execute("BEGIN IMMEDIATE")
    db.execute("UPDATE people SET status = 'unsubscribed' WHERE id = ?", (row_id,))
    db.execute("COMMIT")
    return "ok"
