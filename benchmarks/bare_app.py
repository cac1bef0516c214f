"""Baseline for benchmarks/one_click.py: bare Flask + gunicorn + SQLite, one UPDATE per POST.

Run by the benchmark as `gunicorn benchmarks.bare_app:app`; BARE_DB names the SQLite file.
"""

from __future__ import annotations

import os
import sqlite3

from flask import Flask

app = Flask(__name__)
_connection: sqlite3.Connection | None = None


def connection() -> sqlite3.Connection:
    """One connection per worker process, with the pragmas the mailer uses."""
    global _connection  # a per-process cache is the point of this baseline
    if _connection is None:
        _connection = sqlite3.connect(os.environ["BARE_DB"], timeout=30, isolation_level=None)
        _connection.execute("PRAGMA journal_mode=WAL")
        _connection.execute("PRAGMA synchronous=NORMAL")
    return _connection


@app.post("/afmelden/<int:row_id>")
def unsubscribe(row_id: int):
    """Set one row's status, in a write transaction, and answer 200."""
    db = connection()
    db.execute("BEGIN IMMEDIATE")
    db.execute("UPDATE people SET status = 'unsubscribed' WHERE id = ?", (row_id,))
    db.execute("COMMIT")
    return "ok"
