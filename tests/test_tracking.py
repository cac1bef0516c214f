"""Tracking parameters: gone from the links a newsletter shows, every other part kept."""

import pytest

from mailer.store.items import canonical_url
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
