from datetime import UTC, date, datetime

import pytest

from mailer.dutch import event_when, long_date, short_date, time_of_day


@pytest.mark.parametrize("day, expected", [
    (date(2026, 12, 3), "donderdag 3 december 2026"),
    (date(2026, 3, 29), "zondag 29 maart 2026"),
    (date(2027, 1, 1), "vrijdag 1 januari 2027"),
])
def test_long_date(day, expected):
    assert long_date(day) == expected


def test_short_months_keep_mei_juni_juli_whole():
    assert short_date(date(2026, 5, 1)) == "1 mei 2026"
    assert short_date(date(2026, 6, 2)) == "2 juni 2026"
    assert short_date(date(2026, 3, 3)) == "3 mrt 2026"


@pytest.mark.parametrize("utc, local_text", [
    # 29 March 2026: 02:00 CET becomes 03:00 CEST.
    (datetime(2026, 3, 29, 0, 30, tzinfo=UTC), "1.30 uur"),
    (datetime(2026, 3, 29, 1, 30, tzinfo=UTC), "3.30 uur"),
    # 25 October 2026: 03:00 CEST becomes 02:00 CET; 02.30 happens twice.
    (datetime(2026, 10, 25, 0, 30, tzinfo=UTC), "2.30 uur"),
    (datetime(2026, 10, 25, 1, 30, tzinfo=UTC), "2.30 uur"),
    (datetime(2026, 10, 25, 13, 30, tzinfo=UTC), "14.30 uur"),
    (datetime(2026, 10, 24, 12, 30, tzinfo=UTC), "14.30 uur"),
])
def test_times_follow_amsterdam_across_dst(utc, local_text):
    assert time_of_day(utc) == local_text


def test_a_utc_instant_late_in_the_evening_is_the_next_local_day():
    assert long_date(datetime(2026, 12, 2, 23, 30, tzinfo=UTC)) == "donderdag 3 december 2026"


def test_event_when_variants():
    start = datetime(2026, 12, 10, 12, 30, tzinfo=UTC)
    end = datetime(2026, 12, 10, 15, 30, tzinfo=UTC)
    assert event_when(start, end) == "donderdag 10 december 2026, 13.30–16.30 uur"
    assert event_when(start, None) == "donderdag 10 december 2026, 13.30 uur"
    two_days = datetime(2026, 12, 11, 15, 0, tzinfo=UTC)
    assert event_when(start, two_days) == (
        "donderdag 10 december 2026, 13.30 uur t/m vrijdag 11 december 2026, 16.00 uur")


def test_all_day_events_use_exclusive_ends():
    first = datetime(2027, 1, 20, 23, 0, tzinfo=UTC)  # local midnight, 21 January
    assert event_when(first, datetime(2027, 1, 21, 23, 0, tzinfo=UTC), all_day=True) == (
        "donderdag 21 januari 2027, hele dag")
    assert event_when(first, datetime(2027, 1, 23, 23, 0, tzinfo=UTC), all_day=True) == (
        "donderdag 21 januari 2027 t/m zaterdag 23 januari 2027")


def test_an_evening_event_ending_at_midnight_ends_at_24_uur():
    # Not "zaterdag 5 december 2026, 20.00 uur t/m zondag 6 december 2026, 0.00 uur".
    assert event_when(datetime(2026, 12, 5, 19, 0, tzinfo=UTC),
                      datetime(2026, 12, 5, 23, 0, tzinfo=UTC)) == \
        "zaterdag 5 december 2026, 20.00–24.00 uur"
    # Summer time: local midnight is 22.00 UTC.
    assert event_when(datetime(2026, 7, 3, 18, 0, tzinfo=UTC),
                      datetime(2026, 7, 3, 22, 0, tzinfo=UTC)) == \
        "vrijdag 3 juli 2026, 20.00–24.00 uur"
    # Past midnight it is a night through to the next day.
    assert event_when(datetime(2026, 12, 5, 19, 0, tzinfo=UTC),
                      datetime(2026, 12, 6, 1, 0, tzinfo=UTC)) == \
        "zaterdag 5 december 2026, 20.00 uur t/m zondag 6 december 2026, 2.00 uur"
