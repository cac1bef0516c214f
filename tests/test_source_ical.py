"""iCalendar agendas served by a real local HTTP server."""

from datetime import UTC, datetime, timedelta

import pytest

from mailer.errors import ContentError
from mailer.models import ItemKind, ItemStatus
from tests.source_helpers import corpus, fixture, make_source, serve

LINK = "https://www.platformjep.example.nl/agenda"


def fetch(httpserver, body: bytes, at: datetime, **options):
    url = serve(httpserver, "/agenda.ics", body, "text/calendar; charset=utf-8")
    source = make_source("ical", url, at=at, **options)
    return {i.source_id: i for i in source.fetch()}, source


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_spring_dst_weekly_series_with_exdate_and_moved_occurrence(httpserver):
    items, source = fetch(httpserver, fixture("dst.ics"), utc(2026, 3, 1, 8))
    series = "intervisie-voorjaar@platformjep.example.nl"
    assert {k: (v.starts_at, v.status) for k, v in items.items() if k.startswith(series)} == {
        f"{series}/20260319T090000Z": (utc(2026, 3, 19, 9), ItemStatus.ACTIVE),  # CET
        f"{series}/20260326T090000Z": (utc(2026, 3, 26, 9), ItemStatus.CANCELLED),  # EXDATE
        # moved from 10:00 to 14:00 local (CEST, after 29 March): keeps its original id
        f"{series}/20260402T080000Z": (utc(2026, 4, 2, 12), ItemStatus.ACTIVE),
        f"{series}/20260409T080000Z": (utc(2026, 4, 9, 8), ItemStatus.ACTIVE),  # CEST
    }
    moved = items[f"{series}/20260402T080000Z"]
    assert moved.title == "Intervisie expertpool (verplaatst naar de middag)"
    assert moved.ends_at == utc(2026, 4, 2, 13, 30)
    first = items[f"{series}/20260319T090000Z"]
    assert first.kind is ItemKind.EVENT and first.location == "Online (Teams)" and first.online
    assert first.event_type == "intervisie"  # a category names one of our event types
    assert first.summary == ("<p>Intervisie voor professionals. We bespreken casuïstiek, "
                             "vertrouwelijk.</p>")
    assert source.window.column == "starts_at" and source.window.start == utc(2026, 3, 1, 8)


def test_autumn_dst_and_a_cancelled_override(httpserver):
    items, _ = fetch(httpserver, fixture("dst.ics"), utc(2026, 10, 1, 8))
    series = "werkatelier-najaar@platformjep.example.nl"
    assert {k: (v.starts_at, v.status) for k, v in items.items() if k.startswith(series)} == {
        f"{series}/20261015T170000Z": (utc(2026, 10, 15, 17), ItemStatus.ACTIVE),  # CEST
        f"{series}/20261022T170000Z": (utc(2026, 10, 22, 17), ItemStatus.CANCELLED),
        f"{series}/20261029T180000Z": (utc(2026, 10, 29, 18), ItemStatus.ACTIVE),  # CET
    }
    night = items["nachtdienst@platformjep.example.nl"]  # 22:00 CEST to 04:00 CET
    assert (night.starts_at, night.ends_at) == (utc(2026, 10, 24, 20), utc(2026, 10, 25, 3))


def test_floating_utc_all_day_duration_cancelled_and_horizon(httpserver):
    items, source = fetch(httpserver, fixture("agenda.ics"), utc(2026, 12, 3, 8), link=LINK,
                          topics={"*": "sociaal-domein"})
    assert source.problems == []
    floating = items["zwevend@platformjep.example.nl"]
    assert floating.starts_at == utc(2026, 12, 10, 12, 30)  # floating = Amsterdam time
    assert floating.location == "Jaarbeurs, Utrecht" and not floating.online
    assert floating.event_type == "training"
    assert floating.topics == ("sociaal-domein",)
    webinar = items["utc@platformjep.example.nl"]
    assert webinar.starts_at == utc(2026, 12, 11, 9) and webinar.online
    assert webinar.url == LINK  # no URL of its own: the source's link
    all_day = items["heledag@platformjep.example.nl"]
    assert all_day.all_day
    assert (all_day.starts_at, all_day.ends_at) == (utc(2026, 12, 13, 23), utc(2026, 12, 15, 23))
    duration = items["duur@platformjep.example.nl"]
    assert duration.ends_at - duration.starts_at == timedelta(hours=3, minutes=30)
    assert items["afgelast@platformjep.example.nl"].status is ItemStatus.CANCELLED
    assert "ver-weg@platformjep.example.nl" not in items  # 2028: beyond the horizon


