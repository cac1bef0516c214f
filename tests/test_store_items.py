from dataclasses import replace
from datetime import UTC, datetime, timedelta

from mailer.models import Item, ItemKind, ItemStatus
from mailer.store.db import current_revisions, head_revisions, make_engine, upgrade
from mailer.store.items import canonical_url, list_items, upsert_items

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def article(source_id: str, title: str = "Titel") -> Item:
    return Item(source="s", source_id=source_id, kind=ItemKind.MAGAZINE, title=title,
                url=f"https://example.org/{source_id}", published_at=T0)


def test_migrations_are_idempotent(db_url):
    engine = make_engine(db_url)
    assert set(current_revisions(engine)) == set(head_revisions(engine))  # several heads
    assert upgrade(engine) == []
    engine.dispose()


def test_the_migrated_outbox_has_the_indexes_the_tables_declare(db_url):
    # Partial work indexes were dropped by migrations 0009 and 0011; the declared schema
    # and the migrated one must agree, or SQLite and PostgreSQL would drift apart.
    from sqlalchemy import inspect

    from mailer.store.tables import outbox

    engine = make_engine(db_url)
    migrated = {ix["name"] for ix in inspect(engine).get_indexes("outbox")
                if "duplicates_constraint" not in ix}  # PostgreSQL lists the unique one too
    assert migrated == {ix.name for ix in outbox.indexes} == {"ix_outbox_issue_status_id"}
    engine.dispose()


def test_upsert_counts_new_updated_unchanged_and_deleted(db_url):
    engine = make_engine(db_url)
    with engine.begin() as conn:
        first = upsert_items(conn, "s", [article("a"), article("b")], T0, complete=True)
    assert (first.new, first.updated, first.unchanged) == (2, 0, 0)
    later = T0 + timedelta(days=1)
    with engine.begin() as conn:
        second = upsert_items(conn, "s", [article("a", "Nieuwe titel")], later, complete=True)
        stored = {s.item.source_id: s for s in list_items(conn)}
    assert (second.new, second.updated, second.deleted) == (0, 1, 1)
    assert list(stored) == ["a"]
    assert stored["a"].item.title == "Nieuwe titel"
    assert stored["a"].first_seen_at == T0  # an edit is not "new"
    engine.dispose()


def test_incomplete_sources_do_not_delete(db_url):
    engine = make_engine(db_url)
    with engine.begin() as conn:
        upsert_items(conn, "s", [article("a"), article("b")], T0, complete=True)
        counts = upsert_items(conn, "s", [article("a")], T0, complete=False)
        assert counts.deleted == 0
        assert {s.item.status for s in list_items(conn)} == {ItemStatus.ACTIVE}
    engine.dispose()


def test_a_deleted_item_that_returns_is_active_again(db_url):
    engine = make_engine(db_url)
    with engine.begin() as conn:
        upsert_items(conn, "s", [article("a")], T0, complete=True)
        upsert_items(conn, "s", [], T0, complete=True)
        assert list_items(conn) == []
        upsert_items(conn, "s", [replace(article("a"))], T0, complete=True)
        assert [s.item.source_id for s in list_items(conn)] == ["a"]
    engine.dispose()


def test_canonical_url_strips_tracking_and_fragments():
    assert canonical_url("HTTPS://Example.org/a/?utm_source=x&id=3&fbclid=y#top") == (
        "https://example.org/a?id=3")


def test_migration_0010_counts_issues_whose_send_began_as_enqueued(tmp_path):
    """Their outbox was filled in one transaction with the move to sending (before 0010)."""
    from alembic import command
    from sqlalchemy import insert, select

    from mailer.store.db import alembic_config
    from mailer.store.tables import issues

    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    upgrade(engine)
    command.downgrade(alembic_config(engine), "0010@-1")
    common = dict(list_id="l", issue_date=T0.date(), moment=T0, subject="s", preheader="p",
                  created_at=T0)
    with engine.begin() as conn:
        conn.execute(insert(issues).values(period="a", number=1, status="sent",
                                           send_started_at=T0 + timedelta(days=1), **common))
        conn.execute(insert(issues).values(period="b", number=2, status="draft", **common))
    assert upgrade(engine) == ["0010"]
    with engine.connect() as conn:
        rows = conn.execute(select(issues.c.period, issues.c.enqueued_at)
                            .order_by(issues.c.period)).all()
    assert rows == [("a", T0 + timedelta(days=1)), ("b", None)]
    engine.dispose()
