"""Subscriber services shared by the web app and the CLI: subscribe (double opt-in),
confirm, change preferences, unsubscribe, resubscribe, forget and purge.

Nobody but the address's owner changes a record: the subscribe form creates a pending
record for a new address, but for a known one (pending or unsubscribed) the requested
name and preferences wait apart (`store.subscription_requests`) until the confirm link
sent for that request is used; an active subscriber only gets a mail with a link to
their preferences.

Each service is one transaction that decides and records (with a consent-ledger entry);
a mail that follows is returned as a MailJob for the caller to send, so the web app can
send it after answering and the answer never depends on who the address belongs to.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from dataclasses import dataclass, replace
from datetime import timedelta
from enum import StrEnum

from sqlalchemy import Connection

from mailer.app import App
from mailer.links import TokenClaims
from mailer.models import Preferences, Subscriber, SubscriberStatus
from mailer.providers.file import copies_for, delete_copies, erase_copies
from mailer.settings import Settings
from mailer.store import privacy, ratelimit, subscription_requests
from mailer.store import subscribers as subs
from mailer.store.subscribers import ConsentContext
from mailer.subscriber_mail import MailJob

log = logging.getLogger(__name__)


class SubscribeOutcome(StrEnum):
    """What a subscribe request did; never shown to the requester (no enumeration)."""

    NEW = "new"  # a pending subscriber was created and a confirmation mail is due
    RENEWED = "renewed"  # pending or unsubscribed: request kept apart, confirmation due
    ALREADY_ACTIVE = "already_active"  # an "already subscribed" mail is due
    SUPPRESSED = "suppressed"  # erased, bounced or complained: nothing is sent
    MAIL_LIMITED = "mail_limited"  # too many mails to this address lately: nothing sent


CONFIRMABLE = (SubscriberStatus.PENDING, SubscriberStatus.UNSUBSCRIBED)
RECEIVING = (SubscriberStatus.PENDING, SubscriberStatus.ACTIVE)


@dataclass(frozen=True)
class SubscribeResult:
    """The outcome of a subscribe request and the mail to send, if any."""

    outcome: SubscribeOutcome
    mail: MailJob | None = None


def consent_context(settings: Settings, source: str, ip: str | None = None,
                    user_agent: str | None = None) -> ConsentContext:
    """A ledger context with IP and user agent kept as the `store_ip` policy says."""
    policy = settings.store_ip
    if policy == "none":
        ip, user_agent = None, None
    elif policy == "truncated":
        ip, user_agent = truncate_ip(ip), strip_versions(user_agent)
    return ConsentContext(source, settings.consent_text_version, ip,
                          user_agent[:500] if user_agent else None)


def truncate_ip(ip: str | None) -> str | None:
    """An IPv4 address cut to its /24 and an IPv6 address to its /48."""
    try:
        address = ipaddress.ip_address(ip or "")
    except ValueError:
        return None
    # Masking the integer gives the network address without building a network object,
    # which cost more than the rest of a one-click request's consent context.
    if address.version == 4:
        return str(ipaddress.IPv4Address(int(address) >> 8 << 8))
    return str(ipaddress.IPv6Address(int(address) >> 80 << 80))


def strip_versions(user_agent: str | None) -> str | None:
    """A user agent without version numbers: browser and platform family only."""
    if not user_agent:
        return None
    return " ".join(re.sub(r"/[\w.]+|\b\d+[\w.]*", "", user_agent).split())[:200] or None


def mail_window(settings: Settings) -> timedelta:
    """The sliding window the rate limits count over."""
    return timedelta(minutes=settings.rate_limit_window_minutes)


def form_post_allowed(app: App, ip: str) -> bool:
    """Count a subscribe-form post from an IP; False when the IP is over its limit."""
    s = app.settings
    with app.engine.begin() as conn:
        return ratelimit.allow(conn, ratelimit.limit_key("ip", limited_network(ip)),
                               s.confirm_limit_per_ip, mail_window(s),
                               app.clock.now()) is not None


def limited_network(ip: str) -> str:
    """The part of an address one client controls: an IPv4 address, or an IPv6 /64 (every
    IPv6 client gets at least a /64 and may send from any address in it)."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if address.version == 4:
        return str(address)
    if address.ipv4_mapped:
        return str(address.ipv4_mapped)
    return str(ipaddress.IPv6Network((int(address) >> 64 << 64, 64)))


