"""Per-source fetch state: validators for conditional GET and the last outcome."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, select, update

from mailer.store.tables import source_state


def load_validators(conn: Connection, source: str) -> tuple[str | None, str | None]:
    """The ETag and Last-Modified a source's server sent last time (None, None if never)."""
    row = conn.execute(select(source_state.c.etag, source_state.c.last_modified)
                       .where(source_state.c.source == source)).first()
    return (row.etag, row.last_modified) if row else (None, None)


def record_success(conn: Connection, source: str, now: datetime, etag: str | None,
                   last_modified: str | None) -> None:
    """Remember a successful fetch and the validators that came with it."""
    _save(conn, source, etag=etag, last_modified=last_modified, last_fetched_at=now,
          last_success_at=now, last_error=None)


def record_failure(conn: Connection, source: str, now: datetime, error: str) -> None:
    """Remember that a fetch failed and why; validators stay as they were."""
    _save(conn, source, last_fetched_at=now, last_error=error)


def _save(conn: Connection, source: str, **values) -> None:
    result = conn.execute(update(source_state).where(source_state.c.source == source)
                          .values(**values))
    if result.rowcount == 0:
        conn.execute(source_state.insert().values(source=source, **values))
