"""Why a source could not be read, as the editors read it: Dutch, the configured location,
what to do; the technical line (API URL, parser message) stays for the operators."""

import json

import pytest

from mailer.sources.failures import editor_reason
from tests.source_helpers import corpus, fixture, hanging_url, make_source, unused_port_url

POSTS = "/wp-json/wp/v2/posts"
EVENTS = "/wp-json/tribe/events/v1/events"


def failure_of(source) -> tuple[str, str]:
    """The Dutch reason and the technical message of a source whose fetch fails."""
    with pytest.raises(Exception) as caught:  # noqa: PT011 - any failure; its wording is tested
        list(source.fetch())
    return editor_reason(caught.value, source.config), str(caught.value)


def served(httpserver, path: str, body: bytes | str, content_type: str, status: int = 200) -> str:
    httpserver.expect_request(path).respond_with_data(body, status=status,
                                                      content_type=content_type)
    return httpserver.url_for(path)


def assert_for_editors(reason: str) -> None:
    """No English library text, no code or document locations, one line."""
    for technical in ("Errno", "<unknown>", "expected", "got dict", "Traceback", ".py", "\n"):
        assert technical not in reason


def test_a_refused_connection_says_so_and_names_the_location():
    location = unused_port_url("/feed")
    reason, technical = failure_of(make_source("feed", location))
    assert reason.startswith("verbinding geweigerd") and location in reason
    assert "Controleer de URL" in reason
    assert "Connection refused" in technical  # the detail stays for the operators
    assert_for_editors(reason)


def test_a_server_that_hangs_is_a_time_out(httpserver):
    with hanging_url(httpserver, "/slow") as location:
        reason, _ = failure_of(make_source("feed", location, timeout=0.3))
    assert reason.startswith("time-out:") and "0,3 seconden" in reason
    assert_for_editors(reason)


@pytest.mark.parametrize("status, words", [
    (404, "HTTP 404 (niet gevonden)"),
    (410, "HTTP 410 (niet gevonden)"),
    (403, "HTTP 403 (geen toegang)"),
    (500, "HTTP 500 (fout op de server)"),
    (503, "HTTP 503 (fout op de server)"),
    (418, "HTTP 418 van de server"),
])
def test_http_errors_say_what_the_status_means(httpserver, status, words):
    location = served(httpserver, "/agenda.ics", "nee", "text/plain", status)
    reason, _ = failure_of(make_source("ical", location))
    assert reason.startswith(words) and location in reason
    assert_for_editors(reason)


def test_an_html_page_instead_of_a_feed_names_the_feed_the_page_points_to(httpserver):
    location = served(httpserver, "/", corpus("feeds/broken-daringfireball-homepage.html"),
                      "text/html")
    reason, _ = failure_of(make_source("feed", location))
    assert reason.startswith("geen geldige feed maar een HTML-pagina")
    assert "de pagina noemt zelf een feed: http://127.0.0.1" in reason
    assert_for_editors(reason)


def test_a_truncated_feed_is_an_afgebroken_feed_without_parser_positions(httpserver):
    whole = corpus("feeds/wordpress-4.7-natashatherobot.rss.xml")
    location = served(httpserver, "/feed", whole[: len(whole) // 2], "application/rss+xml")
    reason, technical = failure_of(make_source("feed", location))
    assert reason.startswith("afgebroken feed:") and location in reason
    assert "<unknown>:" in technical
    assert_for_editors(reason)


@pytest.mark.parametrize("body, words", [
    (b"<!DOCTYPE html><html><body>Agenda</body></html>",
     "geen geldige agenda maar een HTML-pagina"),
    (b"Hallo", "geen agenda (iCalendar, .ics)"),
    (b"BEGIN:VCALENDAR\r\nthis is not ical\r\nEND:VCALENDAR\r\n", "ongeldige agenda:"),
    (fixture("agenda.ics")[:300], "afgebroken agenda:"),
])
def test_calendar_failures(httpserver, body, words):
    location = served(httpserver, "/agenda.ics", body, "text/calendar")
    reason, _ = failure_of(make_source("ical", location))
    assert reason.startswith(words) and location in reason
    assert_for_editors(reason)


def test_one_post_instead_of_a_list_names_the_configured_site_not_the_api_url(httpserver):
    served(httpserver, POSTS, corpus("wordpress/wp-v2-post-60-embed-demo-worona.json"),
           "application/json")
    site = httpserver.url_for("/")
    reason, technical = failure_of(make_source("wordpress", site))
    assert reason.startswith("verwachtte een lijst berichten, kreeg één bericht")
    assert site in reason and "wp-json" not in reason and "per_page" not in reason
    assert POSTS in technical and "page=1" in technical  # the operators' detail
    assert_for_editors(reason)


def test_an_api_error_object_is_quoted(httpserver):
    served(httpserver, POSTS, json.dumps({"code": "rest_no_route", "message":
                                          "No route was found matching the URL"}),
           "application/json", 200)
    reason, _ = failure_of(make_source("wordpress", httpserver.url_for("/")))
    assert reason.startswith("de WordPress-API gaf een foutmelding in plaats van berichten")
    assert "No route was found" in reason
    assert_for_editors(reason)


def test_a_failing_events_api_names_the_configured_site_and_the_plugin(httpserver):
    served(httpserver, EVENTS, "niet hier", "text/plain", 404)
    site = httpserver.url_for("/")
    reason, technical = failure_of(make_source("wordpress-events", site))
    assert reason.startswith("HTTP 404 (niet gevonden)") and site in reason
    assert "The Events Calendar" in reason
    assert "start_date" not in reason and "tribe" not in reason
    assert "start_date=" in technical


def test_an_html_page_instead_of_json(httpserver):
    served(httpserver, POSTS, "<!DOCTYPE html><html><body>Onderhoud</body></html>", "text/html")
    reason, _ = failure_of(make_source("wordpress", httpserver.url_for("/")))
    assert reason.startswith("geen antwoord van de WordPress-API maar een HTML-pagina")
    assert_for_editors(reason)


def test_a_missing_file_and_a_missing_folder(tmp_path):
    missing = (tmp_path / "weg.ics").as_uri()
    reason, _ = failure_of(make_source("ical", missing))
    assert reason == f"het bestand {missing} bestaat niet. Controleer de locatie in sources.toml."
    folder = make_source("markdown", str(tmp_path / "geen-map"))
    reason, _ = failure_of(folder)
    assert reason.startswith("de map ") and "bestaat niet" in reason


def test_an_unexpected_error_points_to_the_operator():
    source = make_source("feed", "https://www.platformjep.example.nl/feed")
    reason = editor_reason(TypeError("'NoneType' object is not subscriptable"), source.config)
    assert reason.startswith("onverwachte fout bij het lezen van "
                             "https://www.platformjep.example.nl/feed")
    assert "NoneType" not in reason
