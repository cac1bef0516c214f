"""Pacing of provider calls: a shared rate limiter that backs off on 429, and retry delays."""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from collections.abc import Callable


class RateLimiter:
    """Spaces calls so that at most `rate` messages per second go out over all threads.

    A rate of 0 means "as fast as the provider accepts". On a 429 every thread waits out
    the provider's reset time, and the rate drops to 70 % of what was achieved over the
    last seconds (when that was measured); each successful call then raises it by 10 %,
    and an improvised limit that no longer binds is dropped again.
    """

    WINDOW = 5.0  # seconds of history for the achieved rate

    def __init__(self, rate: float = 0.0, *, monotonic: Callable[[], float] = time.monotonic):
        self.ceiling = rate  # the configured maximum; 0 = none
        self.rate = rate
        self.monotonic = monotonic
        self._lock = threading.Lock()
        self._next_free = 0.0
        self._blocked_until = 0.0
        self._recent: deque[tuple[float, int]] = deque()
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
            delay = max(self._blocked_until - self.monotonic(), 0.0)
        return not stop.is_set()

    def achieved(self) -> float | None:
        """Messages per second over the last WINDOW seconds; None until measurable."""
        with self._lock:
            return self._achieved(self.monotonic())

    def _achieved(self, now: float) -> float | None:
        while self._recent and self._recent[0][0] < now - self.WINDOW:
            self._recent.popleft()
        if len(self._recent) < 2 or now - self._recent[0][0] < 0.5:
            return None
        return sum(n for _, n in self._recent) / (now - self._recent[0][0])

    def succeeded(self, messages: int) -> None:
        """Count delivered messages and raise an improvised rate again."""
        with self._lock:
            now = self.monotonic()
            self._recent.append((now, messages))
            if not self.rate or self.rate == self.ceiling:
                return
            self.rate *= 1.1
            achieved = self._achieved(now)
            if self.ceiling:
                self.rate = min(self.rate, self.ceiling)
            elif achieved is not None and self.rate > 2 * achieved:
                self.rate = 0.0  # the improvised limit no longer binds: drop it

    def throttled(self, retry_after: float | None) -> None:
        """The provider said 429: pause everyone, and slow down if we know how fast we went."""
        with self._lock:
            now = self.monotonic()
            self._blocked_until = max(self._blocked_until, now + (retry_after or 1.0))
            achieved = self._achieved(now)
            if achieved:
                lowered = achieved * 0.7
                self.rate = min(self.rate, lowered) if self.rate else lowered
                self.rate = max(self.rate, 1.0)
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
