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


def test_a_batch_counts_in_the_report_and_only_its_first_rows_in_the_budget():
    from collections import Counter

    from mailer.delivery.drain_run import DrainReport, DrainRun
    from mailer.models import DeliveryOutcome, OutboxStatus, RecipientStatus
    from mailer.store.outbox import Recorded

    run = DrainRun(DrainReport(), threading.Lock(), threading.Event(), ErrorBudget(0.5, 3),
               None, 5)
    ok, bad = RecipientStatus(DeliveryOutcome.SENT), RecipientStatus(DeliveryOutcome.FAILED)
    recorded = Recorded(Counter({OutboxStatus.SENT: 2, OutboxStatus.QUEUED: 2,
                                 OutboxStatus.FAILED: 1}), possible_duplicates=1)
    run.account(recorded, [ok, bad, ok, bad, bad], bounced=1)
    r = run.report
    assert (r.batches, r.sent, r.failed, r.retrying, r.possible_duplicates, r.bounced) == (
        1, 2, 1, 2, 1, 1)
    assert (run.budget.seen, run.budget.failed, run.budget.room()) == (3, 1, 0)
    assert not run.halt.is_set()  # 1 of the first 3 failed: within half
    run.account(Recorded(Counter({OutboxStatus.SENT: 1})), [bad], bounced=0)  # after the window
    assert run.budget.failed == 1 and run.report.sent == 3


def test_a_batch_partly_taken_over_counts_only_what_was_recorded():
    """Answers the fence threw away count neither in the report nor in the budget; of
    the rest only the number per status is known, so its failures count first."""
    from collections import Counter

    from mailer.delivery.drain_run import DrainReport, DrainRun
    from mailer.models import DeliveryOutcome, OutboxStatus, RecipientStatus
    from mailer.store.outbox import Recorded

    run = DrainRun(DrainReport(), threading.Lock(), threading.Event(), ErrorBudget(0.5, 4),
               None, 6)
    bad = RecipientStatus(DeliveryOutcome.FAILED)
    recorded = Recorded(Counter({OutboxStatus.SENT: 2, OutboxStatus.QUEUED: 1}), missed=3)
    run.account(recorded, [bad] * 6, bounced=0)
    r = run.report
    assert (r.sent, r.retrying, r.failed, r.lost_to_takeover) == (2, 1, 0, 3)
    assert (run.budget.seen, run.budget.failed) == (3, 1) and not run.halt.is_set()
    run.account(Recorded(Counter({OutboxStatus.QUEUED: 2}), missed=1), [bad] * 3, bounced=0)
    assert (run.budget.seen, run.budget.failed) == (4, 2) and not run.halt.is_set()


def test_fast_tokens_are_exactly_what_itsdangerous_makes():
    from datetime import UTC, datetime

    from mailer.clock import FixedClock
    from mailer.links import Links

    instants = (datetime(2026, 12, 3, 8, tzinfo=UTC), datetime(2031, 1, 1, tzinfo=UTC),
                datetime(1970, 1, 1, tzinfo=UTC), datetime(2026, 12, 3, 8, 0, 1, tzinfo=UTC))
    secrets = ("a-secret-key-of-some-length", "k", "sleutel-met-één-ü" * 9)
    for secret in secrets:
        for instant in instants:
            links = Links(secret, "https://x.example", FixedClock(instant))
            for purpose in ("unsubscribe", "preferences", "confirm"):
                for sid, version in ((1, 1), (123456789, 42), (7, 0), (-3, 2),
                                     (10**14, 10**14), (10**20, 1)):
                    token = links.token(purpose, sid, version)
                    assert token == links._serializer(purpose).dumps([sid, version])
                    assert links.read(purpose, token).subscriber_id == sid


