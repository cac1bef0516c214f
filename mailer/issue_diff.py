"""What changed in the upcoming issue since the last sent issue and since the last proof."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, select

from mailer.app import App
from mailer.clock import local
from mailer.models import Issue, Preferences
from mailer.render.newsletter import RenderedSegment
from mailer.store import issues as issue_store
from mailer.store.items import items_by_id
from mailer.store.proofs import issue_item_ids, last_proof
from mailer.store.tables import issue_renders


@dataclass(frozen=True)
class Snapshot:
    """What an issue looked like at some point: texts, items (id -> title), HTML size."""

    label: str
    subject: str
    preheader: str
    items: dict[int, str]
    html_bytes: int | None


@dataclass(frozen=True)
class IssueDiff:
    """Differences between a reference snapshot and the upcoming issue."""

    reference: str
    added: list[str]
    removed: list[str]
    subject: tuple[str, str] | None
    preheader: tuple[str, str] | None
    size: tuple[int | None, int | None]

    @property
    def unchanged(self) -> bool:
        return not (self.added or self.removed or self.subject or self.preheader
                    or self.size[0] != self.size[1])

    def as_dict(self) -> dict:
        """A JSON-ready form for machines."""
        return {"reference": self.reference, "added": self.added, "removed": self.removed,
                "subject": self.subject, "preheader": self.preheader,
                "html_bytes": {"before": self.size[0], "after": self.size[1]}}


def diff_issue(app: App, issue: Issue, sent: RenderedSegment | None = None
               ) -> tuple[list[IssueDiff], list[str]]:
    """Diffs against the last sent issue and the last proof; plus notes on what is missing.

    An issue whose sending began is compared as it was sent: its stored rendering (`sent`)."""
    current = current_snapshot(app, issue, sent)
    diffs, notes = [], []
    with app.engine.connect() as conn:
        for name, reference in (("sent issue", sent_snapshot(conn, issue)),
                                ("proof", proof_snapshot(conn, issue))):
            if reference is None:
                notes.append(f"No {name} to compare with yet.")
            else:
                diffs.append(compare(reference, current))
    return diffs, notes


def current_snapshot(app: App, issue: Issue, sent: RenderedSegment | None = None
                     ) -> Snapshot:
    """The upcoming issue as the all-sections segment renders it now, or a sent one as
    stored (`sent`)."""
    html = (sent or app.renderer.render(issue, Preferences())).html
    label = "sent issue as stored" if sent else "upcoming issue"
    return Snapshot(label, issue.subject, issue.preheader, titles_of(issue),
                    len(html.encode("utf-8")))


def sent_snapshot(conn: Connection, issue: Issue) -> Snapshot | None:
    """The last issue whose sending began before this one, with its stored rendering's size."""
    record = issue_store.previous_sent(conn, issue.list_id, issue.moment)
    if record is None:
        return None
    sent = issue_store.load_issue(conn, record)
    renders = {r.segment_key: len(r.html.encode("utf-8")) for r in conn.execute(
        select(issue_renders.c.segment_key, issue_renders.c.html)
        .where(issue_renders.c.issue_id == record.id))}
    size = renders.get(Preferences().key(), max(renders.values(), default=None))
    return Snapshot(f"last sent issue nr. {record.number} ({record.period})", record.subject,
                    record.preheader, titles_of(sent), size)


def proof_snapshot(conn: Connection, issue: Issue) -> Snapshot | None:
    """The newest proof of this issue's period."""
    proof = last_proof(conn, issue.list_id, issue.period)
    if proof is None:
        return None
    found = items_by_id(conn, sorted(proof.item_ids))
    items = {i: found[i].item.title if i in found else f"item {i} (no longer stored)"
             for i in proof.item_ids}
    when = local(proof.created_at).strftime("%Y-%m-%d %H:%M")
    return Snapshot(f"last proof ({when}, {proof.recipients} recipient(s))", proof.subject,
                    proof.preheader, items, proof.html_bytes)


def titles_of(issue: Issue) -> dict[int, str]:
    """Item id -> title for every item of an issue."""
    by_id = {s.id: s.item.title for s in (*issue.magazine, *issue.events)}
    return {i: by_id[i] for i in issue_item_ids(issue)}


def compare(before: Snapshot, after: Snapshot) -> IssueDiff:
    """The differences from one snapshot to another."""
    return IssueDiff(
        reference=before.label,
        added=[after.items[i] for i in after.items if i not in before.items],
        removed=[before.items[i] for i in before.items if i not in after.items],
        subject=(before.subject, after.subject) if before.subject != after.subject else None,
        preheader=((before.preheader, after.preheader)
                   if before.preheader != after.preheader else None),
        size=(before.html_bytes, after.html_bytes),
    )


def format_diff(diff: IssueDiff) -> list[str]:
    """Human-readable lines for one diff."""
    lines = [f"Since the {diff.reference}:"]
    if diff.unchanged:
        return lines + ["  no changes"]
    lines += [f"  + {title}" for title in diff.added]
    lines += [f"  - {title}" for title in diff.removed]
    for name, change in (("subject", diff.subject), ("preheader", diff.preheader)):
        if change:
            lines.append(f"  {name}: {change[0]!r} -> {change[1]!r}")
    before, after = diff.size
    if before != after and before is not None and after is not None:
        lines.append(f"  HTML size: {before / 1024:.1f} KB -> {after / 1024:.1f} KB "
                     f"({(after - before) / 1024:+.1f} KB)")
    return lines
