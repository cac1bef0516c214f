"""The SMTP provider against a real aiosmtpd server with STARTTLS and AUTH."""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
import socket
import ssl
import threading
from contextlib import contextmanager
from email import message_from_bytes, policy

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import select

from mailer.sending import send_issue, send_test
from mailer.store.tables import subscribers
from tests.delivery_support import the_issue

USER, PASSWORD = "mailer", "smtp-password-123"


def self_signed(folder):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class Mailbox:
    """An aiosmtpd handler that records messages and refuses some recipients."""

    def __init__(self, refuse=()):
        self.refuse = set(refuse)
        self.messages = []
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.messages.append((envelope.rcpt_tos[:], envelope.content,
                                  session.authenticated))
        return "250 Message accepted for delivery"


def authenticate(server, session, envelope, mechanism, auth_data):
    ok = auth_data.login == USER.encode() and auth_data.password == PASSWORD.encode()
    return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def smtp_app(loaded_app, handler, *, server: dict | None = None, **settings):
    """A plain aiosmtpd server with `handler` (plus Controller options `server`), and the
    app sending through it with these settings; yields (app, controller)."""
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), **(server or {}))
    controller.start()
    try:
        yield loaded_app.with_settings(provider="smtp",
                                       smtp_url=f"smtp://127.0.0.1:{controller.port}",
                                       **settings), controller
    finally:
        controller.stop()


@pytest.fixture
def smtp_server(tmp_path):
    cert, key = self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port(),
                            tls_context=context, require_starttls=True,
                            authenticator=authenticate, auth_require_tls=True)
    controller.start()
    yield mailbox, controller, cert
    controller.stop()


def test_every_subscriber_gets_one_message_over_starttls_with_auth(loaded_app, smtp_server):
    mailbox, controller, cert = smtp_server
    refused = "t.dekker@example.org"
    mailbox.refuse = {refused}
    url = (f"smtp://{USER}:{PASSWORD}@127.0.0.1:{controller.port}"
           f"?starttls=required&cafile={cert}")
    app = loaded_app.with_settings(provider="smtp", smtp_url=url, concurrency=2, batch_size=5)
    result = send_issue(app, the_issue(app))
    recipients = [r for rcpts, _, _ in mailbox.messages for r in rcpts]
    assert sorted(recipients) == sorted(set(recipients)) and len(recipients) == 11
    assert all(authenticated for _, _, authenticated in mailbox.messages)
    assert result.counts["sent"] == 11 and result.counts["failed"] == 1
    assert result.drain.bounced == 1
    message = message_from_bytes(mailbox.messages[0][1], policy=policy.default)
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["List-Unsubscribe"].startswith("<https://")


def test_a_wrong_password_pauses_instead_of_failing_everyone(loaded_app, smtp_server):
    mailbox, controller, cert = smtp_server
    url = f"smtp://{USER}:wrong@127.0.0.1:{controller.port}?starttls=required&cafile={cert}"
    app = loaded_app.with_settings(provider="smtp", smtp_url=url, error_budget_window=10)
    result = send_issue(app, the_issue(app))
    assert not mailbox.messages and not result.finished
    assert result.drain.paused


class PasswordCatcher:
    """An authenticator that records every password that reached the server."""

    def __init__(self):
        self.passwords = []

    def __call__(self, server, session, envelope, mechanism, auth_data):
        self.passwords.append(auth_data.password)
        return authenticate(server, session, envelope, mechanism, auth_data)


def plain_text_server(mailbox, catcher):
    """A server without STARTTLS (or one whose offer an attacker stripped) that takes AUTH
    in the clear."""
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port(),
                            authenticator=catcher, auth_require_tls=False)
    controller.start()
    return controller


def test_the_password_is_never_sent_unencrypted_unless_the_operator_said_so(loaded_app):
    mailbox, catcher = Mailbox(), PasswordCatcher()
    controller = plain_text_server(mailbox, catcher)
    try:
        url = f"smtp://{USER}:{PASSWORD}@127.0.0.1:{controller.port}"  # starttls=auto
        app = loaded_app.with_settings(provider="smtp", smtp_url=url)
        result = send_issue(app, the_issue(app))
        assert not catcher.passwords and not mailbox.messages
        assert not result.finished and "STARTTLS" in result.drain.paused
        error = result.drain.errors[0]
        assert "does not offer STARTTLS" in error and "?starttls=no" in error
        assert PASSWORD not in error
        allowed = app.with_settings(smtp_url=f"{url}?starttls=no")  # the operator's choice
        assert send_test(allowed, the_issue(allowed), ["redactie@example.org"])
        assert catcher.passwords == [PASSWORD.encode()] and len(mailbox.messages) == 1
    finally:
        controller.stop()


class SenderRefusing(Mailbox):
    """A relay that refuses our From address (not allowed to send as it, quota spent)."""

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        return "550 5.7.1 Sender address not allowed"


def test_a_refused_sender_pauses_and_bounces_no_subscriber(loaded_app):
    with smtp_app(loaded_app, SenderRefusing()) as (app, _):
        result = send_issue(app, the_issue(app))
    assert result.drain.paused and not result.finished and result.drain.bounced == 0
    assert result.counts["queued"] == 12 and result.counts["failed"] == 0
    with app.engine.connect() as conn:
        statuses = set(conn.execute(select(subscribers.c.status)).scalars())
    assert "bounced" not in statuses


