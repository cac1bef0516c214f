"""Many fictitious subscribers, inserted set-based in the database (tests and benchmarks).

PostgreSQL counts with generate_series, SQLite with a recursive CTE; the segments cycle
through a few preference sets so enqueue renders a handful of segments, as in real life.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, bindparam, text

from mailer.models import Preferences
from mailer.store.tables import UTCDateTime

SEGMENTS = (
    Preferences(),
    Preferences(sections=frozenset({"magazine"})),
    Preferences(sections=frozenset({"agenda"})),
)


def email_of(n: int) -> str:
    """The address of fictitious subscriber number n."""
    return f"lezer{n}@example.org"


def add_subscribers(engine: Engine, count: int, now: datetime, start: int = 1) -> None:
    """Insert `count` active subscribers numbered from `start`, in one statement."""
    postgres = engine.dialect.name == "postgresql"
    numbers = ("SELECT g FROM generate_series(CAST(:first AS integer), CAST(:last AS integer))"
               " AS g" if postgres else
               "WITH RECURSIVE n(g) AS (SELECT :first UNION ALL SELECT g + 1 FROM n "
               "WHERE g < :last) SELECT g FROM n")
    as_json = "CAST({} AS json)" if postgres else "{}"
    segments = " UNION ALL ".join(
        f"SELECT {i} AS k, '{_json(p.sections)}' AS sections, '{_json(p.themes)}' AS themes, "
        f"'{p.key()}' AS segment_key" for i, p in enumerate(SEGMENTS))
    statement = text(f"""
        INSERT INTO subscribers (email, name, status, sections, themes, segment_key,
                                 token_version, source, created_at, updated_at, confirmed_at)
        SELECT 'lezer' || nums.g || '@example.org', 'Lezer ' || nums.g, 'active',
               {as_json.format('seg.sections')}, {as_json.format('seg.themes')},
               seg.segment_key, 1, 'population', :now, :now, :now
        FROM ({numbers}) AS nums JOIN ({segments}) AS seg ON seg.k = nums.g % {len(SEGMENTS)}
    """).bindparams(bindparam("now", type_=UTCDateTime()))
    with engine.begin() as conn:
        conn.execute(statement, {"first": start, "last": start + count - 1, "now": now})


def _json(values: frozenset[str]) -> str:
    return "[" + ",".join(f'"{v}"' for v in sorted(values)) + "]"
