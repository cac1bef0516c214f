"""Pacing of provider calls: a shared rate limiter that backs off on 429, and retry delays."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable


class RateLimiter:
    """Spaces calls so that at most `rate` messages per second go out over all threads.

    A rate of 0 means "as fast as the provider accepts" until the provider says 429: then
    every thread waits out the provider's reset time and the rate drops to half of what
    was achieved, creeping back up by 5 % per successful call.
    """

    def __init__(self, rate: float = 0.0, *, monotonic: Callable[[], float] = time.monotonic):
        self.ceiling = rate  # the configured maximum; 0 = none
        self.rate = rate
        self.monotonic = monotonic
        self._lock = threading.Lock()
        self._next_free = 0.0
        self._blocked_until = 0.0
        self._started = monotonic()
        self._sent = 0
        self.slowdowns = 0

    def delay_for(self, messages: int) -> float:
        """Reserve a slot for `messages`; returns how long the caller must wait first."""
        with self._lock:
            now = self.monotonic()
            start = max(now, self._blocked_until, self._next_free if self.rate else 0.0)
            if self.rate:
                self._next_free = start + messages / self.rate
            return start - now

    def acquire(self, messages: int, stop: threading.Event) -> bool:
        """Wait for a slot; False when `stop` was set while waiting."""
        delay = self.delay_for(messages)
        while delay > 0:
            if stop.wait(min(delay, 0.5)):
                return False
            delay = self.delay_for(0) if self._blocked_until > self.monotonic() else 0
        return not stop.is_set()

    def succeeded(self, messages: int) -> None:
        """Count delivered messages and creep the rate back towards the ceiling."""
        with self._lock:
            self._sent += messages
            if self.rate and (not self.ceiling or self.rate < self.ceiling):
                self.rate *= 1.05
                if self.ceiling:
                    self.rate = min(self.rate, self.ceiling)

    def throttled(self, retry_after: float | None) -> None:
        """The provider said 429: pause everyone and halve the rate."""
        with self._lock:
            now = self.monotonic()
            self._blocked_until = max(self._blocked_until, now + (retry_after or 1.0))
            achieved = self._sent / max(now - self._started, 1e-3)
            current = self.rate or achieved or 1.0
            self.rate = max(min(current, achieved or current) / 2, 1.0)
            self._next_free = self._blocked_until
            self.slowdowns += 1


def retry_delay(attempt: int, retry_after: float | None, *, base: float = 0.5,
                cap: float = 30.0) -> float:
    """Exponential backoff with jitter for the n-th retry (1-based); the provider's own
    Retry-After wins when it gave one."""
    if retry_after is not None:
        return min(retry_after, 300.0)
    ceiling = min(cap, base * 2 ** (attempt - 1))
    return random.uniform(ceiling / 2, ceiling)
