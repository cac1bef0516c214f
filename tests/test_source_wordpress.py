"""WordPress posts and The Events Calendar through a real local HTTP server."""

import json
from datetime import UTC, datetime

import pytest
from werkzeug import Request, Response

from mailer.errors import ContentError
from mailer.models import ItemKind, ItemStatus
from mailer.sources.http import FetchError
from tests.source_helpers import corpus, make_source

POSTS = "/wp-json/wp/v2/posts"
EVENTS = "/wp-json/tribe/events/v1/events"


def post(n: int, **extra) -> dict:
    return {"id": n, "date_gmt": f"2026-11-{1 + n % 28:02d}T09:00:00",
            "link": f"https://www.platformjep.example.nl/artikel-{n}/",
            "title": {"rendered": f"Artikel {n} &#8211; weerbaar &amp; wijs"},
            "excerpt": {"rendered": f"<p>Samenvatting {n} [&hellip;]</p>", "protected": False},
            **extra}


def paged(records: list, per_page_default: int = 10, *, totals: bool = True, links: bool = False,
          key: str | None = None):
    """A handler serving records in pages the way WordPress does."""
    def handler(request: Request) -> Response:
        page = int(request.args.get("page", 1))
        per_page = int(request.args.get("per_page", per_page_default))
        pages = max(1, -(-len(records) // per_page))
        chunk = records[(page - 1) * per_page: page * per_page]
        headers = {"X-WP-Total": str(len(records))}
        if totals:
            headers["X-WP-TotalPages"] = str(pages)
        if links and page < pages:
            args = {**request.args, "page": str(page + 1)}
            query = "&".join(f"{k}={v}" for k, v in args.items())
            headers["Link"] = f'<{request.base_url}?{query}>; rel="next"'
        body = {"events": chunk, "total": len(records), "total_pages": pages} if key else chunk
        return Response(json.dumps(body), headers=headers, content_type="application/json")
    return handler


def site(httpserver) -> str:
    return httpserver.url_for("/").rstrip("/")


def test_real_posts_with_embedded_media_alt_text_and_terms(httpserver):
    body = corpus("wordpress/wp-v2-posts-embed-demo-worona-category7.json")
    httpserver.expect_request(POSTS).respond_with_data(
        body, content_type="application/json", headers={"X-WP-TotalPages": "1"})
    source = make_source("wordpress", site(httpserver), topics={"nature": "sociaal-domein"})
    items = {i.source_id: i for i in source.fetch()}
    assert len(items) == 5 and source.complete and source.problems == []
    garden = items["57"]
    assert garden.kind is ItemKind.MAGAZINE
    assert garden.title == "Shinjuku Gyoen National Garden"
    assert garden.url == "https://demo.worona.org/shinjuku-gyoen-national-garden/"
    assert garden.published_at == datetime(2016, 10, 25, 18, 25, 24, tzinfo=UTC)
    assert garden.image_url.endswith("japan-768x512.jpg")  # medium_large suits a mail
    assert garden.image_alt == garden.title  # alt_text "" on WordPress: the title stands in
    assert "sociaal-domein" in garden.topics  # category "Nature" -> our theme
    # alt_text "unitedarabemirates" for UnitedArabEmirates.jpg is the file's name, no
    # description (WCAG failure F30): screen readers read the title instead.
    assert items["33"].image_alt == "The Al Hajar Mountains"
    assert items["36"].image_alt == "Banff National Park"  # "canada" for Canada.jpg
    request = httpserver.log[0][0]
    assert request.args["_embed"] and request.args["per_page"] == "100"


def test_posts_without_featured_media_have_no_image(httpserver):
    body = corpus("wordpress/wp-v2-posts-embed-frontity-test.json")
    httpserver.expect_request(POSTS).respond_with_data(body, content_type="application/json")
    items = make_source("wordpress", site(httpserver)).fetch()
    assert items and any(i.image_url is None for i in items)
    assert all((i.image_url is None) == (i.image_alt is None) for i in items)


def test_pagination_by_total_pages_reads_every_page(httpserver):
    records = [post(n) for n in range(1, 251)]
    httpserver.expect_request(POSTS).respond_with_handler(paged(records))
    source = make_source("wordpress", site(httpserver))
    items = source.fetch()
    assert len(items) == 250 and source.complete
    assert [r.args["page"] for r, _ in httpserver.log] == ["1", "2", "3"]
    first = next(i for i in items if i.source_id == "1")
    assert first.title == "Artikel 1 – weerbaar & wijs"
    assert first.summary == "<p>Samenvatting 1 …</p>"  # WordPress's "[…]" cut mark


def test_pagination_by_link_header(httpserver):
    records = [post(n) for n in range(1, 26)]
    httpserver.expect_request(POSTS).respond_with_handler(paged(records, totals=False,
                                                                links=True))
    source = make_source("wordpress", site(httpserver), per_page=10)
    assert len(source.fetch()) == 25 and source.complete
    assert len(httpserver.log) == 3


def test_stopping_at_max_pages_is_not_complete(httpserver):
    httpserver.expect_request(POSTS).respond_with_handler(paged([post(n) for n in range(30)]))
    source = make_source("wordpress", site(httpserver), per_page=10, max_pages=2)
    assert len(source.fetch()) == 20 and not source.complete


def test_protected_posts_are_not_offered_and_categories_filter_is_sent(httpserver):
    # A password-protected post: subscribers would meet a password form, so it is noted in
    # the sync report and not offered; the listing is still complete (deletions work).
    secret = post(1, excerpt={"rendered": "", "protected": True},
                  content={"rendered": "", "protected": True})
    httpserver.expect_request(POSTS).respond_with_handler(paged([secret, post(2)]))
    source = make_source("wordpress", site(httpserver), categories=[7, 9])
    [item] = source.fetch()
    assert item.source_id == "2" and source.complete and source.problems == []
    assert [str(w) for w in source.warnings] == [
        "test: post 1: password-protected post; not offered"]
    assert httpserver.log[0][0].args["categories"] == "7,9"


def test_an_html_page_instead_of_json_fails(httpserver):
    httpserver.expect_request(POSTS).respond_with_data(
        "<!DOCTYPE html><html><body>Onderhoud</body></html>", content_type="text/html")
    with pytest.raises(ContentError, match="expected JSON, got an HTML page"):
        make_source("wordpress", site(httpserver)).fetch()


def test_a_failing_second_page_fails_the_whole_fetch(httpserver):
    handler = paged([post(n) for n in range(15)])

    def flaky(request: Request) -> Response:
        if request.args.get("page") == "2":
            return Response("database error", status=500)
        return handler(request)

    httpserver.expect_request(POSTS).respond_with_handler(flaky)
    with pytest.raises(FetchError, match="HTTP 500"):
        make_source("wordpress", site(httpserver), per_page=10).fetch()


def event(n: int, **extra) -> dict:
    return {"id": 100 + n, "url": f"https://www.platformjep.example.nl/agenda/event-{n}/",
            "title": f"Bijeenkomst {n} &#8211; samen sterk", "all_day": False,
            "description": "<p>Lange beschrijving</p>", "excerpt": f"<p>Kort {n}</p>",
            "start_date": "2026-12-10 13:30:00", "end_date": "2026-12-10 16:30:00",
            "utc_start_date": "2026-12-10 12:30:00", "utc_end_date": "2026-12-10 15:30:00",
            "timezone": "Europe/Amsterdam", "venue": [], "categories": [], "tags": [],
            "image": False, **extra}


def test_events_calendar_pages_venues_all_day_images_and_cancellations(httpserver):
    records = [event(n) for n in range(1, 60)]
    records[0] = event(1, venue={"venue": "Stadhuis", "city": "Zwolle"},
                       categories=[{"name": "Werkatelier", "slug": "werkatelier"}],
                       image={"url": "https://cdn.example.nl/zaal.jpg", "alt": "De zaal"})
    records[1] = event(2, all_day=True, start_date="2026-12-14 00:00:00",
                       end_date="2026-12-15 23:59:59")
    records[2] = event(3, event_status="canceled")
    httpserver.expect_request(EVENTS).respond_with_handler(paged(records, key="events"))
    source = make_source("wordpress-events", site(httpserver), event_type="training")
    items = {i.source_id: i for i in source.fetch()}
    assert len(items) == 59 and source.complete
    assert [r.args["page"] for r, _ in httpserver.log] == ["1", "2"]
    args = httpserver.log[0][0].args
    assert args["start_date"] == "2026-12-03 00:00:00" and args["per_page"] == "50"
    first = items["101"]
    assert first.kind is ItemKind.EVENT and first.title == "Bijeenkomst 1 – samen sterk"
    assert first.starts_at == datetime(2026, 12, 10, 12, 30, tzinfo=UTC)
    assert first.location == "Stadhuis, Zwolle" and first.event_type == "werkatelier"
    assert (first.image_url, first.image_alt) == ("https://cdn.example.nl/zaal.jpg", "De zaal")
    assert first.summary == "<p>Kort 1</p>"
    assert items["104"].event_type == "training"  # the source's default
    all_day = items["102"]
    assert all_day.all_day and all_day.starts_at == datetime(2026, 12, 13, 23, tzinfo=UTC)
    assert all_day.ends_at == datetime(2026, 12, 15, 23, tzinfo=UTC)
    assert items["103"].status is ItemStatus.CANCELLED
    assert source.window.start == datetime(2026, 12, 2, 23, tzinfo=UTC)


def test_events_without_start_are_problems(httpserver):
    records = [event(1), event(2, utc_start_date=None)]
    httpserver.expect_request(EVENTS).respond_with_handler(paged(records, key="events"))
    source = make_source("wordpress-events", site(httpserver))
    assert [i.source_id for i in source.fetch()] == ["101"]
    assert "without utc_start_date" in str(source.problems[0])


def test_password_protected_events_are_not_offered(httpserver):
    # The Events Calendar's REST archive hides a password-protected event's fields by
    # nulling the flags it otherwise always sends as booleans and emptying `website` (its
    # snapshot Archive_EventTest__it_should_hide_password_protected_fields, in the shared
    # corpus as tribe-events-v1-events.json): title and times stay, the page asks a password.
    hidden = {"all_day": None, "show_map": None, "show_map_link": None,
              "hide_from_listings": None, "sticky": None, "featured": None, "website": ""}
    shown = {"all_day": False, "show_map": True, "show_map_link": True,
             "hide_from_listings": False, "sticky": False, "featured": False}
    records = [event(1, **shown), event(2, **hidden, description="", excerpt=""),
               event(3, **{**shown, "all_day": None})]  # one null flag: an old or odd site, shown
    httpserver.expect_request(EVENTS).respond_with_handler(paged(records, key="events"))
    source = make_source("wordpress-events", site(httpserver))
    assert sorted(i.source_id for i in source.fetch()) == ["101", "103"]
    assert source.problems == [] and source.complete
    assert ["password-protected" in str(w) and "event 102" in str(w) for w in source.warnings] \
        == [True]


def test_shortcodes_a_site_left_unrendered_are_not_shown(httpserver):
    # A switched-off page builder leaves [vc_row] and friends in the rendered excerpt; a
    # hand-written excerpt keeps [caption]. Brackets that are punctuation stay.
    records = [
        post(1, excerpt={"rendered": '<p>[caption id="attachment_7" align="alignleft" '
                                     'width="300"]<img src="https://x.example.nl/a.jpg"> Foto: '
                                     'gemeente[/caption]Het wijkteam [sic] opent.</p>'}),
        post(2, excerpt={"rendered": "<p>[vc_row][vc_column][vc_column_text]Samen sterk in de "
                                     "wijk[/vc_column_text][/vc_column][/vc_row]</p>"}),
    ]
    httpserver.expect_request(POSTS).respond_with_handler(paged(records))
    items = {i.source_id: i for i in make_source("wordpress", site(httpserver)).fetch()}
    assert items["1"].summary == "<p>Het wijkteam [sic] opent.</p>"
    assert items["2"].summary == "<p>Samen sterk in de wijk</p>"


def test_a_featured_images_own_alt_text_is_kept(httpserver):
    media = {"source_url": "https://www.platformjep.example.nl/wp-content/uploads/IMG_2041.jpg",
             "alt_text": "Deelnemers van de training in gesprek", "media_details": {}}
    records = [post(1, _embedded={"wp:featuredmedia": [media]}),
               post(2, _embedded={"wp:featuredmedia": [{**media, "alt_text": "IMG_2041"}]})]
    httpserver.expect_request(POSTS).respond_with_handler(paged(records))
    items = {i.source_id: i for i in make_source("wordpress", site(httpserver)).fetch()}
    assert items["1"].image_alt == "Deelnemers van de training in gesprek"
    assert items["2"].image_alt == items["2"].title