def test_events_without_url_and_without_link_option_are_problems(httpserver):
    items, source = fetch(httpserver, fixture("agenda.ics"), utc(2026, 12, 3, 8))
    assert "utc@platformjep.example.nl" not in items and len(items) == 4
    assert "has no URL" in str(source.problems[0])


def test_occurrence_ids_are_stable_between_fetches(httpserver):
    first, _ = fetch(httpserver, fixture("dst.ics"), utc(2026, 3, 1, 8))
    again, _ = fetch(httpserver, fixture("dst.ics"), utc(2026, 3, 1, 8))
    assert first == again


def test_exchange_all_day_series_with_moved_occurrence(httpserver):
    items, _ = fetch(httpserver, corpus("ical/exchange2010-allday-moved-occurrence.ics"),
                     utc(2026, 2, 1), link=LINK)
    assert all(i.all_day for i in items.values())
    starts = sorted(i.starts_at for i in items.values())
    assert starts[0] == utc(2026, 2, 18, 23)  # 19 February, Amsterdam midnight
    assert utc(2026, 2, 26, 23) in starts  # the moved occurrence


def test_apple_duration_with_exdates_from_another_time_zone(httpserver):
    items, _ = fetch(httpserver, corpus("ical/apple-ical2-duration-exdate.ics"),
                     utc(2005, 12, 1), link=LINK)
    statuses = sorted(i.status.value for i in items.values())
    assert statuses == ["active"] * 5 + ["cancelled"] * 2
    first = min(items.values(), key=lambda i: i.starts_at)
    assert first.starts_at == utc(2006, 1, 1, 2)  # 12:00 Brisbane
    assert first.ends_at - first.starts_at == timedelta(hours=1)


def test_apple_status_mix_marks_only_cancelled(httpserver):
    items, _ = fetch(httpserver, corpus("ical/apple-macos-status-mix.ics"), utc(2022, 7, 1),
                     link=LINK)
    by_title = {i.title: i.status for i in items.values()}
    assert by_title == {"Tentative": ItemStatus.ACTIVE, "Confirmed": ItemStatus.ACTIVE,
                        "Cancelled": ItemStatus.CANCELLED, "No Status": ItemStatus.ACTIVE}


def test_broken_vtimezone_from_the_events_calendar_is_read_with_a_note(httpserver):
    items, source = fetch(httpserver, corpus("ical/the-events-calendar-hathaway.ics"),
                          utc(2024, 6, 1))
    assert [i.title for i in items.values()] == ["Possible Snow Makeup Day"]
    assert "read without its VTIMEZONEs" in str(source.problems[0])


