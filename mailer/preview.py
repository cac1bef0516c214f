"""Preview: the upcoming issue as one sample reader gets it, written to files and linted."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mailer.app import App
from mailer.message import list_headers, list_id_value
from mailer.models import Batch, Issue, Preferences, Recipient
from mailer.providers.mime import mime_for
from mailer.render.lint import Finding, lint_message
from mailer.render.newsletter import RenderedSegment, segment_counts, segment_texts, select_for
from mailer.render.personalize import greeting
from mailer.store import issues as issue_store
from mailer.store import outbox_fill

SAMPLE_ID = 0  # no real subscriber has id 0, so the sample links never work for anyone


@dataclass(frozen=True)
class Preview:
    """A rendered sample message and what lint found in it."""

    segment: RenderedSegment
    html: str
    text: str
    eml: bytes
    findings: list[Finding]


def sample_recipient(app: App, name: str = "") -> Recipient:
    """A recipient with working-looking but unusable links, for previews and tests."""
    unsubscribe = app.links.unsubscribe_url(SAMPLE_ID, 0)
    headers = list_headers(app.settings.list_id, app.settings.list_name, unsubscribe,
                           app.settings.unsubscribe_mailto)
    headers.pop("List-Id")
    return Recipient(
        outbox_id=0, subscriber_id=SAMPLE_ID, email="lezer@example.org", name=name,
        message_id=f"<weerbaarnl.preview@{app.message_domain}>",
        values={"greeting": greeting(name), "unsubscribe_url": unsubscribe,
                "preferences_url": app.links.preferences_url(SAMPLE_ID, 0)},
        headers=headers,
    )


def build_preview(app: App, issue: Issue, preferences: Preferences | None = None,
                  segment: RenderedSegment | None = None) -> Preview:
    """Render the issue for a preference set (default: everything), or take a rendering
    made already (`segment`), and lint it."""
    segment = segment or app.renderer.render(issue, preferences or Preferences())
    recipient = sample_recipient(app)
    batch = Batch(issue_id=issue.id or 0, segment_key=segment.segment_key,
                  subject=segment.subject, html=segment.html, text=segment.text,
                  recipients=(recipient,),
                  headers={"List-Id": list_id_value(app.settings.list_name, app.settings.list_id)})
    html = batch.html_template.fill(recipient.values)
    text = batch.text_template.fill(recipient.values)
    message = mime_for(batch, recipient, app.sender, app.settings.reply_to, app.clock.now())
    findings = lint_message(
        html, text, preheader=segment.preheader, budget_kb=app.settings.size_budget_kb,
        unsubscribe_url=recipient.values["unsubscribe_url"],
        preferences_url=recipient.values["preferences_url"],
    )
    return Preview(segment, html, text, message.as_bytes(), findings)


def is_sent(app: App, issue: Issue) -> bool:
    """Whether the issue's sending has begun: what it holds is fixed and stored."""
    with app.engine.connect() as conn:
        record = issue_store.issue_by_id(conn, issue.id) if issue.id else None
    return issue_store.send_begun(record)


def sent_segment(app: App, issue: Issue, preferences: Preferences | None = None
                 ) -> RenderedSegment | None:
    """What the readers of a segment (default: every section) were sent of a sent issue,
    as stored when its sending began; None when nobody had that segment (so nothing of
    it was stored)."""
    chosen = preferences or Preferences()
    with app.engine.connect() as conn:
        stored = outbox_fill.load_renders(conn, issue.id).get(chosen.key())
    if stored is None:
        return None
    subject, html, text = stored
    magazine, agenda = select_for(issue, chosen)
    preheader = segment_texts(issue, magazine, agenda, app.settings.list_name).preheader
    counts = segment_counts(issue, chosen)
    return RenderedSegment(segment_key=chosen.key(), subject=subject, preheader=preheader,
                           html=html, text=text, item_count=counts.item_count,
                           new_count=counts.new_count)


def sent_preview_note(stored: bool, readers: str = "alle onderdelen") -> str:
    """What the preview of an issue whose sending began shows, in the editors' Dutch;
    `readers` names the segment ('alle onderdelen', 'dit segment')."""
    if stored:
        return ("Dit nummer is al verstuurd: dit is het opgeslagen nummer, precies zoals "
                f"lezers van {readers} het kregen (niet opnieuw samengesteld).")
    return (f"Dit nummer is al verstuurd, maar niemand kreeg {readers}: dit is het "
            "opgeslagen nummer (dezelfde artikelen en activiteiten), opgemaakt zoals de "
            "inhoud nu is.")


def write_preview(preview: Preview, folder: Path) -> dict[str, Path]:
    """Write issue.html, issue.txt and issue.eml; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    names = {"html": "issue.html", "text": "issue.txt", "eml": "issue.eml"}
    paths = {kind: folder / name for kind, name in names.items()}
    paths["html"].write_text(preview.html, encoding="utf-8")
    paths["text"].write_text(preview.text, encoding="utf-8")
    paths["eml"].write_bytes(preview.eml)
    return paths
