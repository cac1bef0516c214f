"""The item ledger: upsert by (source, id), one row per article or event occurrence."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sqlalchemy import Connection, and_, select, update

from mailer.models import Item, ItemKind, ItemStatus, StoredItem
from mailer.store.tables import items
from mailer.tracking_params import is_tracking

if TYPE_CHECKING:
    from mailer.sources import Window

# json.dumps(sort_keys=True, default=str) builds an encoder per call; this is the same
# encoder, built once (stored hashes must not change: an item would look edited).
HASH_JSON = json.JSONEncoder(sort_keys=True, default=str)
# scheme://host/path with nothing urlsplit would strip, split off or reject: for these the
# canonical URL is plain string work (tests compare both ways on many URLs).
PLAIN_URL = re.compile(r"(https?)://([A-Za-z0-9.:_~%!$&'()*+,;=-]+)"
                       r"((?:/[A-Za-z0-9_~%!$&'()*+,;=:@.-]*)*)")
# C0 and C1 control characters other than tab and line breaks: PostgreSQL refuses NUL, and
# the MJML compiler cannot parse the others, so one such title would stop every issue.
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class UpsertCounts:
    """What an upsert changed."""

    new: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    duplicates: int = 0  # new here, but another source already holds the same item


def canonical_url(url: str) -> str:
    """The URL with tracking parameters, fragment and trailing slash removed, host lower-cased."""
    plain = PLAIN_URL.fullmatch(url.strip())
    if plain is None or "//" in plain.group(3):
        return _canonical_parsed(url)
    scheme, host, path = plain.groups()
    return f"{scheme}://{host.lower()}{path.rstrip('/') or '/'}"


def _canonical_parsed(url: str) -> str:
    parts = urlsplit(url.strip())
    query = [
        (k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if not is_tracking(k, parts.netloc)  # exactly what a shown link loses
    ]
    path = parts.path.rstrip("/") or "/"
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), path, urlencode(query), ""))


def content_hash(item: Item) -> str:
    """A fingerprint of everything a reader sees, to tell an edit from a re-fetch."""
    return _row_hash(_row(item))


def _row_hash(row: dict) -> str:
    fields = {k: v for k, v in row.items() if k not in ("source", "source_id")}
    return hashlib.sha256(HASH_JSON.encode(fields).encode()).hexdigest()


def upsert_items(
    conn: Connection, source: str, fetched: Iterable[Item], now: datetime, *, complete: bool,
    window: Window | None = None,
) -> UpsertCounts:
    """Insert new items, update edited ones in place, and mark the provably gone deleted.

    An edited item keeps its id and first-seen time, so it is never offered again as new.
    With `complete` every missing item is gone; with a `window` only the missing ones whose
    date lies inside it. A new item that another source already holds (same canonical URL,
    and for events the same start) is skipped: one article is one item. An article without
    a publication date counts as published when first seen, so it is offered once.
    """
    existing = _stored_by_source_id(conn, source)
    rows = {sid: _row(item) for sid, item in _first_per_source_id(fetched).items()}
    digests = {sid: _row_hash(row) for sid, row in rows.items()}
    updated = _update_edited(conn, rows, digests, existing, now)
    new, duplicates = _insert_new(conn, source, rows, digests, existing, now)
    unchanged = _touch_unchanged(conn, rows, digests, existing, now)
    gone = [row.id for sid, row in existing.items()
            if sid not in rows and row.status != ItemStatus.DELETED
            and (complete or _inside(row, window))]
    _mark_deleted(conn, gone, now)
    return UpsertCounts(new, updated, unchanged, len(gone), duplicates)


def _stored_by_source_id(conn: Connection, source: str) -> dict:
    """The source's stored items (id, hash, status, dates) by their id at the source."""
    query = (select(items.c.id, items.c.source_id, items.c.content_hash, items.c.status,
                    items.c.published_at, items.c.starts_at)
             .where(items.c.source == source))
    return {row.source_id: row for row in conn.execute(query)}


