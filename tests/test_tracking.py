"""Tracking parameters: gone from the links a newsletter shows, every other part kept."""

from datetime import UTC, datetime

import pytest

from mailer.models import Item, ItemKind
from mailer.store.db import make_engine
from mailer.store.items import canonical_url, upsert_items
from mailer.tracking_params import without_tracking
from tests.source_helpers import corpus, make_source, serve


@pytest.mark.parametrize(("url", "expected"), [
    ("https://www.heise.de/meldung/x-4205274.html?wt_mc=rss.ho.beitrag.rdf",
     "https://www.heise.de/meldung/x-4205274.html"),
    ("http://www.lemonde.fr/a_5255095_5193626.html?xtor=RSS-3208",
     "http://www.lemonde.fr/a_5255095_5193626.html"),
    ("https://yro.slashdot.org/story/24/03/02/071229/x?utm_source=rss1.0mainlinkanon"
     "&utm_medium=feed", "https://yro.slashdot.org/story/24/03/02/071229/x"),
    ("https://x.example.nl/a?id=3&UTM_Campaign=nov&fbclid=F&gclid=G&mc_cid=c&mc_eid=e&p=%20b#top",
     "https://x.example.nl/a?id=3&p=%20b#top"),
    ("https://x.example.nl/a?ref=main&mc_other=1&source=rss", "https://x.example.nl/a?ref=main"
     "&mc_other=1&source=rss"),
    # Tweets embedded in WordPress posts and Guardian articles (tests/fixtures/corpora).
    ("https://twitter.com/Travel_Places_/status/911998747198009344?ref_src=twsrc%5Etfw",
     "https://twitter.com/Travel_Places_/status/911998747198009344"),
    ("https://mobile.x.com/lorde?ref_src=twsrc%5Etfw&ref_url=https%3A%2F%2Fa.nl%2F",
     "https://mobile.x.com/lorde"),
    # Elsewhere ref_src is no known tracker: a link may depend on it.
    ("https://docs.example.nl/p?ref_src=menu", "https://docs.example.nl/p?ref_src=menu"),
    ("https://x.example.nl/a?mc_tc=1&oly_enc_id=2&msclkid=3&_openstat=4&igshid=5&k=6",
     "https://x.example.nl/a?k=6"),
    ("https://x.example.nl/a?utm_source=x#deel-2", "https://x.example.nl/a#deel-2"),
    ("https://x.example.nl/a/?q=1", "https://x.example.nl/a/?q=1"),
    ("mailto:a@example.nl?subject=utm_source", "mailto:a@example.nl?subject=utm_source"),
])
def test_tracking_parameters_are_removed_and_nothing_else(url, expected):
    assert without_tracking(url) == expected


def test_duplicates_are_compared_without_the_same_parameters():
    # One list of tracking parameters serves both: a link shown without them must stay the
    # same article when the duplicate check compares it with one that has them.
    for url in ("https://x.example.nl/a?wt_mc=rss", "https://x.example.nl/a?xtor=RSS-1"):
        assert canonical_url(url) == canonical_url(without_tracking(url)) == (
            "https://x.example.nl/a")


# Parameters that choose what a page shows: comparing must keep them apart.
DIFFERENT_PAGES = [
    ("https://github.com/weerbaarnl/mailer/blob/README.md?ref=main",
     "https://github.com/weerbaarnl/mailer/blob/README.md?ref=dev"),
    ("https://gitlab.com/jep/site/-/raw/x.md?ref_type=heads&ref=main",
     "https://gitlab.com/jep/site/-/raw/x.md?ref_type=heads&ref=v2.0"),
    ("https://x.example.nl/nieuwsbrief?mc_list=wijk-oost",
     "https://x.example.nl/nieuwsbrief?mc_list=wijk-west"),
    ("https://docs.example.nl/p?ref_src=menu", "https://docs.example.nl/p?ref_src=zoek"),
]


@pytest.mark.parametrize(("one", "other"), DIFFERENT_PAGES)
def test_parameters_that_choose_the_page_keep_urls_apart(one, other):
    assert canonical_url(one) != canonical_url(other)
    assert canonical_url(one) == canonical_url(without_tracking(one))


@pytest.mark.parametrize("url", [
    "https://twitter.com/nzherald?ref_src=twsrc%5Etfw",
    "https://x.example.nl/a?id=3&mc_cid=c&mc_eid=e&_hsenc=p2&utm_term=z",
    "https://x.example.nl/a?ref=main&gclid=G",
])
def test_comparing_ignores_exactly_what_a_shown_link_loses(url):
    assert canonical_url(url) == canonical_url(without_tracking(url))


def test_two_sources_linking_two_branches_keep_both_items(db_url):
    engine = make_engine(db_url)
    now = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    for name, url in zip(("a", "b"), DIFFERENT_PAGES[0], strict=True):
        item = Item(source=name, source_id="1", kind=ItemKind.MAGAZINE, title="Leesmij",
                    url=url, published_at=now)
        with engine.begin() as conn:
            counts = upsert_items(conn, name, [item], now, complete=True)
        assert (counts.new, counts.duplicates) == (1, 0)
    engine.dispose()


def test_feed_items_and_their_summaries_show_links_without_tracking(httpserver):
    body = corpus("feeds/heise-rss090-no-dates.rdf")
    source = make_source("feed", serve(httpserver, "/feed", body, "application/rdf+xml"))
    items = source.fetch()
    assert items and not any("wt_mc" in i.url for i in items)
    rss = ('<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>JEP</title>'
           '<item><title>Een</title><link>https://x.example.nl/a?id=7&amp;utm_source=rss</link>'
           '<description><![CDATA[<p>Zie <a href="https://x.example.nl/b?xtor=RSS-1&amp;p=2#k">'
           'dit</a>.</p>]]></description></item></channel></rss>')
    source = make_source("feed", serve(httpserver, "/feed", rss.encode()))
    [item] = source.fetch()
    assert item.url == "https://x.example.nl/a?id=7"
    assert item.summary == '<p>Zie <a href="https://x.example.nl/b?p=2#k">dit</a>.</p>'
    # Without a GUID the link is the id: it stays what it was, or every such article would
    # come back as new.
    assert item.source_id == "https://x.example.nl/a?id=7&utm_source=rss"