def subscribe(app: App, email: str, name: str, preferences: Preferences,
              context: ConsentContext) -> SubscribeResult:
    """Handle a subscribe request for a normalised address (double opt-in)."""
    now = app.clock.now()
    with app.engine.begin() as conn:
        reason = subs.suppression_reason(conn, email)
        if reason is not None and reason != subs.LEFT_BY_CHOICE:
            return SubscribeResult(SubscribeOutcome.SUPPRESSED)
        existing = subs.find_by_email(conn, email)
        if existing is None:
            sub = subs.add_subscriber(
                conn, email=email, name=name, preferences=preferences,
                status=SubscriberStatus.PENDING, source=context.source, now=now,
                consent_text_version=context.consent_text_version, ip=context.ip,
                user_agent=context.user_agent)
            return _with_mail(app, conn, SubscribeOutcome.NEW, "confirm", sub)
        if existing.status is SubscriberStatus.ACTIVE:
            return _with_mail(app, conn, SubscribeOutcome.ALREADY_ACTIVE, "already", existing)
        return _request(app, conn, existing, name, preferences, context)


def _request(app: App, conn: Connection, sub: Subscriber, name: str,
             preferences: Preferences, context: ConsentContext) -> SubscribeResult:
    """Keep a known address's request apart, superseding an earlier one, and mail a confirm
    link bound to it. Over the mail limit nothing is kept: no link would come for it."""
    row = subs.locked_row(conn, sub.id)  # two requests at once: one after the other
    job = mail_job(app, conn, "confirm", sub)
    if job is None:
        return SubscribeResult(SubscribeOutcome.MAIL_LIMITED)
    request = subscription_requests.replace_request(conn, sub.id, subs.clean_name(name),
                                                    preferences, app.clock.now())
    subs.log_event(conn, row, "subscribe", app.clock.now(), context,
                   {"request": request.id, **_agreed(request.preferences)})
    return SubscribeResult(SubscribeOutcome.RENEWED,
                           replace(job, name=request.name, request_id=request.id))


def _agreed(preferences: Preferences) -> dict:
    """Sections and themes as the ledger records what was asked or agreed."""
    stored = subs.stored_preferences(preferences)
    return {"sections": stored["sections"], "themes": stored["themes"]}


def _with_mail(app: App, conn: Connection, outcome: SubscribeOutcome, kind: str,
               sub: Subscriber) -> SubscribeResult:
    job = mail_job(app, conn, kind, sub)
    if job is None:
        return SubscribeResult(SubscribeOutcome.MAIL_LIMITED)
    return SubscribeResult(outcome, job)


def mail_job(app: App, conn: Connection, kind: str, sub: Subscriber) -> MailJob | None:
    """A mail for a subscriber if their address is under its mail limit, else None."""
    s = app.settings
    serial = ratelimit.allow(conn, ratelimit.limit_key("mail", sub.email),
                             s.confirm_limit_per_address, mail_window(s), app.clock.now())
    if serial is None:
        log.info("mail limit reached for subscriber %d; %s mail not sent", sub.id, kind)
        return None
    return MailJob(kind, sub.id, sub.email, sub.name, sub.token_version, serial)


class ConfirmOutcome(StrEnum):
    """What a confirm link did."""

    CONFIRMED = "confirmed"  # active now, with what the link was sent for
    ALREADY = "already"  # active already: nothing to do
    SUPERSEDED = "superseded"  # its request was replaced by a newer one, or lapsed
    REFUSED = "refused"  # bounced, complained, erased or unknown: may not be activated


