"""Retention: personal data is kept no longer than needed (AVG art. 5(1)(e)).

The daily `retention` job and `mailer retention` run `apply_retention`. Each step is one
transaction, so a crash leaves every subscriber, issue and ledger entry either as it was
or done; a rerun finishes the rest. Files go after their transaction has committed (a
file deleted for a rolled-back erasure could not come back). README, "Bewaartermijnen /
data retention", lists what is kept, for how long and why.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from sqlalchemy import Connection

from mailer.app import App
from mailer.providers.file import copies_for, copies_older_than, delete_copies
from mailer.store import ratelimit
from mailer.store import retention as store
from mailer.subscriptions import mail_window

log = logging.getLogger(__name__)
# A count or an apply of store.retention: (connection, moment) -> rows.
Step = Callable[[Connection, datetime], int]


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
    left_before = now - timedelta(days=s.left_subscriber_days)
    records_before = now - timedelta(days=s.delivery_record_days)
    folder = s.path(s.outbox_dir)
    with app.engine.begin() as conn:
        people = store.leavers(conn, left_before, lock=not dry_run)
        if not dry_run:
            store.erase_leavers(conn, people, now)
    addresses = [p.email for p in people]
    with app.engine.begin() as conn:
        issue_ids = store.finished_issue_ids(conn, records_before)
        rows = (store.count_delivery_records(conn, issue_ids) if dry_run
                else store.thin_delivery_records(conn, issue_ids))
    files = set(copies_for(folder, addresses)) | set(
        copies_older_than(folder, issue_ids, records_before))
    report = RetentionReport(
        dry_run=dry_run, leavers=len(addresses), delivery_rows=rows,
        ledger_entries=_step(app, dry_run, partial(store.count_ledger_ips,
                                                   left_before=left_before),
                             store.strip_ledger_ips, now - timedelta(days=s.consent_ip_days)),
        webhook_keys=_step(app, dry_run, store.count_webhook_keys, store.delete_webhook_keys,
                           now - timedelta(days=s.webhook_event_days)),
        rate_limit_hits=_step(app, dry_run, store.count_rate_limit_hits,
                              ratelimit.forget_hits_before, now - mail_window(s)),
        run_details=_step(app, dry_run, store.count_run_details, store.strip_run_details,
                          now - timedelta(days=s.job_run_detail_days)),
        files=len(files) if dry_run else delete_copies(sorted(files)),
    )
    log.info("retention%s: %s", " (dry run)" if dry_run else "", "; ".join(report.lines()))
    return report


def _step(app: App, dry_run: bool, count: Step, apply: Step, before: datetime) -> int:
    """One step in a transaction of its own: count in a dry run, else apply."""
    with app.engine.begin() as conn:
        return (count if dry_run else apply)(conn, before)
