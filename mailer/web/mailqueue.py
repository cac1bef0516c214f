"""Subscriber mails (and the subscribe decision itself) on a background thread, started
after the response has gone out.

The subscribe form then answers in the same time whatever the address (no enumeration
by timing), and a slow provider never holds a web worker.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait

from mailer.subscriber_mail import MailJob, SubscriberMail

log = logging.getLogger(__name__)


class MailQueue:
    """A one-thread executor for MailJobs; the thread starts on first use (fork-safe)."""

    def __init__(self, mail: SubscriberMail):
        self.mail = mail
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="subscriber-mail")
        self._pending: set[Future] = set()
        self._lock = threading.Lock()

    def submit(self, job: MailJob | None) -> None:
        """Send a job later (None is ignored)."""
        if job is not None:
            self.submit_call(lambda: job)

    def submit_call(self, decide: Callable[[], MailJob | None]) -> None:
        """Run `decide` later and send the mail it returns, if any."""
        future = self._executor.submit(self._run, decide)
        with self._lock:
            self._pending.add(future)
        future.add_done_callback(self._done)

    def _run(self, decide: Callable[[], MailJob | None]) -> None:
        try:
            job = decide()
        except Exception:  # noqa: BLE001 - a failed job must not kill the thread
            log.exception("background subscription work failed")
            return
        if job is not None:
            self._send(job)

    def _send(self, job: MailJob) -> None:
        try:
            status = self.mail.send(job)
            log.info("%s mail for subscriber %d: %s %s", job.kind, job.subscriber_id,
                     status.outcome.value, status.detail)
        except Exception:  # noqa: BLE001 - a failed mail must not kill the thread
            log.exception("%s mail for subscriber %d failed", job.kind, job.subscriber_id)

    def _done(self, future: Future) -> None:
        with self._lock:
            self._pending.discard(future)

    def join(self, timeout: float | None = 30) -> None:
        """Wait until every submitted mail has been handed to the provider."""
        with self._lock:
            pending = set(self._pending)
        wait(pending, timeout=timeout)