def confirm(app: App, subscriber_id: int, context: ConsentContext,
            request_id: int | None = None) -> ConfirmOutcome:
    """Activate a pending (or unsubscribed) subscriber with what the confirm link was sent
    for: the waiting request it names, or without one the record as it stands (any other
    waiting request is dropped, unconfirmed). The ledger records what was agreed."""
    with app.engine.begin() as conn:
        row = subs.locked_row(conn, subscriber_id)
        if row is None:
            return ConfirmOutcome.REFUSED
        status = SubscriberStatus(row.status)
        if status is SubscriberStatus.ACTIVE:
            return ConfirmOutcome.ALREADY
        if status not in CONFIRMABLE:
            return ConfirmOutcome.REFUSED
        choices = _choices(conn, row, request_id)
        if choices is None:
            return ConfirmOutcome.SUPERSEDED
        details = _agreed(choices.preferences)
        if request_id is not None:
            changed = subs.apply_choices(conn, row, choices.preferences, choices.name,
                                         app.clock.now()) or {}
            details = {"request": request_id, **details}
            if changed.get("name_changed"):
                details["name_changed"] = True
        subscription_requests.drop_request(conn, subscriber_id)
        subs.set_status(conn, subscriber_id, SubscriberStatus.ACTIVE, app.clock.now(),
                        context.source, details, event="confirm", context=context)
        subs.lift_own_suppression(conn, row.email)
        return ConfirmOutcome.CONFIRMED


@dataclass(frozen=True)
class Choices:
    """The name and preferences a confirm link would confirm."""

    name: str
    preferences: Preferences


def _choices(conn: Connection, row, request_id: int | None) -> Choices | None:
    """What a confirm link for a subscriber row confirms: the record's own choices, or
    those of the waiting request it names; None when that request is no longer waiting."""
    if request_id is None:
        return Choices(row.name, subs.preferences_of(row))
    waiting = subscription_requests.pending_request(conn, row.id)
    if waiting is None or waiting.id != request_id:
        return None
    return Choices(waiting.name, waiting.preferences)


def choices_to_confirm(app: App, subscriber_id: int, request_id: int | None) -> Choices | None:
    """What a confirm link would confirm (for its page), None when superseded or unknown."""
    with app.engine.connect() as conn:
        row = subs.subscriber_row(conn, subscriber_id)
        return _choices(conn, row, request_id) if row is not None else None


def change_preferences(app: App, subscriber_id: int, preferences: Preferences, name: str,
                       context: ConsentContext) -> bool:
    """Store a subscriber's new choice of sections, themes and name."""
    with app.engine.begin() as conn:
        return subs.change_preferences(conn, subscriber_id, preferences, name,
                                       app.clock.now(), context)


def unsubscribe(app: App, subscriber_id: int, context: ConsentContext) -> MailJob | None:
    """Unsubscribe at once (idempotent); returns the goodbye mail to send, if any."""
    with app.engine.begin() as conn:
        sub = subs.subscriber_by_id(conn, subscriber_id)
        if sub is None or sub.status not in RECEIVING:
            return None
        changed = subs.set_status(conn, subscriber_id, SubscriberStatus.UNSUBSCRIBED,
                                  app.clock.now(), context.source, event="unsubscribe",
                                  context=context)
        if not (changed and app.settings.goodbye_mail):
            return None
        return mail_job(app, conn, "goodbye", subs.subscriber_by_id(conn, subscriber_id))


class LinkState(StrEnum):
    """What an unsubscribe link found."""

    UNKNOWN = "unknown"  # no such subscriber: a forged or stale token
    REVOKED = "revoked"  # the token version moved on, or the subscriber was erased
    UNSUBSCRIBED = "unsubscribed"  # done now
    ALREADY = "already"  # nothing to do: already unsubscribed, bounced or complained


@dataclass(frozen=True)
class UnsubscribeResult:
    """The outcome of an unsubscribe link and the goodbye mail to send, if any."""

    state: LinkState
    mail: MailJob | None = None