def test_reading_tokens_gives_itsdangerous_verdict():
    from datetime import UTC, datetime, timedelta

    import pytest

    from mailer.clock import FixedClock
    from mailer.links import Links, TokenClaims, TokenExpired, TokenInvalid

    signed_at = datetime(2026, 12, 3, 8, tzinfo=UTC)
    links = Links("a-secret-key-of-some-length", "https://x.example", FixedClock(signed_at))

    def verdict(reader, purpose, token, max_age=None):
        try:
            return reader.read(purpose, token, max_age=max_age)
        except TokenExpired:
            return "expired"
        except TokenInvalid:
            return "invalid"

    def general(reader, purpose, token, max_age=None):
        try:
            data = reader._serializer(purpose).loads(token, max_age=max_age)
        except Exception as exc:  # noqa: BLE001 - the verdict is the exception's kind
            return "expired" if "age" in str(exc) else "invalid"
        ok = isinstance(data, list) and len(data) == 2 and all(isinstance(x, int) for x in data)
        return TokenClaims(*data) if ok else "invalid"

    token = links.token("unsubscribe", 42, 3)
    other = Links("another-secret-key-of-some-length", "https://x.example", links.clock)
    tokens = {
        "own": token, "tampered": token[:-2] + ("AA" if token[-2:] != "AA" else "BB"),
        "padded": token + "=", "no stamp": token.split(".")[0] + "." + token.split(".")[2],
        "foreign": other.token("unsubscribe", 42, 3), "empty": "", "dots": "..",
        "not ascii": token + "é", "compressed": links._serializer("unsubscribe").dumps(
            [10**60, 1]), "negative": links._serializer("unsubscribe").dumps([-1, 1]),
        "three": links._serializer("unsubscribe").dumps([1, 2, 3]),
    }
    for name, value in tokens.items():
        for purpose in ("unsubscribe", "confirm"):
            assert verdict(links, purpose, value) == general(links, purpose, value), name
    assert verdict(links, "unsubscribe", token) == TokenClaims(42, 3)
    for days, max_age in ((0, 60), (6, 7 * 86400), (8, 7 * 86400), (-1, 86400)):
        later = Links(links.secret_key, links.base_url, FixedClock(signed_at + timedelta(days)))
        assert verdict(later, "unsubscribe", token, max_age) == \
            general(later, "unsubscribe", token, max_age), days
    assert verdict(later, "unsubscribe", token, 86400) == "expired"  # from the future
    with pytest.raises(ValueError):
        links.read("elsewhere", token)


def test_fast_tokens_match_itsdangerous_where_compression_might_start():
    """The most compressible payloads around the length where itsdangerous starts
    compressing: runs of one digit, in both places."""
    from datetime import UTC, datetime

    from mailer.clock import FixedClock
    from mailer.links import Links

    links = Links("s3cret", "https://x.example", FixedClock(datetime(2026, 12, 3, tzinfo=UTC)))
    for width in range(1, 16):
        for digit in "0123456789":
            run = int("1" + digit * (width - 1))
            for sid, version in ((run, 1), (1, run), (run, run), (-run, 0)):
                token = links.token("unsubscribe", sid, version)
                assert token == links._serializer("unsubscribe").dumps([sid, version])


def test_personal_urls_are_the_single_urls_made_together():
    """Tokens made together share payload and timestamp yet are each what `token` and
    itsdangerous make, on the fast path and where itsdangerous compresses."""
    from datetime import UTC, datetime

    import pytest

    from mailer.clock import FixedClock
    from mailer.links import Links

    links = Links("s3cret", "https://x.example/", FixedClock(datetime(2026, 12, 3, tzinfo=UTC)))
    for sid, version in ((1, 1), (123456789, 42), (-3, 2), (10**14, 10**14), (10**20, 1)):
        assert links.personal_urls(sid, version) == (links.unsubscribe_url(sid, version),
                                                     links.preferences_url(sid, version))
        made = links.tokens(("preferences", "confirm"), sid, version)
        assert made == [links._serializer(p).dumps([sid, version])
                        for p in ("preferences", "confirm")]
    with pytest.raises(ValueError):
        links.tokens(("unsubscribe", "elsewhere"), 1, 1)


def test_a_batch_of_personal_urls_is_each_subscribers_own():
    """A batch signed at once gives every pair exactly its single URLs, including the
    ones itsdangerous compresses, in order."""
    from datetime import UTC, datetime

    from mailer.clock import FixedClock
    from mailer.links import Links

    links = Links("s3cret", "https://x.example", FixedClock(datetime(2026, 12, 3, tzinfo=UTC)))
    pairs = [(1, 1), (123456789, 42), (10**20, 1), (-3, 2), (10**14, 10**14), (7, 0)]
    assert links.personal_urls_of(pairs) == [
        (links.unsubscribe_url(sid, version), links.preferences_url(sid, version))
        for sid, version in pairs]
    assert links.personal_urls_of([]) == []
