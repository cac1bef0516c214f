"""The rate limiter and error budget, with an injected clock (no sleeping)."""

import threading

from mailer.delivery.budget import ErrorBudget
from mailer.delivery.pacing import RateLimiter, retry_delay


class Ticks:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_a_configured_rate_spaces_calls():
    clock = Ticks()
    limiter = RateLimiter(100.0, monotonic=clock)
    assert limiter.delay_for(50) == 0
    assert limiter.delay_for(50) == 0.5
    assert limiter.delay_for(100) == 1.0


def test_429_pauses_everyone_and_slows_to_below_the_achieved_rate():
    clock = Ticks()
    limiter = RateLimiter(0.0, monotonic=clock)
    for _ in range(5):  # 1000 messages/s for 4 s
        limiter.succeeded(1000)
        clock.now += 1
    limiter.throttled(retry_after=3.0)
    assert limiter.delay_for(0) == 3.0
    assert 700 <= limiter.rate < 1000
    slowed = limiter.rate
    limiter.succeeded(100)
    assert limiter.rate > slowed  # creeps back up


def test_429_before_any_measurement_only_waits():
    clock = Ticks()
    limiter = RateLimiter(0.0, monotonic=clock)
    limiter.throttled(retry_after=None)
    assert limiter.rate == 0 and limiter.delay_for(10) == 1.0


def test_acquire_gives_up_when_stopped():
    limiter = RateLimiter(1.0)
    limiter.throttled(retry_after=60)
    stop = threading.Event()
    stop.set()
    assert limiter.acquire(1, stop) is False


def test_retry_delay_honours_retry_after_and_grows():
    assert retry_delay(1, 7.0) == 7.0
    assert 0.25 <= retry_delay(1, None) <= 0.5 and 2 <= retry_delay(4, None) <= 4


def test_error_budget_is_decided_as_soon_as_it_is_certain():
    budget = ErrorBudget(0.05, 500)
    for _ in range(25):
        budget.count(True)
    assert budget.exhausted() is None
    budget.count(True)
    assert "26 of the first 26" in budget.exhausted()
    late = ErrorBudget(0.05, 10)
    for _ in range(10):
        late.count(False)
    for _ in range(100):
        late.count(True)  # after the window: not counted
    assert late.exhausted() is None


def test_fast_tokens_are_exactly_what_itsdangerous_makes():
    from datetime import UTC, datetime

    from mailer.clock import FixedClock
    from mailer.links import Links

    for instant in (datetime(2026, 12, 3, 8, tzinfo=UTC), datetime(2031, 1, 1, tzinfo=UTC)):
        links = Links("a-secret-key-of-some-length", "https://x.example", FixedClock(instant))
        for purpose in ("unsubscribe", "preferences", "confirm"):
            for sid, version in ((1, 1), (123456789, 42), (7, 0)):
                token = links.token(purpose, sid, version)
                assert token == links._serializer(purpose).dumps([sid, version])
                assert links.read(purpose, token).subscriber_id == sid