def unsubscribe_by_link(app: App, claims: TokenClaims, context: ConsentContext, *,
                        goodbye: bool) -> UnsubscribeResult:
    """Unsubscribe the holder of a valid token at once, idempotently.

    This is the RFC 8058 one-click path: one write transaction (UPDATE ... RETURNING and
    one ledger insert, or a read of the row to tell revoked from repeated). A goodbye mail
    goes only where asked (the page's button), never to a mail client's one-click POST:
    the reader did not ask for more mail there. Its rate-limit check is a transaction of
    its own after the unsubscribe, which stands whatever happens to the mail.
    """
    outcome = subs.unsubscribe_by_token(app.engine, claims.subscriber_id, claims.version,
                                        app.clock.now(), context)
    if outcome is None:
        return UnsubscribeResult(LinkState.UNKNOWN)
    if outcome.unsubscribed:
        mail = goodbye_mail(app, claims.subscriber_id) if goodbye else None
        return UnsubscribeResult(LinkState.UNSUBSCRIBED, mail)
    if outcome.token_version != claims.version or outcome.status == SubscriberStatus.ERASED:
        return UnsubscribeResult(LinkState.REVOKED)
    return UnsubscribeResult(LinkState.ALREADY)


def goodbye_mail(app: App, subscriber_id: int) -> MailJob | None:
    """The goodbye mail for someone who just unsubscribed, if configured and under limits."""
    if not app.settings.goodbye_mail:
        return None
    with app.engine.begin() as conn:
        sub = subs.subscriber_by_id(conn, subscriber_id)
        if sub is None or sub.status is not SubscriberStatus.UNSUBSCRIBED:
            return None  # erased or resubscribed in the meantime
        return mail_job(app, conn, "goodbye", sub)


def resubscribe(app: App, subscriber_id: int, context: ConsentContext) -> bool:
    """Undo an unsubscribe from the subscriber's own link; False if not unsubscribed."""
    with app.engine.begin() as conn:
        sub = subs.subscriber_by_id(conn, subscriber_id)
        if sub is None or sub.status is not SubscriberStatus.UNSUBSCRIBED:
            return False
        return subs.set_status(conn, subscriber_id, SubscriberStatus.ACTIVE, app.clock.now(),
                               context.source, event="resubscribe", context=context)


def forget(app: App, email: str, source: str) -> bool:
    """Erase everything about an address but a hashed suppression entry; False if unknown.

    Copies the file provider wrote go too: they hold the address and the personal links.
    """
    now = app.clock.now()
    with app.engine.begin() as conn:
        sub = subs.find_by_email(conn, email)
        if sub is None:
            known = subs.is_suppressed(conn, email)
            subs.suppress(conn, email, "erased", now)
        else:
            privacy.erase(conn, sub.id, now, source)
            known = True
        for other in privacy.rows_ledgered_for(conn, email):  # e.g. merged by migration 0012
            privacy.erase(conn, other, now, source, suppress_address=False)
    erase_copies(app.settings.path(app.settings.outbox_dir), email)
    return known


def purge_pending(app: App) -> int:
    """Erase subscribers left pending longer than `pending_purge_days`; returns how many.

    They never confirmed, so there is no consent to prove and no suppression to keep.
    A subscribe request that waited as long goes too, whoever it was for (an unsubscribed
    subscriber keeps their record); a pending subscriber with a newer request stays, as
    its link still works. The confirmation mails the file provider wrote go too (they hold
    the address, the name and a confirm link). The scheduler runs this daily; old
    rate-limit hits are the retention job's (`retention.apply_retention`).
    """
    now = app.clock.now()
    before = now - timedelta(days=app.settings.pending_purge_days)
    with app.engine.begin() as conn:
        ids = privacy.stale_pending_ids(conn, before)
        addresses = [subs.subscriber_row(conn, i).email for i in ids]
        for subscriber_id in ids:
            privacy.erase(conn, subscriber_id, now, "purge:pending",
                          suppress_address=False, event="purge")
        subscription_requests.drop_requests_before(conn, before)
    delete_copies(copies_for(app.settings.path(app.settings.outbox_dir), addresses))
    return len(ids)
