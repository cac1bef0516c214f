"""SMTP: one complete MIME message per recipient over a reused connection per thread.

`MAILER_SMTP_URL` is `smtp://user:pass@host:587` (STARTTLS when the server offers it;
`?starttls=required` to insist; a password is only sent encrypted unless `?starttls=no`)
or `smtps://user:pass@host:465` (TLS from the start);
`?cafile=/path.pem` trusts a private certificate authority. A connection failure after
some messages went out fails only the rest, as "maybe accepted" (they may have been queued).
"""

from __future__ import annotations

import contextlib
import smtplib
import ssl
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import parse_qs, unquote, urlsplit

from mailer.clock import Clock
from mailer.errors import ConfigError, ProviderError
from mailer.models import Batch, DeliveryEvent, DeliveryOutcome, Recipient, RecipientStatus
from mailer.providers import register
from mailer.providers.mime import mime_for


@dataclass(frozen=True)
class SmtpTarget:
    """Where and how to connect, parsed from the SMTP URL."""

    host: str
    port: int
    implicit_tls: bool
    starttls: str  # "auto" | "required" | "no"
    user: str | None
    password: str | None
    cafile: str | None

    @classmethod
    def parse(cls, url: str) -> SmtpTarget:
        """Read smtp:// or smtps:// URLs; a ConfigError says what is wrong."""
        malformed = ConfigError("setting smtp_url (MAILER_SMTP_URL): expected "
                                "smtp://user:pass@host:port or smtps://...")
        try:  # urlsplit and .port raise a bare ValueError on a bad port or bracket
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise malformed from None
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise malformed
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        starttls = query.get("starttls", "auto")
        if starttls not in ("auto", "required", "no"):  # anything else would mean no TLS
            raise ConfigError("setting smtp_url (MAILER_SMTP_URL): starttls must be auto, "
                              f"required or no, got {starttls!r}")
        implicit = parts.scheme == "smtps"
        return cls(parts.hostname, port or (465 if implicit else 587), implicit,
                   starttls, unquote(parts.username or "") or None,
                   unquote(parts.password or "") or None, query.get("cafile"))


