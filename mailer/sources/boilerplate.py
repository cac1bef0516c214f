""""Read more" links and feed footers at the end of a summary, which our own link repeats.

Blogs end an excerpt with a link back to the article ("Continue reading…", "Lees verder",
"Läs vidare →", Slashdot's "Read more of this story"), WordPress marks the cut with "[…]",
and Yoast SEO adds "The post X appeared first on Y." to every feed item. The newsletter
links each item itself, so these only cost space and print as extra URLs in the text part.
Only the end of a summary is looked at, and only what is plainly such boilerplate goes: a
sentence that ends in a link to the article itself is content and stays. Plain-text event
descriptions (Last.fm, Meetup) end the same way, with a line holding the event's own URL.
"""

from __future__ import annotations

import html
import re

from mailer.sanitize import html_to_text
from mailer.store.items import canonical_url

# Phrases of a "read more" link, as WordPress themes and feeds write them in the languages
# of the corpus (en, nl, de, fr, sv, pt) and a few neighbours.
READ_MORE = (r"(?:continue reading|read more|read the rest|keep reading|read on|"
             r"lees verder|lees meer|verder lezen|meer lezen|lees het (?:hele|volledige) "
             r"(?:artikel|bericht)|weiterlesen|mehr lesen|lire la suite|la suite|"
             r"läs vidare|läs mer|fortsätt läsa|leia mais|continue lendo|leer más|"
             r"seguir leyendo|continua a leggere)")
MARKS = r"[\s.…:!|»›>→–—-]*"
READ_MORE_START = re.compile(rf"^{MARKS}{READ_MORE}\b", re.IGNORECASE)
READ_MORE_ONLY = re.compile(rf"^{MARKS}{READ_MORE}{MARKS}$", re.IGNORECASE)
# What may stand before a link to the item itself on a line of its own: "Details:", "Meer info:".
LINK_LABEL = re.compile(r"^\s*[^\W\d][\w ]{0,29}:\s*$")
ONLY_MARKS = re.compile(rf"^(?:{MARKS}|[∞#¶]|permalink|\W)*$", re.IGNORECASE)
# Yoast SEO's feed footer "The post %%POSTLINK%% appeared first on %%BLOGLINK%%." in its
# translations; a paragraph counts only when it also links to the item.
FOOTER = re.compile(
    r"^(?:the post|het bericht|der beitrag|l[’']article|inlägget|o post|la entrada|il post)\b"
    r".+\b(?:appeared first on|verscheen eerst op|erschien zuerst auf|"
    r"est apparu en premier sur|dök först upp på|apareceu primeiro em|"
    r"se publicó primero en|apparve prima su)\b", re.IGNORECASE)
LAST_PARAGRAPH = re.compile(r"<p>((?:(?!<p>).)*)</p>\s*$", re.DOTALL)
AFTER_BLOCKS = re.compile(r"(?:</p>|</ul>|</ol>|<br>)((?:(?!</p>|</ul>|</ol>|<br>).)*)$",
                          re.DOTALL)
LAST_LINK = re.compile(r'<a href="([^"]*)"[^>]*>((?:(?!<a\b).)*?)</a>(\s*(?:</p>\s*)?)$',
                       re.DOTALL)
LINK = re.compile(r'<a href="([^"]*)"[^>]*>(.*?)</a>', re.DOTALL)
CUT_MARK = re.compile(r"\s*\[\s*(?:…|\.\.\.|&hellip;)\s*\](\s*(?:</p>\s*)?)$")
# A plain-text line that is only a URL, or a short label and a URL: Meetup's "Details: <url>",
# Last.fm's bare link line.
LINK_LINE = re.compile(r"(?:[^\s:][^:]{0,30}:\s*)?(https?://\S+?)[.,;]?")
TRAILING_BREAKS = re.compile(r"(?:\s*<br>)+$")  # what separated the dropped line
MAX_ROUNDS = 4  # a footer, then a "read more", then "[…]": each round takes one
TAIL_CHARS = 1200


def drop_boilerplate(fragment: str, own_url: str | None) -> str:
    """Sanitised summary HTML without trailing "read more" links, feed footers and "[…]"."""
    own = canonical_url(own_url) if own_url else None
    for _ in range(MAX_ROUNDS):
        shorter = _drop_last(fragment.rstrip(), own)
        if shorter is None:
            break
        fragment = TRAILING_BREAKS.sub("", shorter.rstrip())
    return fragment.rstrip()


def drop_own_link_lines(lines: list[str], own_url: str | None) -> list[str]:
    """Plain-text lines without the trailing ones that only give the item's own URL (blank
    lines between them go too)."""
    own = canonical_url(own_url) if own_url else None
    while own and lines:
        if not lines[-1].strip():
            lines = lines[:-1]
            continue
        line = LINK_LINE.fullmatch(lines[-1])
        if line is None or canonical_url(line.group(1)) != own:
            break
        lines = lines[:-1]
    return lines


def _drop_last(fragment: str, own: str | None) -> str | None:
    """The fragment without its last piece of boilerplate, or None when it ends in content."""
    # Boilerplate is short: only the end is searched, so a long summary costs no more.
    start = max(0, len(fragment) - TAIL_CHARS)
    head, tail = fragment[:start], fragment[start:]
    last = LAST_PARAGRAPH.search(tail) or _loose_tail(tail)
    if last is not None and last.group(1).strip() and _is_boilerplate(last.group(1), own):
        return head + tail[:last.start()]
    link = LAST_LINK.search(tail) if tail.endswith(("</a>", "</p>")) else None
    if link is not None and _is_read_more_link(link, own):
        return head + tail[:link.start()].rstrip() + link.group(3)
    cut = CUT_MARK.search(tail) if "]" in tail[-12:] else None
    if cut is not None:
        return head + tail[:cut.start()] + " …" + cut.group(1)
    return None


def _loose_tail(fragment: str) -> re.Match | None:
    """What follows the last block (the Guardian's "Continue reading" after its <p>s)."""
    tail = AFTER_BLOCKS.search(fragment)
    if tail is None:
        return None
    return re.compile(r"(.*)$", re.DOTALL).match(fragment, tail.start(1))


def _is_boilerplate(block: str, own: str | None) -> bool:
    """A paragraph that is a feed footer, a "read more" or only a link back to the item
    (maybe with a label such as "Details:")."""
    text = html_to_text(block, one_line=True)
    links = LINK.findall(block)
    to_own = [href for href, _ in links if own and _same_page(href, own)]
    if not links:
        return READ_MORE_ONLY.match(text) is not None
    if to_own and FOOTER.match(text):
        return True
    if len(to_own) != len(links):
        return False
    outside = html_to_text(LINK.sub(" ", block), one_line=True)
    if ONLY_MARKS.match(outside) or LINK_LABEL.match(outside):
        return True
    return READ_MORE_START.match(text) is not None and len(text.split()) <= 8


def _is_read_more_link(link: re.Match, own: str | None) -> bool:
    """A trailing link saying "read more": to the item itself, or in so many words."""
    text = html_to_text(link.group(2), one_line=True)
    if own and _same_page(link.group(1), own):
        return READ_MORE_START.match(text) is not None or ONLY_MARKS.match(text) is not None
    return READ_MORE_ONLY.match(text) is not None


def _same_page(href: str, own: str) -> bool:
    return canonical_url(html.unescape(href)) == own