def _first_per_source_id(fetched: Iterable[Item]) -> dict[str, Item]:
    """The fetched items, the first one of each source id (a feed may repeat one)."""
    unique: dict[str, Item] = {}
    for item in fetched:
        unique.setdefault(item.source_id, item)
    return unique


def _is_edited(old, digest: str) -> bool:
    """Whether a stored item must be rewritten: its content changed, or it came back."""
    return old.content_hash != digest or old.status == ItemStatus.DELETED


def _update_edited(conn: Connection, rows: dict[str, dict], digests: dict[str, str],
                   existing: dict, now: datetime) -> int:
    """Rewrite stored items whose content changed in place (same id); return how many."""
    updated = 0
    for sid, row in rows.items():
        old = existing.get(sid)
        if old is None or not _is_edited(old, digests[sid]):
            continue
        if row["published_at"] is None and old.published_at is not None:
            row.pop("published_at")  # keep the first-seen stand-in date
        conn.execute(update(items).where(items.c.id == old.id).values(
            **row, content_hash=digests[sid], updated_at=now, last_seen_at=now))
        updated += 1
    return updated


def _insert_new(conn: Connection, source: str, rows: dict[str, dict], digests: dict[str, str],
                existing: dict, now: datetime) -> tuple[int, int]:
    """Insert items not stored yet, skipping those another source holds; (new, skipped)."""
    fresh = {sid: row for sid, row in rows.items() if sid not in existing}
    taken = _held_elsewhere(conn, source, list(fresh.values()))
    inserts = []
    for sid, row in fresh.items():
        if _dedupe_key(row) in taken:
            continue
        if row["published_at"] is None and row["kind"] == ItemKind.MAGAZINE.value:
            row["published_at"] = now
        inserts.append(dict(**row, content_hash=digests[sid], first_seen_at=now,
                            updated_at=now, last_seen_at=now))
    if inserts:
        conn.execute(items.insert(), inserts)
    return len(inserts), len(fresh) - len(inserts)


def _touch_unchanged(conn: Connection, rows: dict[str, dict], digests: dict[str, str],
                     existing: dict, now: datetime) -> int:
    """Record that unchanged stored items were seen again; return how many."""
    touched = [existing[sid].id for sid in rows
               if sid in existing and not _is_edited(existing[sid], digests[sid])]
    for chunk in _chunks(touched):
        conn.execute(update(items).where(items.c.id.in_(chunk)).values(last_seen_at=now))
    return len(touched)


def _mark_deleted(conn: Connection, ids: list[int], now: datetime) -> None:
    """Mark stored items deleted (they are gone at the source)."""
    for chunk in _chunks(ids):
        conn.execute(update(items).where(items.c.id.in_(chunk))
                     .values(status=ItemStatus.DELETED, updated_at=now))


def _dedupe_key(row: dict) -> tuple:
    """What makes two sources' items the same: the canonical URL (and an event's start)."""
    starts = row["starts_at"] if row["kind"] == ItemKind.EVENT.value else None
    return (row["kind"], row["canonical_url"], starts)


def _held_elsewhere(conn: Connection, source: str, fresh: list[dict]) -> set[tuple]:
    """Dedupe keys of live items other sources already hold, among the fresh rows' URLs."""
    urls = sorted({row["canonical_url"] for row in fresh})
    keys: set[tuple] = set()
    for chunk in _chunks(urls):
        query = (select(items.c.kind, items.c.canonical_url, items.c.starts_at)
                 .where(items.c.canonical_url.in_(chunk), items.c.source != source,
                        items.c.status != ItemStatus.DELETED.value))
        for row in conn.execute(query):
            starts = row.starts_at if row.kind == ItemKind.EVENT.value else None
            keys.add((row.kind, row.canonical_url, starts))
    return keys