@register
class SmtpProvider:
    """Sends each recipient's message with SMTP, reusing one connection per thread."""

    name: ClassVar[str] = "smtp"
    max_batch: ClassVar[int] = 100
    max_message_bytes: ClassVar[int] = 10 * 1024 * 1024
    body_once: ClassVar[bool] = False
    idempotent: ClassVar[bool] = False

    def __init__(self, target: SmtpTarget, sender: str, reply_to: str, clock: Clock,
                 timeout: float = 30.0):
        self.target = target
        self.sender = sender
        self.reply_to = reply_to
        self.clock = clock
        self.timeout = timeout
        self._local = threading.local()

    @classmethod
    def from_settings(cls, settings: Any, *, sender: str, clock: Clock) -> SmtpProvider:
        """Build from MAILER_SMTP_URL."""
        if not settings.smtp_url:
            raise ConfigError("setting smtp_url: provider smtp needs MAILER_SMTP_URL")
        return cls(SmtpTarget.parse(settings.smtp_url), sender, settings.reply_to, clock,
                   settings.request_timeout)

    def _context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.target.cafile)

    def _connect(self) -> smtplib.SMTP:
        t = self.target
        try:
            if t.implicit_tls:
                conn: smtplib.SMTP = smtplib.SMTP_SSL(t.host, t.port, timeout=self.timeout,
                                                      context=self._context())
            else:
                conn = smtplib.SMTP(t.host, t.port, timeout=self.timeout)
                conn.ehlo()
                if t.starttls == "required" or (t.starttls == "auto"
                                                and conn.has_extn("starttls")):
                    conn.starttls(context=self._context())
                    conn.ehlo()
            if t.user:
                self._refuse_clear_text_login(conn)
                self._login(conn)
        except smtplib.SMTPAuthenticationError as exc:
            raise ProviderError(f"smtp: login refused: {exc}", retryable=False) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise ProviderError(f"smtp: cannot connect to {t.host}:{t.port}: {exc}",
                                retryable=True) from None
        return conn

    def _refuse_clear_text_login(self, conn: smtplib.SMTP) -> None:
        """Never send the password unencrypted unless the operator allowed it: a server
        without STARTTLS, or an attacker who stripped the offer, would otherwise read it."""
        t = self.target
        if t.implicit_tls or t.starttls == "no" or isinstance(conn.sock, ssl.SSLSocket):
            return
        conn.close()
        raise ProviderError(
            f"smtp: {t.host}:{t.port} does not offer STARTTLS, so the password would go "
            "unencrypted; refused (use smtps://, or add ?starttls=no to MAILER_SMTP_URL "
            "only on a trusted network)", retryable=False)

    def _login(self, conn: smtplib.SMTP) -> None:
        # One mechanism, not smtplib's try-them-all: after a refused PLAIN some servers
        # never answer the LOGIN that follows, which would hang instead of failing clearly.
        offered = conn.esmtp_features.get("auth", "").upper().split()
        mechanism = "PLAIN" if "PLAIN" in offered or not offered else "LOGIN"
        conn.user, conn.password = self.target.user or "", self.target.password or ""
        conn.auth(mechanism, getattr(conn, f"auth_{mechanism.lower()}"))

    def _connection(self) -> smtplib.SMTP:
        conn = getattr(self._local, "conn", None)
        if conn is None or conn.sock is None:  # smtplib hangs up itself after a 421 answer
            conn = self._local.conn = self._connect()
        return conn

    def _live_connection(self) -> smtplib.SMTP:
        """This thread's connection, checked with a NOOP when it is reused: servers close
        idle connections (after minutes, or at their restart), and a message written to
        one that is gone fails in a way that cannot tell "never sent" from "maybe sent"."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            try:
                if conn.noop()[0] == 250:
                    return conn
            except (OSError, smtplib.SMTPException):
                pass
            self._drop()
        return self._connection()

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.close()

    def send_batch(self, batch: Batch) -> list[RecipientStatus]:
        """Send each recipient's message; a connection broken or our sender refused
        mid-batch fails only the rest."""
        statuses: list[RecipientStatus] = []
        now = self.clock.now()
        self._live_connection()  # a refused login or connection fails the whole call
        for recipient in batch.recipients:
            try:
                message = mime_for(batch, recipient, self.sender, self.reply_to, now)
            except ValueError as exc:
                statuses.append(RecipientStatus(DeliveryOutcome.INVALID, detail=str(exc)))
                continue
            try:
                status = self._send_one(message, recipient)
            except smtplib.SMTPSenderRefused as exc:
                # The server refuses our From address, not this recipient: every message
                # after it would be refused alike, and nobody may be marked bounced for it.
                error = self._sender_refused(exc)
                if not statuses:
                    raise error from None
                return _fail_rest(statuses, batch, str(error))
            statuses.append(status)
            if status.outcome is DeliveryOutcome.UNKNOWN:
                return _fail_rest(statuses, batch, "connection lost")
        return statuses

    def _sender_refused(self, exc: smtplib.SMTPSenderRefused) -> ProviderError:
        """Drop the connection and say why the server refused our sender address."""
        self._drop()
        return ProviderError(f"smtp: sender {exc.sender} refused: {exc.smtp_code} "
                             f"{exc.smtp_error.decode(errors='replace')}",
                             retryable=exc.smtp_code < 500)

    def _send_one(self, message: Any, recipient: Recipient) -> RecipientStatus:
        try:
            conn = self._connection()
        except ProviderError as exc:
            return RecipientStatus(DeliveryOutcome.FAILED, detail=str(exc))
        try:
            conn.send_message(message, to_addrs=[recipient.email])
            return RecipientStatus(DeliveryOutcome.SENT, provider_id=recipient.message_id)
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()))
            return self._refused(code, text, mailbox=True)
        except smtplib.SMTPSenderRefused:
            raise
        except smtplib.SMTPNotSupportedError as exc:  # e.g. no SMTPUTF8: nothing was sent
            return RecipientStatus(DeliveryOutcome.REJECTED, detail=f"smtp: {exc}")
        except smtplib.SMTPResponseException as exc:
            return self._refused(exc.smtp_code, exc.smtp_error)
        except (OSError, smtplib.SMTPServerDisconnected) as exc:
            self._drop()
            return RecipientStatus(DeliveryOutcome.UNKNOWN, detail=f"smtp: {exc}")

    def _refused(self, code: int, text: bytes | str, *, mailbox: bool = False) -> RecipientStatus:
        """A refusal; only one of the recipient at RCPT (`mailbox`) can be a bounce: after
        DATA the server refuses the message (content, policy), not the address."""
        detail = f"{code} {text.decode(errors='replace') if isinstance(text, bytes) else text}"
        if 500 <= code < 600:
            return RecipientStatus(DeliveryOutcome.REJECTED, detail=detail,
                                   bounced=mailbox and code in (550, 551, 553))
        return RecipientStatus(DeliveryOutcome.FAILED, detail=detail)

    def batch_limit(self, message_bytes: int) -> int:
        """SMTP sends one message at a time; a batch is just a unit of bookkeeping."""
        return self.max_batch

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> list[DeliveryEvent]:
        """SMTP has no webhooks."""
        return []

    def reconcile(self, issue_id: int, recipients: Sequence[Recipient]
                  ) -> list[RecipientStatus | None]:
        """SMTP cannot be asked afterwards: unknown."""
        return [None] * len(recipients)


def _fail_rest(statuses: list[RecipientStatus], batch: Batch,
               detail: str) -> list[RecipientStatus]:
    """The statuses so far, then FAILED for every recipient of the batch not yet tried."""
    rest = len(batch.recipients) - len(statuses)
    return statuses + [RecipientStatus(DeliveryOutcome.FAILED, detail=detail)] * rest