class Sessions(Mailbox):
    """A mailbox that can close its open connections, as servers do with idle ones."""

    def __init__(self):
        super().__init__()
        self.transports = []

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        self.transports.append(server.transport)
        session.host_name = hostname
        return responses

    def close_all(self, controller):
        closed = threading.Event()

        def close():
            for transport in self.transports:
                transport.close()
            closed.set()

        controller.loop.call_soon_threadsafe(close)
        assert closed.wait(5)


def test_a_connection_the_server_closed_while_idle_is_replaced(loaded_app):
    mailbox = Sessions()
    with smtp_app(loaded_app, mailbox) as (app, controller):
        issue = the_issue(app)
        assert send_test(app, issue, ["a@example.org"]) == [("a@example.org", "sent")]
        mailbox.close_all(controller)  # e.g. the server's idle timeout before the next mail
        later = send_test(app, issue, ["b@example.org", "c@example.org"])
    assert later == [("b@example.org", "sent"), ("c@example.org", "sent")]
    assert [rcpts for rcpts, _, _ in mailbox.messages] == [["a@example.org"], ["b@example.org"],
                                                           ["c@example.org"]]


class PerConnectionCap(Mailbox):
    """Takes two messages per connection, then answers 421 (smtplib then hangs up)."""

    async def handle_DATA(self, server, session, envelope):
        session.taken = getattr(session, "taken", 0) + 1
        if session.taken > 2:
            return "421 4.7.0 Too many messages in this session"
        return await super().handle_DATA(server, session, envelope)


def test_after_a_421_the_next_recipient_gets_a_new_connection(loaded_app):
    mailbox = PerConnectionCap()
    with smtp_app(loaded_app, mailbox) as (app, _):
        outcomes = send_test(app, the_issue(app), [f"{c}@example.org" for c in "abcde"])
    assert [o for _, o in outcomes] == ["sent", "sent", "failed", "sent", "sent"]
    assert [rcpts[0][0] for rcpts, _, _ in mailbox.messages] == ["a", "b", "d", "e"]


class ContentRefusing(Mailbox):
    """Takes every recipient, then refuses the message itself after DATA (a spam filter)."""

    async def handle_DATA(self, server, session, envelope):
        return "550 5.7.1 Message content rejected as spam"


def test_a_message_refused_after_data_bounces_no_subscriber(loaded_app):
    with smtp_app(loaded_app, ContentRefusing(), error_budget_window=10) as (app, _):
        result = send_issue(app, the_issue(app))
    assert result.drain.paused and result.drain.bounced == 0
    with app.engine.connect() as conn:
        statuses = set(conn.execute(select(subscribers.c.status)).scalars())
    assert "bounced" not in statuses


def test_list_unsubscribe_goes_out_as_uris_never_as_an_encoded_word(loaded_app):
    """RFC 2369 headers are a list of <URI>s: a long personal URL must be folded (or left
    long), never turned into =?utf-8?q?...?=, which mail clients do not read as a URI."""
    mailbox = Mailbox()
    with smtp_app(loaded_app, mailbox) as (app, _):
        send_test(app, the_issue(app), ["a@example.org"])
    head = mailbox.messages[0][1].split(b"\r\n\r\n")[0]
    fields = re.sub(rb"\r\n(?=[ \t])", b"", head).decode("ascii").split("\r\n")
    value = next(f for f in fields if f.startswith("List-Unsubscribe:")).split(":", 1)[1]
    assert re.fullmatch(r" <https://[^<>\s]+/afmelden/[^<>\s]+>,\s*<mailto:[^<>\s]+>", value)


def test_an_address_the_server_cannot_take_fails_alone_and_was_never_sent(loaded_app):
    """A UTF-8 local part needs SMTPUTF8; smtplib refuses before the transaction starts.
    New addresses like it are refused on the way in; one stored before still goes out
    with the issue, and only it fails."""
    from sqlalchemy import update

    with loaded_app.engine.begin() as conn:
        first = conn.execute(select(subscribers.c.id).order_by(subscribers.c.id)).scalar()
        conn.execute(update(subscribers).where(subscribers.c.id == first)
                     .values(email="jürgen@example.org", name=""))  # a name fails earlier
    mailbox = Mailbox()
    with smtp_app(loaded_app, mailbox, server={"enable_SMTPUTF8": False}) as (app, _):
        result = send_issue(app, the_issue(app))
    recipients = [r for rcpts, _, _ in mailbox.messages for r in rcpts]
    assert len(recipients) == len(set(recipients)) == 11
    assert "jürgen@example.org" not in recipients
    assert result.counts["sent"] == 11 and result.counts["failed"] == 1
    assert result.drain.possible_duplicates == 0


@pytest.mark.parametrize("url, problem", [
    ("smtp://mailer:geheim@127.0.0.1:587?starttls=true", "starttls must be auto, required or no"),
    ("smtp://mailer:geheim@127.0.0.1:poort", "expected smtp://user:pass@host:port"),
    ("smtp://mailer:geheim@[::1", "expected smtp://user:pass@host:port"),
])
def test_a_mistyped_smtp_url_is_refused_without_showing_the_password(url, problem):
    from mailer.errors import ConfigError
    from mailer.providers.smtp import SmtpTarget

    with pytest.raises(ConfigError, match=problem) as caught:
        SmtpTarget.parse(url)
    assert "geheim" not in str(caught.value)
