"""Retention: personal data is kept no longer than needed (AVG art. 5(1)(e)).

The daily `retention` job and `mailer retention` run `apply_retention`. Each step is one
transaction, so a crash leaves every subscriber, issue and ledger entry either as it was
or done; a rerun finishes the rest. Files go after their transaction has committed (a
file deleted for a rolled-back erasure could not come back). README, "Bewaartermijnen /
data retention", lists what is kept, for how long and why.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from sqlalchemy import Connection

from mailer.app import App
from mailer.providers.file import copies_for, copies_older_than, delete_copies
from mailer.store import retention as store
from mailer.subscriptions import mail_window

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetentionReport:
    """What a retention run erased or thinned out (or would, in a dry run): counts only."""

    dry_run: bool
    leavers: int
    delivery_rows: int
    ledger_entries: int
    webhook_keys: int
    rate_limit_hits: int
    run_details: int
    files: int

    def lines(self) -> list[str]:
        """One line per step, for the command and the job's outcome; never an address."""
        return [
            f"{self.leavers} subscriber(s) who left: erased (hashed suppression kept)",
            f"{self.delivery_rows} delivery record(s) of sent issues: address and errors removed",
            f"{self.ledger_entries} consent ledger entr(y/ies): IP address and user agent removed",
            f"{self.webhook_keys} webhook replay key(s) deleted",
            f"{self.rate_limit_hits} rate-limit hit(s) deleted",
            f"{self.run_details} scheduler run record(s): outcome line removed",
            f"{self.files} stored message file(s) deleted",
        ]


def apply_retention(app: App, *, dry_run: bool = False) -> RetentionReport:
    """Erase or thin out what has outlived its retention period; a dry run only counts."""
    s, now = app.settings, app.clock.now()
    ago = partial(_days_before, now)
    left_before, records_before = ago(s.left_subscriber_days), ago(s.delivery_record_days)
    folder = s.path(s.outbox_dir)
    with app.engine.begin() as conn:
        people = store.leavers(conn, left_before, lock=not dry_run)
        if not dry_run:
            store.erase_leavers(conn, people, now)
    addresses = [p.email for p in people]
    with app.engine.begin() as conn:
        issue_ids = store.finished_issue_ids(conn, records_before)
        rows = _count_or_apply(conn, store.old_delivery_records(issue_ids), dry_run)
    files = set(copies_for(folder, addresses)) | set(
        copies_older_than(folder, issue_ids, records_before))
    report = RetentionReport(
        dry_run=dry_run, leavers=len(addresses), delivery_rows=rows,
        ledger_entries=_step(app, dry_run, store.old_ledger_ips(ago(s.consent_ip_days),
                                                                left_before)),
        webhook_keys=_step(app, dry_run, store.old_webhook_keys(ago(s.webhook_event_days))),
        rate_limit_hits=_step(app, dry_run, store.old_rate_limit_hits(now - mail_window(s))),
        run_details=_step(app, dry_run, store.old_run_details(ago(s.job_run_detail_days))),
        files=len(files) if dry_run else delete_copies(sorted(files)),
    )
    log.info("retention%s: %s", " (dry run)" if dry_run else "", "; ".join(report.lines()))
    return report


def _days_before(now: datetime, days: int) -> datetime:
    """The moment a number of days before now: where a retention period began."""
    return now - timedelta(days=days)


def _step(app: App, dry_run: bool, step: store.Step) -> int:
    """One step in a transaction of its own: count in a dry run, else apply."""
    with app.engine.begin() as conn:
        return _count_or_apply(conn, step, dry_run)


def _count_or_apply(conn: Connection, step: store.Step, dry_run: bool) -> int:
    return step.count(conn) if dry_run else step.apply(conn)
