""""Read more" links and feed footers next to our own link to the article are dropped."""

import pytest

from mailer.sources.remote import summarize
from tests.source_helpers import corpus, make_source

OWN = "https://www.platformjep.example.nl/artikel/weerbaar/"
BLOG = "https://www.platformjep.example.nl/"


def summary(fragment: str, own: str = OWN, max_chars: int = 400) -> str:
    return summarize(fragment, max_chars, "https://www.platformjep.example.nl/feed/", own)


@pytest.mark.parametrize(("fragment", "own", "expected"), [
    # WordPress RSS (rss.com, WordPress 6.1): "[…]" and the Yoast footer
    ("<p>Apple selected us to support the initial release [&#8230;]</p>\n<p>The post <a "
     'rel="nofollow" href="https://rss.com/blog/q4-2022/">Q4 2022 Product Updates</a> appeared '
     'first on <a rel="nofollow" href="https://rss.com/blog">RSS.com</a>.</p>\n',
     "https://rss.com/blog/q4-2022/", "<p>Apple selected us to support the initial release …</p>"),
    # The same footer as Yoast writes it on a Dutch site
    (f'<p>Wat doe je bij zorgen?</p><p>Het bericht <a href="{OWN}">Weerbaar</a> verscheen eerst '
     f'op <a href="{BLOG}">Platform JEP</a>.</p>', OWN, "<p>Wat doe je bij zorgen?</p>"),
    # The Guardian: a trailing "Continue reading..." link after the paragraphs
    ("<p>Related: Fact check</p> <a href=\"https://www.theguardian.com/us-news/2018/jan/31/"
     "trump\">Continue reading...</a>", "https://www.theguardian.com/us-news/2018/jan/31/trump",
     "<p>Related: Fact check</p>"),
    # cyklistbloggen.se (WordPress 4.7, Swedish): "… Läs vidare →" inside the last sentence
    ("Vi tänkte därför lite konstruktivt visa hur vi, som amatörer på &#8230; <a href=\""
     "http://www.cyklistbloggen.se/2017/04/sa-har/\">Läs vidare <span class=\"meta-nav\">&#8594;"
     "</span></a>", "http://www.cyklistbloggen.se/2017/04/sa-har/",
     "Vi tänkte därför lite konstruktivt visa hur vi, som amatörer på …"),
    # Slashdot: "Read more of this story at Slashdot." with other tracking parameters
    ('<p>Insurance giant hit.</p><p><a href="https://yro.slashdot.org/story/24/03/02/071229/x?'
     'utm_source=rss1.0moreanon&amp;utm_medium=feed">Read more of this story</a> at Slashdot.'
     '</p><iframe src="https://slashdot.org/slashdot-it.pl?op=discuss"></iframe>',
     "https://yro.slashdot.org/story/24/03/02/071229/x", "<p>Insurance giant hit.</p>"),
    # A Dutch "Lees verder" paragraph and a bare link back
    (f'<p>Over polarisatie.</p><p><a href="{OWN}">Lees verder</a></p>', OWN,
     "<p>Over polarisatie.</p>"),
    (f'<p>Over polarisatie.</p><p><a href="{OWN}#meer">∞ Permalink</a></p>', OWN,
     "<p>Over polarisatie.</p>"),
    (f'<p>Over polarisatie [...]</p><p><a href="{OWN}">Weerbaar</a></p>', OWN,
     "<p>Over polarisatie …</p>"),
])
def test_boilerplate_is_dropped_in_any_language_seen(fragment, own, expected):
    assert summary(fragment, own) == expected


@pytest.mark.parametrize("fragment", [
    # a sentence whose last words link to the article itself is content
    f'<p>Vandaag lanceren we <a href="{OWN}">onze nieuwe website</a>.</p>',
    f'<p>Vandaag lanceren we <a href="{OWN}">onze nieuwe website</a></p>',
    # "lees verder" pointing elsewhere, in the middle of a sentence
    '<p>Twijfel je? <a href="https://www.example.nl/training">Lees verder</a> over de training.'
    "</p>",
    # a paragraph that starts like a "more" phrase but is text
    f'<p>Meer dan 3,5 miljoen kinderen lopen risico, <a href="{OWN}">meldt Unicef</a>.</p>',
    '<p>More than 3.5 million children are at risk.</p>',
    "<p>Het bericht van de burgemeester verscheen eerst op de website.</p>",
    "<p>Zie [1] en [2]</p>",
])
def test_real_content_is_kept(fragment):
    assert summary(fragment) == fragment


def test_boilerplate_goes_before_a_long_summary_is_shortened():
    words = " ".join(["woord"] * 60)
    fragment = (f"<p>{words} [&#8230;]</p><p>The post <a href=\"{OWN}\">Weerbaar</a> appeared "
                f"first on <a href=\"{BLOG}\">Platform JEP</a>.</p>")
    shortened = summary(fragment, max_chars=350)
    assert "post" not in shortened and shortened.endswith("woord…</p>")


def test_wordpress_more_link_is_dropped_from_the_excerpt(httpserver):
    body = corpus("wordpress/wp-v2-posts-embed-demo-worona-category7.json")
    httpserver.expect_request("/wp-json/wp/v2/posts").respond_with_data(
        body, content_type="application/json", headers={"X-WP-TotalPages": "1"})
    source = make_source("wordpress", httpserver.url_for("/").rstrip("/"))
    canyon = next(i for i in source.fetch() if "antelope" in i.url)
    assert "Continue reading" not in canyon.summary
    assert canyon.summary.endswith("“Antelope Canyon” …</p>")
