"""A dry run of retention counts, step by step, exactly what the real run then changes: the
changes are measured in the database and the outbox folder, not taken from the report.
On both databases."""

from dataclasses import fields
from datetime import timedelta

from sqlalchemy import insert, select

from mailer.models import SubscriberStatus
from mailer.retention import RetentionReport, apply_retention
from mailer.store import jobs as job_store
from mailer.store.tables import (
    consent_events,
    job_runs,
    outbox,
    rate_limit_hits,
    subscribers,
    webhook_events,
)
from mailer.subscriptions import SubscribeOutcome, subscribe
from tests.subscription_support import PREFS, ctx
from tests.test_retention import active, add_issue, add_row, days_later, leave

STEPS = [f.name for f in fields(RetentionReport) if f.name != "dry_run"]


def old_and_new_records(app):
    """Something for every step to change, next to what it must leave alone, including the
    cases where a step must not count what an earlier step of the same run takes care of."""
    now, later = app.clock.now(), days_later(app, 400)
    left = active(app, "weg@example.org")  # erased; its ledger IPs go with the erasure
    leave(app, left, SubscriberStatus.UNSUBSCRIBED)
    bounced = active(app, "stuk@example.org")
    leave(app, bounced, SubscriberStatus.BOUNCED)
    asking = active(app, "terug@example.org")  # left, but asked to come back: not erased,
    leave(app, asking, SubscriberStatus.UNSUBSCRIBED)  # so its old IPs go in the IP step
    assert subscribe(later, "terug@example.org", "", PREFS, ctx(later)).outcome \
        is SubscribeOutcome.RENEWED
    reader = active(app, "lezer@example.org")
    active(days_later(app, 380), "nieuw@example.org")  # recent: nothing of it goes
    old = add_issue(app, 1, sent=now)
    for sid, email in ((left, "weg@example.org"), (reader, "lezer@example.org")):
        add_row(app, old, sid, email, "sent", provider_id=f"pm-{sid}")
    add_row(app, add_issue(app, 2, status="sending", sent=None), reader, "lezer@example.org",
            "sending")
    with app.engine.begin() as conn:
        conn.execute(insert(consent_events).values(
            subscriber_id=None, email_hash="0" * 64, event="suppress", occurred_at=now,
            source="csv", ip="192.0.2.0", user_agent=None, details={}))
        conn.execute(insert(webhook_events), [
            dict(provider="brevo", event_id="old", received_at=now),
            dict(provider="brevo", event_id="new", received_at=later.clock.now())])
        conn.execute(insert(rate_limit_hits), [
            dict(key="ip:old", occurred_at=now),
            dict(key="ip:new", occurred_at=later.clock.now() - timedelta(minutes=5))])
        for job, moment in (("proof", now), ("newsletter", later.clock.now())):
            job_store.record_missed(conn, job_id=job, period_key="k", task=job,
                                    fire_time=moment, owner="host:1", now=moment,
                                    detail="naar redactie@example.org: sent")
    write_copies(app, old)
    return later


def write_copies(app, old_issue: int) -> None:
    folder = app.settings.path(app.settings.outbox_dir)
    for name, to in ((f"issue-{old_issue}/00000001-lezer@example.org.eml", "lezer@example.org"),
                     ("issue-0/00000002-weg@example.org.eml", "weg@example.org"),
                     ("issue-0/00000003-lezer@example.org.eml", "lezer@example.org")):
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"To: {to}\n\nhoi\n")


def state(app) -> dict:
    """Every row a step may touch, by table and id, and the files in the outbox folder."""
    folder = app.settings.path(app.settings.outbox_dir)
    with app.engine.connect() as conn:
        rows = {t.name: {tuple(r._mapping[c.name] for c in t.primary_key): r
                         for r in conn.execute(select(t))}
                for t in (subscribers, outbox, consent_events, webhook_events,
                          rate_limit_hits, job_runs)}
    return {**rows, "files": set(folder.rglob("*.eml"))}


def changes(before: dict, after: dict) -> dict[str, int]:
    """What a run changed, per step, read from the records themselves."""
    def changed(table, was, now):
        return {i for i, r in before[table].items()
                if was(r) and i in after[table] and now(after[table][i])}

    erased = {i for (i,) in changed("subscribers", lambda r: r.status != "erased",
                                    lambda r: r.status == "erased")}
    has_ip = lambda r: r.ip is not None or r.user_agent is not None  # noqa: E731
    return {
        "leavers": len(erased),
        "delivery_rows": len(changed("outbox", lambda r: r.email != "", lambda r: r.email == "")),
        "ledger_entries": len({i for i in changed("consent_events", has_ip,
                                                  lambda r: not has_ip(r))
                               if before["consent_events"][i].subscriber_id not in erased}),
        "webhook_keys": len(before["webhook_events"].keys() - after["webhook_events"].keys()),
        "rate_limit_hits": len(before["rate_limit_hits"].keys()
                               - after["rate_limit_hits"].keys()),
        "run_details": len(changed("job_runs", lambda r: r.detail is not None,
                                   lambda r: r.detail is None)),
        "files": len(before["files"] - after["files"]),
    }


def counts(report: RetentionReport) -> dict[str, int]:
    return {step: getattr(report, step) for step in STEPS}


def test_a_dry_run_counts_per_step_what_the_run_then_changes(app):
    later = old_and_new_records(app)
    before = state(app)
    dry = apply_retention(later, dry_run=True)
    assert state(app) == before  # a dry run changes nothing
    real = apply_retention(later)
    done = changes(before, state(app))
    assert counts(dry) == done == counts(real)
    assert all(done.values()), done  # every step had something to do
    # Erased: weg, stuk. IPs stripped: terug's 3 and lezer's 2 old entries, and the one
    # without a subscriber; the erasure blanked those of weg and stuk, not counted twice.
    assert done["leavers"] == 2 and done["ledger_entries"] == 6
    # Once done, there is nothing left to count.
    assert set(counts(apply_retention(later, dry_run=True)).values()) == {0}
