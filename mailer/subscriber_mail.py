"""The mails a subscriber gets outside the newsletter: confirm, already subscribed, goodbye.

Each kind is rendered from its MJML template once per process, with `%%markers%%` for the
personal link and greeting, then filled per recipient like the newsletter. It is sent as
a one-recipient Batch through the configured provider (issue id 0: not an issue).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace

from mailer.links import Links
from mailer.models import Batch, Recipient, RecipientStatus
from mailer.providers import Provider
from mailer.render.newsletter import compile_mjml, inline_css, template_env
from mailer.render.personalize import greeting, marker
from mailer.settings import Settings

# kind -> (template name, subject, the purpose of the personal link)
KINDS = {
    "confirm": ("confirm", "Bevestig je aanmelding voor {list}", "confirm"),
    "already": ("confirm", "Je bent al aangemeld voor {list}", "preferences"),
    "goodbye": ("goodbye", "Je bent afgemeld voor {list}", "preferences"),
}


@dataclass(frozen=True)
class MailJob:
    """One subscriber mail to send: what kind, to whom, and a serial unique among mails;
    a confirm mail for a subscribe request of a known address names the request."""

    kind: str
    subscriber_id: int
    email: str
    name: str
    token_version: int
    serial: int
    request_id: int | None = None


@dataclass(frozen=True)
class RenderedMail:
    """A subscriber mail with markers left in."""

    subject: str
    html: str
    text: str


class SubscriberMail:
    """Renders (once per kind) and sends subscriber mails."""

    def __init__(self, settings: Settings, links: Links, provider: Provider, domain: str,
                 on_sent: Callable[[MailJob, RecipientStatus], None] | None = None):
        self.settings = settings
        self.on_sent = on_sent  # told every provider answer, e.g. to record it in the ledger
        self.links = links
        self.provider = provider
        self.domain = domain
        self._rendered: dict[str, RenderedMail] = {}
        self._lock = threading.Lock()

    def rendered(self, kind: str) -> RenderedMail:
        """The mail of a kind, rendered on first use and kept."""
        with self._lock:
            if kind not in self._rendered:
                self._rendered[kind] = self._render(kind)
            return self._rendered[kind]

    def _render(self, kind: str) -> RenderedMail:
        template, subject, _ = KINDS[kind]
        folder = self.settings.path(self.settings.templates_dir)
        context = self.context(kind)
        mjml_source = template_env(folder, html=True).get_template(
            f"{template}.mjml.j2").render(context)
        text = template_env(folder, html=False).get_template(f"{template}.txt.j2").render(context)
        return RenderedMail(subject.format(list=self.settings.list_name),
                            inline_css(compile_mjml(mjml_source)), text)

    def context(self, kind: str) -> dict:
        """The template context of a kind (documented at the top of each template)."""
        s = self.settings
        return dict(
            kind=kind, list_name=s.list_name, greeting=marker("greeting"),
            action_url=marker("action_url"), max_age_days=s.confirm_max_age_days,
            subscribe_url=self.links.url("aanmelden"), privacy_url=s.privacy_url,
            sender=SimpleNamespace(name=s.from_name, organisation=s.organisation,
                                   postal_address=s.postal_address, email=s.reply_to,
                                   website=s.website),
        )

    def batch(self, job: MailJob) -> Batch:
        """The one-recipient Batch for a job, its personal link signed for the subscriber."""
        mail = self.rendered(job.kind)
        if KINDS[job.kind][2] == "confirm":
            action = self.links.confirm_url(job.subscriber_id, job.token_version,
                                            job.request_id)
        else:
            action = self.links.preferences_url(job.subscriber_id, job.token_version)
        recipient = Recipient(
            outbox_id=job.serial, subscriber_id=job.subscriber_id, email=job.email,
            name=job.name,
            message_id=f"<weerbaarnl.{job.kind}.{job.serial}.{job.subscriber_id}@{self.domain}>",
            values={"greeting": greeting(job.name), "action_url": action},
        )
        return Batch(issue_id=0, segment_key=job.kind, subject=mail.subject, html=mail.html,
                     text=mail.text, recipients=(recipient,),
                     metadata={"kind": job.kind, "subscriber_id": str(job.subscriber_id)})

    def send(self, job: MailJob) -> RecipientStatus:
        """Send one job through the provider; returns the provider's answer."""
        status = self.provider.send_batch(self.batch(job))[0]
        if self.on_sent is not None:
            self.on_sent(job, status)
        return status
