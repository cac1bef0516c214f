"""Per-source fetch state: validators for conditional GET and the last outcome."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, select, update

from mailer.store.tables import source_state


def load_validators(conn: Connection, source: str,
                    config_hash: str | None) -> tuple[str | None, str | None]:
    """The ETag and Last-Modified of the last success, if earned with this configuration."""
    row = conn.execute(select(source_state.c.etag, source_state.c.last_modified,
                              source_state.c.config_hash)
                       .where(source_state.c.source == source)).first()
    if row is None or row.config_hash != config_hash:
        return None, None
    return row.etag, row.last_modified


def record_success(conn: Connection, source: str, now: datetime, etag: str | None,
                   last_modified: str | None, config_hash: str | None) -> None:
    """Remember a successful fetch, its validators and the configuration it was read with."""
    _save(conn, source, etag=etag, last_modified=last_modified, config_hash=config_hash,
          last_fetched_at=now, last_success_at=now, last_error=None)


def record_failure(conn: Connection, source: str, now: datetime, error: str) -> None:
    """Remember that a fetch failed and why; validators stay as they were."""
    _save(conn, source, last_fetched_at=now, last_error=error)


def _save(conn: Connection, source: str, **values) -> None:
    result = conn.execute(update(source_state).where(source_state.c.source == source)
                          .values(**values))
    if result.rowcount == 0:
        conn.execute(source_state.insert().values(source=source, **values))
