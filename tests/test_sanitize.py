"""Sanitising: the prebuilt nh3 Cleaners behave exactly like nh3.clean with the same options."""

import html

import nh3
import pytest

from mailer.sanitize import (
    ALLOWED_ATTRIBUTES,
    ALLOWED_TAGS,
    BLOCK,
    CLEANER,
    TEXT_ONLY,
    URL_SCHEMES,
    html_to_text,
    sanitize_html,
)
from mailer.sources.feed import parse_feed
from mailer.sources.http import Document
from tests.source_helpers import CORPORA

TRICKY = [
    "", "plain text, no markup", "a &amp; b &lt; c &gt; d &nbsp; e\u00a0f", "<p>één</p>",
    '<script>alert(1)</script><style>p{}</style><p onclick="x()">hi</p>',
    "<!-- comment --><b>bold</b><i>it</i><u>under</u>",
    '<a href="javascript:alert(1)">x</a><a href="/rel" title="t" rel="me">y</a>',
    '<a href="mailto:a@b.nl">m</a><a href="ftp://x">f</a><img src="x.jpg" alt="y">',
    "<ul><li>one<li>two</ul><table><tr><td>cell</table>", "<p>unclosed <em>em",
    "  \r\n<br/>spaces\t\r\n ", "<title>T</title><textarea><b>x</b></textarea>",
]


def corpus_fragments() -> list[str]:
    """Every title, summary and content of the corpus feeds, as feedparser reads them."""
    fragments = []
    for path in sorted((CORPORA / "feeds").iterdir()):
        parsed = parse_feed_leniently(path.read_bytes())
        for entry in parsed:
            fragments += [entry.get("title", ""), entry.get("summary", "")]
            fragments += [c.get("value", "") for c in entry.get("content", [])]
    return fragments


def parse_feed_leniently(body: bytes) -> list:
    try:
        return parse_feed(Document("https://feeds.example.nl/feed", body, {})).entries
    except Exception:  # noqa: BLE001 - the HTML pages in the corpus are no feeds
        return []


@pytest.fixture(scope="module")
def fragments() -> list[str]:
    found = corpus_fragments() + TRICKY
    assert len(found) > 200  # the corpus is really exercised
    return found


def test_prebuilt_cleaner_equals_nh3_clean_with_the_same_options(fragments):
    for fragment in fragments:
        expected = nh3.clean(fragment, tags=ALLOWED_TAGS, attributes=ALLOWED_ATTRIBUTES,
                             url_schemes=URL_SCHEMES, link_rel=None,
                             strip_comments=True).strip()
        assert CLEANER.clean(fragment).strip() == expected, fragment


def test_plain_text_cleaner_equals_nh3_clean_without_tags(fragments):
    for fragment in fragments:
        assert TEXT_ONLY.clean(fragment) == nh3.clean(fragment, tags=set()), fragment


def test_one_line_text_is_the_tag_free_text_with_blocks_apart(fragments):
    # What titles, shortened summaries and preheaders were made of before one function
    # served them all: nh3 without tags, entities decoded, white space collapsed; a block
    # tag now always leaves a space, so the reference gets one too.
    for fragment in fragments:
        spaced = BLOCK.sub(r" \g<0>", fragment)
        expected = " ".join(html.unescape(nh3.clean(spaced, tags=set())).split())
        assert html_to_text(fragment, one_line=True) == expected, fragment


@pytest.mark.parametrize("fragment, expected", [
    ("Kop &amp; <em>staart</em>", "Kop & staart"),
    ("<p>Een.</p><p>Twee.</p>", "Een. Twee."),
    # An opening block tag separates words too (the preheader teaser used to join them).
    ("Inleiding<p>Alinea</p>", "Inleiding Alinea"),
    ("<h3>Kop</h3><div>Tekst</div>", "Kop Tekst"),
    ('Zie <a href="https://x.example.nl/">het rapport</a>, of de <b>JEP</b>-training',
     "Zie het rapport, of de JEP-training"),
    ("<ul><li>Luister</li><li>Vraag</li></ul>", "Luister Vraag"),
    ("<style>p{}</style><script>x()</script>Tekst", "Tekst"),
])
def test_one_line_text_has_no_bullets_urls_or_breaks(fragment, expected):
    assert html_to_text(fragment, one_line=True) == expected


def test_sanitize_html_cuts_a_long_text_at_a_word_and_writes_no_link_targets():
    fragment = '<p>Lees <a href="https://x.example.nl/lang">het hele verhaal</a> hier.</p>'
    assert sanitize_html(fragment, max_chars=200) == fragment
    assert sanitize_html(fragment, max_chars=20) == "<p>Lees het hele…</p>"