def test_a_series_with_an_unreadable_start_is_a_problem_not_silently_gone(httpserver):
    # Outlook wrote DTSTART;TZID="W. Europe Standard Time:20200609T090000" (quote misplaced).
    # The expander skipped the series without a word, so a sync saw a clean calendar and
    # deleted the series' occurrences that were already announced.
    items, source = fetch(httpserver, corpus("ical/exchange2010-ms-timezones.ics"),
                          utc(2020, 6, 1), link=LINK)
    assert items  # the other series is still read
    assert [p.where for p in source.problems] == [
        "test: event 040000008200E00074C5B7101A82E008000000008001F1896B63D301000000000000000"
        "0100000005D0552D848712746896D6C8E2E066560"]
    assert "DTSTART" in source.problems[0].problem
    # With an EXDATE the same series made the whole calendar fail.
    broken = (b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VEVENT\r\nUID:serie\r\n"
              b"SUMMARY:Intervisie\r\nDTSTART;TZID=\"Europe/Amsterdam:20261201T100000\"\r\n"
              b"RRULE:FREQ=WEEKLY;COUNT=5\r\nEXDATE;TZID=Europe/Amsterdam:20261208T100000\r\n"
              b"END:VEVENT\r\nBEGIN:VEVENT\r\nUID:los\r\nSUMMARY:Training\r\n"
              b"DTSTART;TZID=Europe/Amsterdam:20261210T100000\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
    items, source = fetch(httpserver, broken, utc(2026, 12, 3), link=LINK)
    assert list(items) == ["los"]
    assert [p.where for p in source.problems] == ["test: event serie"]


def test_a_broken_alarm_does_not_cost_the_events(httpserver):
    # NS International writes TRIGGER:PT-2H (RFC 5545 wants -PT2H); icalendar refuses the
    # whole file for it, although alarms are never read.
    items, source = fetch(httpserver, corpus("ical/ns-international-train.ics"),
                          utc(2023, 2, 1), link=LINK)
    assert source.problems == []
    trips = sorted(items.values(), key=lambda i: i.starts_at)
    assert [t.title for t in trips] == [
        "Trip from Utrecht to Bruxelles Central/Brussel Centraal",
        "Trip from Bruxelles Central/Brussel Centraal to Utrecht"]
    assert trips[0].starts_at == utc(2023, 2, 3, 14, 15)  # 15.15 in Brussels (CET)


@pytest.mark.parametrize("body, reason", [
    (b"<!DOCTYPE html><html><body>Agenda</body></html>", "not an iCalendar file.*HTML page"),
    (b"", "not an iCalendar file"),
    (b"BEGIN:VCALENDAR\r\nthis is not ical\r\nEND:VCALENDAR\r\n", "malformed iCalendar"),
])
def test_malformed_calendars_fail_with_a_reason(httpserver, body, reason):
    with pytest.raises(ContentError, match=reason):
        fetch(httpserver, body, utc(2026, 12, 3))


def test_truncated_calendar_fails_instead_of_importing_half(httpserver):
    whole = fixture("agenda.ics")
    with pytest.raises(ContentError, match="truncated"):
        fetch(httpserver, whole[: len(whole) // 2], utc(2026, 12, 3))


def test_html_in_descriptions_is_sanitised_not_shown_as_markup(httpserver):
    # Google Calendar writes DESCRIPTION as HTML (<br>, <a href>, &nbsp;), Outlook 12 numeric
    # entities ("Baden-W&#252\;rttemberg"): shown escaped, an editor read "&lt;a href=".
    calendar = (
        b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Google Inc//Google Calendar 70.9054//EN\r\n"
        b"BEGIN:VEVENT\r\nUID:google@platformjep.example.nl\r\nSUMMARY:Open avond\r\n"
        b"DTSTART:20261210T170000Z\r\nDTEND:20261210T190000Z\r\n"
        b"DESCRIPTION:Iedereen is welkom!<br>Meer op&nbsp;<a href=\"https://www.platformjep.ex\r\n"
        b" ample.nl/agenda\" target=\"_blank\">de agenda</a><br><br>Tot dan\r\nEND:VEVENT\r\n"
        b"BEGIN:VEVENT\r\nUID:outlook@platformjep.example.nl\r\nSUMMARY:Regio W&#252\\;rzburg\r\n"
        b"DTSTART;VALUE=DATE:20261211\r\nDESCRIPTION:Baden-W&#252\\;rttemberg\\, Bayern\r\n"
        b"END:VEVENT\r\nBEGIN:VEVENT\r\nUID:plat@platformjep.example.nl\r\nSUMMARY:Training\r\n"
        b"DTSTART:20261212T090000Z\r\nDESCRIPTION:Voor 12 < x jaar\\nen R&D-mensen\r\n"
        b"END:VEVENT\r\nEND:VCALENDAR\r\n")
    items, source = fetch(httpserver, calendar, utc(2026, 12, 3), link=LINK)
    assert source.problems == []
    google = items["google@platformjep.example.nl"].summary
    assert "&lt;" not in google and "&amp;nbsp;" not in google and "<br" in google
    assert '<a href="https://www.platformjep.example.nl/agenda">de agenda</a>' in google
    assert "Iedereen is welkom!" in google and "Tot dan" in google
    outlook = items["outlook@platformjep.example.nl"]
    assert outlook.summary == "<p>Baden-Württemberg, Bayern</p>"
    assert outlook.title == "Regio Würzburg"
    # Plain text stays plain text: its < and & are characters, not markup.
    plain = items["plat@platformjep.example.nl"].summary
    assert plain == "<p>Voor 12 &lt; x jaar en R&amp;D-mensen</p>"


def test_google_redirects_in_descriptions_link_to_their_target(httpserver):
    # Google Calendar wraps every link of a description in its click redirect (excerpt of
    # google-machbar-potsdam.ics): readers went through google.com/url, and the text part
    # printed the whole redirect.
    calendar = (
        b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Google Inc//Google Calendar 70.9054//EN\r\n"
        b"BEGIN:VEVENT\r\nUID:2o60r26f5pq7muep7htdi4r01n@google.com\r\nSUMMARY:OK Lab\r\n"
        b"DTSTART:20261210T170000Z\r\nDTEND:20261210T190000Z\r\n"
        b"DESCRIPTION:Treffen der offenen OK Lab Gruppe. Informationen auf&nbsp\\;<a h\r\n"
        b" ref=\"https://www.google.com/url?q=http%3A%2F%2Fwww.oklab-potsdam.de&amp\\;sa\r\n"
        b" =D&amp\\;usd=2&amp\\;usg=AFQjCNH4ia7HdoVhwjLJiSfSMu46bTzIxA\" target=\"_blank\">\r\n"
        b" www.oklab-potsdam.de</a><br>Zie ook <a href=\"https://www.google.com/url?q=https\r\n"
        b" %3A%2F%2Fx.example.nl%2Fa%3Fid%3D1%26utm_source%3Dcal%23deel&amp\\;sa=D&amp\\;ust\r\n"
        b" =1&amp\\;usg=AOv\">x</a>, <a href=\"https://www.google.com/url?q=https://y.exa\r\n"
        b" mple.nl/&amp\\;usg=AOv\">y</a> en <a href=\"https://google.com/url?q=https://z.e\r\n"
        b" xample.nl/&amp\\;sa=D\">z</a><br>\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
    items, source = fetch(httpserver, calendar, utc(2026, 12, 3), link=LINK)
    summary = items["2o60r26f5pq7muep7htdi4r01n@google.com"].summary
    assert '<a href="http://www.oklab-potsdam.de">' in summary
    assert '<a href="https://x.example.nl/a?id=1#deel">x</a>' in summary
    # Only Google's exact redirect form (www.google.com/url with q and sa) is unwrapped.
    assert '<a href="https://www.google.com/url?q=https://y.example.nl/&amp;usg=AOv">' in summary
    assert '<a href="https://google.com/url?q=https://z.example.nl/&amp;sa=D">' in summary


def owa_event(uid: str, tzid: str, start: str, extra: str = "") -> str:
    return (f"BEGIN:VEVENT\r\nUID:{uid}\r\nSUMMARY:{uid}\r\nURL:https://x.example.nl/{uid}\r\n"
            f'DTSTART;TZID="{tzid}":{start}\r\nDTEND;TZID="{tzid}":{start[:9]}150000\r\n'
            f"{extra}END:VEVENT\r\n")


def test_outlook_web_display_names_as_tzid_are_their_zones(httpserver):
    # Exchange/OWA writes Windows display names as TZID without any VTIMEZONE (excerpt of
    # Office-2012-owa.ics): they were read as Amsterdam time, hours off.
    calendar = (
        "BEGIN:VCALENDAR\r\nPRODID:Microsoft Exchange Server 2010\r\nVERSION:2.0\r\n"
        "X-WR-CALNAME:Fake Calendar\r\n"
        + owa_event("syd", "(GMT+10:00) Canberra, Melbourne, Sydney", "20201028T133000")
        + owa_event("ny", "(UTC-05:00) Eastern Time (US & Canada)", "20201028T133000")
        + owa_event("ams", "(UTC+01:00) Amsterdam, Berlin, Bern, Rome, Stockholm, Vienna",
                    "20201102T133000",
                    "RRULE:FREQ=WEEKLY;COUNT=3\r\nEXDATE;TZID=\"(UTC+01:00) Amsterdam, Berlin, "
                    "Bern, Rome, Stockholm, Vienna\":20201109T133000\r\n")
        + owa_event("mars", "(UTC+01:00) Olympus Mons", "20201029T133000")
        + owa_event("mars2", "(UTC+01:00) Olympus Mons", "20201030T133000")
        + "END:VCALENDAR\r\n").encode()
    items, source = fetch(httpserver, calendar, utc(2020, 10, 20))
    assert items["syd"].starts_at == utc(2020, 10, 28, 2, 30)  # AEDT, UTC+11
    assert items["ny"].starts_at == utc(2020, 10, 28, 17, 30)  # EDT until 1 November
    assert items["ny"].ends_at == utc(2020, 10, 28, 19, 0)
    assert {k: (v.starts_at, v.status) for k, v in items.items() if k.startswith("ams/")} == {
        "ams/20201102T123000Z": (utc(2020, 11, 2, 12, 30), ItemStatus.ACTIVE),
        "ams/20201109T123000Z": (utc(2020, 11, 9, 12, 30), ItemStatus.CANCELLED),
        "ams/20201116T123000Z": (utc(2020, 11, 16, 12, 30), ItemStatus.ACTIVE)}
    # What cannot be placed is not guessed: the report names the calendar and the TZID.
    assert "mars" not in items and "mars2" not in items
    assert [str(p) for p in source.problems] == [
        "test: calendar: unknown time zone '(UTC+01:00) Olympus Mons' (no VTIMEZONE, no "
        "IANA, Windows or Outlook name); 2 events skipped"]


def test_every_outlook_display_name_resolves_to_a_zone():
    from mailer.sources.windows_zones import DISPLAY_NAMES, zone_for_tzid
    for name, windows_id in DISPLAY_NAMES.items():
        assert zone_for_tzid(f"(UTC+00:00) {name}") is not None, (name, windows_id)
    assert zone_for_tzid("Eastern Standard Time").key == "America/New_York"
    assert zone_for_tzid("Europe/Brussels").key == "Europe/Brussels"
    assert zone_for_tzid("(UTC-05:00) eastern time (US &  Canada)").key == "America/New_York"
    assert zone_for_tzid("(UTC) Coordinated Universal Time").key == "Etc/UTC"
    assert zone_for_tzid("Eastern Time (US & Canada)") is None  # only the full Outlook form


def test_events_without_uid_get_a_stable_id_from_start_and_summary(httpserver):
    # Outlook Web exports have no UID (Office-2012-owa.ics); RFC 5545 requires one. Every
    # event was skipped as "without UID or SUMMARY" although each had a SUMMARY.
    calendar = (
        b"BEGIN:VCALENDAR\r\nPRODID:Microsoft Exchange Server 2010\r\nVERSION:2.0\r\n"
        b"BEGIN:VEVENT\r\nSUMMARY: TEST\r\n"
        b'DTSTART;TZID="(UTC-05:00) Eastern Time (US & Canada)":20201028T133000\r\n'
        b'DTEND;TZID="(UTC-05:00) Eastern Time (US & Canada)":20201028T150000\r\nEND:VEVENT\r\n'
        b"BEGIN:VEVENT\r\nSUMMARY: TEST2\r\n"
        b'DTSTART;TZID="(UTC-05:00) Eastern Time (US & Canada)":20201102T133000\r\n'
        b'DTEND;TZID="(UTC-05:00) Eastern Time (US & Canada)":20201102T150000\r\n'
        b"RRULE:FREQ=WEEKLY;UNTIL=20201107T000000Z;INTERVAL=1;BYDAY=TH,FR;WKST=SU\r\n"
        b"END:VEVENT\r\n"
        b"BEGIN:VEVENT\r\nSUMMARY: TEST\r\nDTSTART:20201029T133000Z\r\nEND:VEVENT\r\n"
        b"BEGIN:VEVENT\r\nUID:no-title@x.example.nl\r\nDTSTART:20201029T133000Z\r\nEND:VEVENT\r\n"
        b"BEGIN:VEVENT\r\nDTSTART:20201029T133000Z\r\nEND:VEVENT\r\n"
        b"END:VCALENDAR\r\n")
    items, source = fetch(httpserver, calendar, utc(2020, 10, 20), link=LINK)
    again, _ = fetch(httpserver, calendar, utc(2020, 10, 20), link=LINK)
    assert sorted(items) == sorted(again)  # the same ids on every fetch: offered once
    by_title = sorted((i.title, i.starts_at) for i in items.values())
    assert by_title == [("TEST", utc(2020, 10, 28, 17, 30)), ("TEST", utc(2020, 10, 29, 13, 30)),
                        ("TEST2", utc(2020, 11, 2, 18, 30)),  # DTSTART is the first one
                        ("TEST2", utc(2020, 11, 5, 18, 30)), ("TEST2", utc(2020, 11, 6, 18, 30))]
    series = {k.split("/")[0] for k, v in items.items() if v.title == "TEST2"}
    assert len(series) == 1  # the occurrences of one series share its derived id
    assert [str(p) for p in source.problems] == [
        "test: event no-title@x.example.nl: event without SUMMARY; skipped",
        "test: event 20201029T133000Z: event without UID and SUMMARY; skipped"]


def test_two_events_without_uid_with_the_same_start_and_summary_are_reported(httpserver):
    # Their derived ids would be equal: one would silently replace the other.
    event = "BEGIN:VEVENT\r\nSUMMARY:Spreekuur\r\nDTSTART:20261210T090000Z\r\n{}END:VEVENT\r\n"
    calendar = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//x//y//EN\r\n"
                + event.format("LOCATION:Utrecht\r\n") + event.format("LOCATION:Zwolle\r\n")
                + "END:VCALENDAR\r\n").encode()
    items, source = fetch(httpserver, calendar, utc(2026, 12, 3), link=LINK)
    assert [i.location for i in items.values()] == ["Utrecht"]
    assert [str(p) for p in source.problems] == [
        "test: event Spreekuur: another event without UID has the same DTSTART and SUMMARY; "
        "skipped"]


def calendar_in_zone(zone: str) -> bytes:
    """A calendar whose floating times mean the zone X-WR-TIMEZONE names (as Google, Apple
    and Outlook exports write it): a single event, a weekly series, a UTC series, one
    with its own TZID and an all-day one."""
    event = ("BEGIN:VEVENT\r\nUID:{0}\r\nSUMMARY:{0}\r\nURL:https://x.example.nl/{0}\r\n{1}"
             "END:VEVENT\r\n")
    return ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//x//y//EN\r\n"
            f"X-WR-CALNAME:Spreekuren\r\nX-WR-TIMEZONE:{zone}\r\n"
            + event.format("los", "DTSTART:20261210T093000\r\nDTEND:20261210T110000\r\n")
            + event.format("wekelijks", "DTSTART:20261207T190000\r\nDTEND:20261207T200000\r\n"
                                        "RRULE:FREQ=WEEKLY;COUNT=2\r\n")
            + event.format("utc-reeks", "DTSTART:20261208T120000Z\r\n"
                                        "RRULE:FREQ=WEEKLY;COUNT=2\r\n")
            + event.format("eigen-zone", "DTSTART;TZID=Europe/Amsterdam:20261211T100000\r\n")
            + event.format("utc", "DTSTART:20261211T150000Z\r\n")
            + event.format("hele-dag", "DTSTART;VALUE=DATE:20261212\r\n")
            + "END:VCALENDAR\r\n").encode()


@pytest.mark.parametrize("zone", ["Europe/London", "GMT Standard Time",
                                  "(UTC+00:00) Dublin, Edinburgh, Lisbon, London"])
def test_x_wr_timezone_is_resolved_like_a_tzid(httpserver, zone):
    # Outlook writes Windows names where Google and Apple write IANA ones: the calendar's
    # zone goes through the same table as a TZID (the expander cannot read such names and
    # failed the whole calendar).
    items, source = fetch(httpserver, calendar_in_zone(zone), utc(2026, 12, 3))
    assert source.problems == []
    starts = {k: v.starts_at for k, v in items.items()}
    assert starts == {
        "los": utc(2026, 12, 10, 9, 30),  # London time, not Amsterdam
        "wekelijks/20261207T190000Z": utc(2026, 12, 7, 19),
        "wekelijks/20261214T190000Z": utc(2026, 12, 14, 19),
        "utc-reeks/20261208T120000Z": utc(2026, 12, 8, 12),
        "utc-reeks/20261215T120000Z": utc(2026, 12, 15, 12),
        "eigen-zone": utc(2026, 12, 11, 9), "utc": utc(2026, 12, 11, 15),
        "hele-dag": utc(2026, 12, 11, 23)}
    assert items["los"].ends_at == utc(2026, 12, 10, 11)


def test_an_unknown_x_wr_timezone_is_reported_not_read_as_amsterdam_time(httpserver):
    items, source = fetch(httpserver, calendar_in_zone("Olympus Mons Time"), utc(2026, 12, 3))
    # Times that need the calendar's zone (floating ones, and a UTC series, which repeats
    # at the same local time) are not guessed; the others are exact without it.
    assert sorted(items) == ["eigen-zone", "hele-dag", "utc"]
    assert [str(p) for p in source.problems] == [
        "test: calendar: unknown time zone 'Olympus Mons Time' in X-WR-TIMEZONE (no IANA, "
        "Windows or Outlook name); 3 events skipped"]


def test_lastfm_descriptions_lose_the_events_own_link_at_the_end(httpserver):
    # Last.fm ends every description with a line holding the event's own URL, which the
    # mail links already: shown as text it was a 90-character URL under each concert.
    items, _ = fetch(httpserver, corpus("ical/lastfm-events-floating.ics"), utc(2010, 2, 1))
    fink = items["LFMEVENT-1319333"]
    assert fink.url == "http://www.last.fm/event/1319333+Fink+at+Burgerweeshuis+on+13+February+2010"
    assert fink.summary == "<p>Fink</p>"
    assert not any("last.fm" in i.summary for i in items.values())


def test_meetup_details_line_with_the_events_own_link_is_dropped(httpserver):
    items, _ = fetch(httpserver, corpus("ical/meetup-going.ics"), utc(2011, 11, 1))
    meetup = items["event_nsmxnyppbfc@meetup.com"]
    assert meetup.url == "http://www.meetup.com/Phoenix-Drupal-User-Group/events/33627272/"
    assert "Details" not in meetup.summary and "meetup.com" not in meetup.summary
    assert meetup.summary.startswith("<p>Phoenix Drupal User Group")
    assert "(OKED) Knowledge..." in meetup.summary


def test_a_link_at_the_end_that_points_elsewhere_stays(httpserver):
    calendar = (
        b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Meetup//RemoteApi//EN\r\n"
        b"BEGIN:VEVENT\r\nUID:elders@platformjep.example.nl\r\nSUMMARY:Open avond\r\n"
        b"URL:https://www.platformjep.example.nl/agenda/open-avond/\r\n"
        b"DTSTART:20261210T170000Z\r\nDTEND:20261210T190000Z\r\n"
        b"DESCRIPTION:Iedereen is welkom.\\n\\nAanmelden: https://forms.example.org/open\r\n"
        b"END:VEVENT\r\nBEGIN:VEVENT\r\nUID:eigen@platformjep.example.nl\r\nSUMMARY:Training\r\n"
        b"URL:https://www.platformjep.example.nl/agenda/training/\r\n"
        b"DTSTART:20261211T170000Z\r\nDTEND:20261211T190000Z\r\n"
        b"DESCRIPTION:Zie ook https://www.platformjep.example.nl/agenda/training\\n\\nMeer inf\r\n"
        b" o: https://www.platformjep.example.nl/agenda/training?utm_source=ical\r\n"
        b"END:VEVENT\r\nEND:VCALENDAR\r\n")
    items, _ = fetch(httpserver, calendar, utc(2026, 12, 3))
    elsewhere = items["elders@platformjep.example.nl"].summary
    assert elsewhere == ("<p>Iedereen is welkom.</p><p>Aanmelden: https://forms.example.org/open"
                         "</p>")
    # The own link (compared as the ledger compares URLs) goes only as a line of its own.
    own = items["eigen@platformjep.example.nl"].summary
    assert own == "<p>Zie ook https://www.platformjep.example.nl/agenda/training</p>"


def test_an_html_details_line_linking_the_event_itself_is_dropped(httpserver):
    # Google Calendar and Meetup's HTML exports write the same line as a link.
    calendar = (
        b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Google Inc//Google Calendar 70.9054//EN\r\n"
        b"BEGIN:VEVENT\r\nUID:html@platformjep.example.nl\r\nSUMMARY:Open avond\r\n"
        b"URL:https://www.platformjep.example.nl/agenda/open-avond/\r\n"
        b"DTSTART:20261210T170000Z\r\nDTEND:20261210T190000Z\r\n"
        b"DESCRIPTION:Iedereen is welkom.<br><br>Details: <a href=\"https://www.platformjep.e\r\n"
        b" xample.nl/agenda/open-avond/\">https://www.platformjep.example.nl/agenda/open-av\r\n"
        b" ond/</a>\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
    items, _ = fetch(httpserver, calendar, utc(2026, 12, 3))
    assert items["html@platformjep.example.nl"].summary == "Iedereen is welkom."


def test_a_description_does_not_start_with_a_leftover_separator(httpserver):
    # officeholidays.com (Outlook 12 export, outlook12-germany-holidays.ics in the shared
    # corpus) writes " . New Years Day is ...": the part before its separator is empty.
    calendar = (
        b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Microsoft Corporation//Outlook 12.0 "
        b"MIMEDIR//EN\r\nBEGIN:VEVENT\r\nUID:7\r\nSUMMARY;LANGUAGE=en-us:Germany: New Years Day\r\n"
        b"DESCRIPTION: . New Years Day is a public holiday in all countries that observe the "
        b"Gregorian calendar\\, with the exception of Israel\\n\\nInformation provided by www.off"
        b"iceholidays.com\r\nURL:http://www.officeholidays.com/countries/global/new_years_day.php"
        b"\r\nDTSTART;VALUE=DATE:20270101\r\nDTEND;VALUE=DATE:20270102\r\nEND:VEVENT\r\n"
        b"END:VCALENDAR\r\n")
    items, _ = fetch(httpserver, calendar, utc(2026, 12, 3))
    assert items["7"].summary.startswith("<p>New Years Day is a public holiday")


EASTER_MONDAY = (
    b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Microsoft Corporation//Outlook 12.0 "
    b"MIMEDIR//EN\r\nBEGIN:VEVENT\r\nUID:8\r\nSUMMARY;LANGUAGE=en-us:Germany: Easter Monday\r\n"
    b"DESCRIPTION:Monday after Easter Sunday. Easter  is probably the most important holiday"
    b" of the Christian year\\, celebrating the Resurrection of Jesus\\n\\nInformation provid"
    b"ed by www.officeholidays.com\r\nURL:http://www.officeholidays.com/religious/christian/e"
    b"aster_monday.php\r\nDTSTART;VALUE=DATE:20270329\r\nDTEND;VALUE=DATE:20270330\r\n"
    b"END:VEVENT\r\nEND:VCALENDAR\r\n")


def test_plain_descriptions_keep_their_paragraphs(httpserver):
    # officeholidays.com (outlook12-germany-holidays.ics in the shared corpus) separates its
    # credit line with a blank line; joined with a space it read "... the Resurrection of
    # Jesus Information provided by www.officeholidays.com".
    items, _ = fetch(httpserver, EASTER_MONDAY, utc(2027, 3, 1))
    assert items["8"].summary == (
        "<p>Monday after Easter Sunday. Easter is probably the most important holiday of the "
        "Christian year, celebrating the Resurrection of Jesus</p>"
        "<p>Information provided by www.officeholidays.com</p>")


def test_a_cut_plain_description_separates_its_paragraphs_like_html(httpserver):
    items, _ = fetch(httpserver, EASTER_MONDAY, utc(2027, 3, 1), summary_chars=170)
    summary = items["8"].summary
    assert "Resurrection of Jesus. Information provided" in summary
    assert summary.startswith("<p>Monday after") and summary.endswith("…</p>")


def test_a_moved_all_day_occurrence_keeps_its_id_when_exchange_writes_a_midnight(httpserver):
    # Exchange 2010 (exchange2010-gmt-bin-collection.ics in the shared corpus) writes the
    # RECURRENCE-ID and EXDATE of an all-day series as midnight in its zone, where the
    # series' own occurrences are dates: the moved collection got id .../20261217T000000Z,
    # so the one announced as .../20261217 looked deleted and the moved one new.
    calendar = (
        b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:Microsoft Exchange Server 2010\r\n"
        b"BEGIN:VEVENT\r\nUID:bin@platformjep.example.nl\r\nSUMMARY:Papier\r\n"
        b"RRULE:FREQ=WEEKLY;UNTIL=20270114T230000Z;INTERVAL=2;BYDAY=TH;WKST=MO\r\n"
        b"EXDATE;TZID=GMT Standard Time:20261231T000000\r\n"
        b"DTSTART;VALUE=DATE:20261203\r\nDTEND;VALUE=DATE:20261204\r\n"
        b"X-MICROSOFT-CDO-ALLDAYEVENT:TRUE\r\nEND:VEVENT\r\n"
        b"BEGIN:VEVENT\r\nUID:bin@platformjep.example.nl\r\nSUMMARY:Papier\r\n"
        b"RECURRENCE-ID;TZID=GMT Standard Time:20261217T000000\r\n"
        b"DTSTART;VALUE=DATE:20261218\r\nDTEND;VALUE=DATE:20261219\r\n"
        b"X-MICROSOFT-CDO-ALLDAYEVENT:TRUE\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
    items, source = fetch(httpserver, calendar, utc(2026, 12, 1), link=LINK)
    assert source.problems == []
    bin_ = "bin@platformjep.example.nl"
    assert {k: (v.starts_at, v.status) for k, v in items.items()} == {
        f"{bin_}/20261203": (utc(2026, 12, 2, 23), ItemStatus.ACTIVE),
        f"{bin_}/20261217": (utc(2026, 12, 17, 23), ItemStatus.ACTIVE),  # moved to the 18th
        f"{bin_}/20261231": (utc(2026, 12, 30, 23), ItemStatus.CANCELLED),
        f"{bin_}/20270114": (utc(2027, 1, 13, 23), ItemStatus.ACTIVE),
    }
    assert all(v.all_day for v in items.values())
