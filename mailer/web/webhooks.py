"""`POST /webhooks/<provider>`: bounces, complaints and unsubscribes reported by a provider.

Authenticity is checked by the provider's own module (Mailgun HMAC with a fresh timestamp,
SendGrid ECDSA signature, Postmark/Brevo shared secret); a request that fails gets 401/403
and changes nothing. Each applied event is recorded in `webhook_events` in the same
transaction as its effect, so a provider's retry or a replay changes nothing twice.
"""

from __future__ import annotations

import importlib
import logging

from flask import Blueprint, abort, current_app, jsonify, request
from sqlalchemy import Connection, insert, select
from sqlalchemy.exc import IntegrityError

from mailer.app import App
from mailer.models import DeliveryEvent, SubscriberStatus
from mailer.providers import provider_class
from mailer.providers.webhook import KINDS_THAT_MATTER, WebhookRequest, WebhookSecrets
from mailer.store import subscribers as subs
from mailer.store.tables import MAX_ID, outbox, subscribers, webhook_events

log = logging.getLogger(__name__)
blueprint = Blueprint("webhooks", __name__)

PROVIDERS = ("postmark", "sendgrid", "mailgun", "brevo")
MAX_BODY = 10 * 1024 * 1024  # SendGrid posts batches of events
STATUS_FOR = {"bounce": SubscriberStatus.BOUNCED, "complaint": SubscriberStatus.COMPLAINED,
              "unsubscribe": SubscriberStatus.UNSUBSCRIBED}
# Mailgun's signature does not cover the event, so every token is remembered (replays of a
# captured signature with a forged event are refused); others only when something changed.
REMEMBER_ALL = {"mailgun"}


def _app() -> App:
    from mailer.web import EXTENSION

    return current_app.extensions[EXTENSION]


@blueprint.post("/webhooks/<provider>")
def receive(provider: str):
    """Verify, parse and apply one webhook call."""
    if provider not in PROVIDERS:
        abort(404)
    app = _app()
    request.max_content_length = MAX_BODY
    module = importlib.import_module(provider_class(provider).__module__)
    call = WebhookRequest(dict(request.headers), request.get_data(cache=False),
                          app.clock.now().timestamp())
    secrets = WebhookSecrets(app.settings.webhook_secret, app.settings.sendgrid_verification_key)
    problem = module.verify_webhook(call, secrets)
    if problem:
        log.warning("refused %s webhook from %s: %s", provider, request.remote_addr, problem)
        status = 401 if problem.startswith(("no ", "missing")) else 403
        return jsonify(error=problem), status
    try:
        events = module.webhook_events(call)
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        return jsonify(error=f"unreadable {provider} webhook: {exc}"), 400
    applied, duplicates = apply_events(app, events)
    return jsonify(received=len(events), applied=applied, duplicates=duplicates)


def apply_events(app: App, events: list[DeliveryEvent]) -> tuple[int, int]:
    """Apply events once each; returns (changed subscribers, already seen events)."""
    applied = duplicates = 0
    for event in events:
        if event.kind not in KINDS_THAT_MATTER and event.provider not in REMEMBER_ALL:
            continue
        try:
            with app.engine.begin() as conn:
                if _seen(conn, event):
                    duplicates += 1
                    continue
                conn.execute(insert(webhook_events).values(
                    provider=event.provider, event_id=event.event_id[:300],
                    received_at=app.clock.now()))
                applied += _apply(conn, app, event)
        except IntegrityError:  # the same event arrived concurrently and won
            duplicates += 1
    return applied, duplicates


def _seen(conn: Connection, event: DeliveryEvent) -> bool:
    return conn.execute(select(webhook_events.c.event_id).where(
        webhook_events.c.provider == event.provider,
        webhook_events.c.event_id == event.event_id[:300])).first() is not None


def _apply(conn: Connection, app: App, event: DeliveryEvent) -> int:
    status = STATUS_FOR.get(event.kind)
    subscriber_id = _subscriber_for(conn, event) if status else None
    if status is None or subscriber_id is None:
        return 0
    # An event only moves a subscriber down (from_provider).
    return int(subs.set_status(conn, subscriber_id, status, app.clock.now(),
                               f"webhook:{event.provider}",
                               {"event": event.kind, "detail": event.detail[:500]},
                               from_provider=True))


def _subscriber_for(conn: Connection, event: DeliveryEvent) -> int | None:
    """The subscriber an event is about: by our outbox id when it matches the address,
    else by address (providers may lower-case it)."""
    email = event.email.strip().lower()
    if event.outbox_id is not None and 0 < event.outbox_id <= MAX_ID:  # else not ours
        row = conn.execute(select(outbox.c.subscriber_id, outbox.c.email)
                           .where(outbox.c.id == event.outbox_id)).first()
        if row and row.email.lower() == email:
            return row.subscriber_id
    return conn.execute(select(subscribers.c.id).where(subs.same_address(email))).scalar()