def test_a_cut_summary_does_not_run_a_paragraph_into_the_next():
    # The Guardian's standfirst has no full stop (guardian-media-content.rss.xml): cut to
    # one paragraph it read "... a traditional Republican Those expecting that ...".
    fragment = ("<p>Even Trump's supporters did not mind that he sounded like a traditional "
                "Republican</p><p>Those expecting a remarkable address were disappointed "
                "last night.</p><ul><li>een</li><li>Twee.</li></ul><p>Drie<br>vier</p>")
    assert sanitize_html(fragment, max_chars=170) == (
        "<p>Even Trump&#x27;s supporters did not mind that he sounded like a traditional "
        "Republican. Those expecting a remarkable address were disappointed last night. een. "
        "Twee. Drie…</p>")  # list items alike; a line break does not end a sentence


@pytest.mark.parametrize("fragment, text", [
    # The text part said only "bij het secretariaat": its reader had no address, and lint
    # reported the mailto link as missing from the plain-text part.
    ('<p>Meld je aan bij <a href="mailto:aanmelden@platformjep.example.nl?subject=Training">'
     'het secretariaat</a>.</p>',
     "Meld je aan bij het secretariaat (aanmelden@platformjep.example.nl)."),
    ('<p>Mail <a href="mailto:ess@example.nl">ess@example.nl</a></p>', "Mail ess@example.nl"),
    # A link shown as its own URL is written once, a named one with its URL after it.
    ('<p>Zie <a href="https://www.platformjep.example.nl/agenda">'
     'https://www.platformjep.example.nl/agenda</a> voor meer.</p>',
     "Zie https://www.platformjep.example.nl/agenda voor meer."),
    ('<p><a href="https://www.platformjep.example.nl/agenda">agenda</a></p>',
     "agenda (https://www.platformjep.example.nl/agenda)"),
])
def test_plain_text_writes_each_link_target_once(fragment, text):
    assert html_to_text(fragment) == text


def test_plain_text_keeps_list_bullets_and_numbers():
    # Without them the steps of a list read as loose paragraphs in the text part.
    text = html_to_text("<p>Tips:</p><ul><li>Luister</li><li>Vraag door</li></ul>"
                        "<ol><li>Bespreek</li><li>Meld</li></ol>")
    assert text == "Tips:\n\n- Luister\n\n- Vraag door\n\n1. Bespreek\n\n2. Meld"


def test_a_link_around_only_an_image_is_dropped_not_left_empty():
    # kc0011-gb2312.rss.xml wraps each picture in a link: with the <img> sanitised away an
    # empty <a> stayed, invisible in HTML but a bare URL line in the plain-text part.
    fragment = ('<p>此主题相关图片如下：<br><a href="http://pic.kc0011.net/1.jpg" target="_blank">'
                '<img src="http://pic.kc0011.net/1.jpg" border="0"></a><br>'
                '<a href="https://x.example.nl/"> <strong></strong> </a>'
                '<a href="https://x.example.nl/lees">Lees</a></p>')
    cleaned = sanitize_html(fragment)
    assert cleaned == ('<p>此主题相关图片如下：<br><br> '
                       '<a href="https://x.example.nl/lees">Lees</a></p>')
    assert html_to_text(cleaned) == "此主题相关图片如下：\n\nLees (https://x.example.nl/lees)"


@pytest.mark.parametrize(("fragment", "expected"), [
    # officeholidays.com: the separator of an empty first part stays in front
    ("<p> . New Years Day is a public holiday</p>", "<p>New Years Day is a public holiday</p>"),
    ("<p><strong>, | Vandaag</strong> open</p>", "<p><strong>Vandaag</strong> open</p>"),
    ("<p>&nbsp;– Lezing</p>", "<p>Lezing</p>"),
    ("<p>.</p><p>Tekst</p>", "<p>Tekst</p>"),
    ("<br>; Tekst", "Tekst"),
    # Not debris: a word that starts with a dot, an ellipsis, a quote, a list
    ("<p>.NET 8 is uit</p>", "<p>.NET 8 is uit</p>"),
    ("<p>… en verder</p>", "<p>… en verder</p>"),
    ("<p>“Citaat” – iemand</p>", "<p>“Citaat” – iemand</p>"),
    ("<ul><li>Punt</li></ul>", "<ul><li>Punt</li></ul>"),
])
def test_a_summary_does_not_start_with_punctuation_or_space_debris(fragment, expected):
    assert sanitize_html(fragment, 400) == expected