def _inside(row, window: Window | None) -> bool:
    if window is None:
        return False
    value = getattr(row, window.column)
    return value is not None and value >= window.start and (
        window.end is None or value < window.end)


def _chunks(values: list, size: int = 500) -> Iterator[list]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


def _row(item: Item) -> dict:
    return dict(
        source=item.source,
        source_id=item.source_id,
        kind=item.kind.value,
        status=item.status.value,
        title=_text(item.title),
        url=item.url,
        canonical_url=canonical_url(item.url),
        summary=_text(item.summary),
        published_at=item.published_at,
        starts_at=item.starts_at,
        ends_at=item.ends_at,
        all_day=item.all_day,
        location=_text(item.location),
        online=item.online,
        event_type=item.event_type,
        image_url=item.image_url,
        image_alt=_text(item.image_alt),
        topics=list(item.topics),
    )


def _text(value: str | None) -> str | None:
    """Source text without control characters (see CONTROL)."""
    return CONTROL.sub("", value) if value and CONTROL.search(value) else value


def stored_item(row) -> StoredItem:
    """Turn an `items` row into a StoredItem."""
    item = Item(
        source=row.source, source_id=row.source_id, kind=ItemKind(row.kind), title=row.title,
        url=row.url, summary=row.summary, published_at=row.published_at,
        starts_at=row.starts_at, ends_at=row.ends_at, all_day=row.all_day,
        location=row.location, online=row.online, event_type=row.event_type,
        image_url=row.image_url, image_alt=row.image_alt, topics=tuple(row.topics or ()),
        status=ItemStatus(row.status),
    )
    return StoredItem(id=row.id, item=item, first_seen_at=row.first_seen_at)


def magazine_candidates(
    conn: Connection, since: datetime, until: datetime, exclude_issue: int | None
) -> list[StoredItem]:
    """Active magazine items published in (since, until] and in no other issue.

    An item without a publication date counts from when we first saw it. A feed may list
    one article twice under other ids; an issue shows a title and link only once.
    """
    from mailer.store.tables import issue_items

    published = items.c.published_at
    other_issues = select(issue_items.c.item_id)
    if exclude_issue is not None:
        other_issues = other_issues.where(issue_items.c.issue_id != exclude_issue)
    query = (
        select(items)
        .where(items.c.kind == ItemKind.MAGAZINE.value, items.c.status == ItemStatus.ACTIVE.value)
        .where(and_(published > since, published <= until))
        .where(items.c.id.not_in(other_issues))
        .order_by(published.desc(), items.c.id)
    )
    seen: set[tuple[str, str]] = set()
    found = []
    for row in conn.execute(query):
        if (row.canonical_url, row.title) not in seen:
            seen.add((row.canonical_url, row.title))
            found.append(stored_item(row))
    return found


def upcoming_events(conn: Connection, start: datetime, end: datetime) -> list[StoredItem]:
    """Events starting in [start, end), cancelled ones included (the caller decides)."""
    query = (
        select(items)
        .where(items.c.kind == ItemKind.EVENT.value, items.c.status != ItemStatus.DELETED.value)
        .where(items.c.starts_at >= start, items.c.starts_at < end)
        .order_by(items.c.starts_at, items.c.id)
    )
    return [stored_item(r) for r in conn.execute(query)]


def items_by_id(conn: Connection, ids: Sequence[int]) -> dict[int, StoredItem]:
    """Load stored items by id."""
    if not ids:
        return {}
    return {r.id: stored_item(r) for r in conn.execute(select(items).where(items.c.id.in_(ids)))}


def list_items(conn: Connection, kind: ItemKind | None = None) -> list[StoredItem]:
    """Every item not deleted, newest first."""
    query = select(items).where(items.c.status != ItemStatus.DELETED.value)
    if kind:
        query = query.where(items.c.kind == kind.value)
    query = query.order_by(items.c.kind, items.c.published_at.desc(), items.c.starts_at, items.c.id)
    return [stored_item(r) for r in conn.execute(query)]
