"""Untrusted HTML in, a small safe subset out; and HTML fragments to plain text."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from urllib.parse import unquote

import nh3

ALLOWED_TAGS = {"p", "br", "a", "strong", "b", "em", "i", "ul", "ol", "li"}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}}
URL_SCHEMES = {"http", "https", "mailto"}
# Built once: passing the options to nh3.clean converts them to Rust sets on every call,
# which cost more than the cleaning of a typical summary. A Cleaner is immutable.
CLEANER = nh3.Cleaner(tags=ALLOWED_TAGS, attributes=ALLOWED_ATTRIBUTES, url_schemes=URL_SCHEMES,
                      link_rel=None, strip_comments=True)
TEXT_ONLY = nh3.Cleaner(tags=set())
# Block tags that sanitising keeps; they separate words, inline tags (a, em, ...) do not.
KEPT_BLOCKS = ("p", "br", "ul", "ol", "li")
# Block tags that sanitising drops while keeping their text: without a space at their place
# "<h3>Kop</h3><div>Tekst" would read "KopTekst".
DROPPED_BLOCKS = ("div", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "hr",
                  "figure", "figcaption", "table", "caption", "thead", "tbody", "tfoot", "tr",
                  "td", "th", "dl", "dt", "dd", "section", "article", "header", "footer",
                  "aside", "nav", "main", "address")
BLOCK_TAGS = frozenset(KEPT_BLOCKS + DROPPED_BLOCKS)
DROPPED_BLOCK = re.compile(rf"</?(?:{'|'.join(DROPPED_BLOCKS)})\b[^>]*>", re.IGNORECASE)
BLOCK = re.compile(rf"</?(?:{'|'.join(sorted(BLOCK_TAGS))})\b[^>]*>", re.IGNORECASE)
# Where a paragraph or list item of sanitised HTML ends or begins: flattened to one line,
# its text must not run into the next one's.
KEPT_BLOCK = re.compile(rf"</?(?:{'|'.join(KEPT_BLOCKS)})\b[^>]*>", re.IGNORECASE)
# What a producer leaves in front of the first word: white space, breaks, and a separator
# whose left part was empty (officeholidays.com writes " . New Years Day is ..."). A mark
# counts only followed by a space or the end of its block: ".NET" and "…" are words.
DEBRIS = r"(?:\s|&nbsp;|<br>|[.,;:|·•–—-](?=\s|&nbsp;|<|$))+"
LEADING_DEBRIS = re.compile(rf"^((?:<(?:p|ul|ol|li|strong|b|em|i)>)*){DEBRIS}")
LEADING_EMPTY_BLOCK = re.compile(r"^(?:<(p|li)>\s*</\1>\s*)+")
PLAIN_DEBRIS = re.compile(rf"^{DEBRIS}")
# A link with no text once sanitised (its <img> dropped): invisible in HTML, but the text
# part would write its URL on a line of its own. Sanitised HTML has only these inline tags.
EMPTY_LINK = re.compile(r"<a\b[^>]*>((?:\s|&nbsp;|<br>|</?(?:strong|b|em|i)>)*)</a>")


def sanitize_html(fragment: str, max_chars: int | None = None) -> str:
    """Reduce an HTML fragment to safe paragraphs, emphasis, lists and links.

    With max_chars, a fragment whose text is longer becomes one paragraph of plain text,
    cut at a word boundary."""
    cleaned = CLEANER.clean(fragment).strip()
    if "</a>" in cleaned:
        cleaned = EMPTY_LINK.sub(_empty_link_space, cleaned)
    return fit_summary(without_leading_debris(cleaned), max_chars)


def without_leading_debris(cleaned: str) -> str:
    """Sanitised HTML without white space, breaks or stray separators before its first word."""
    for _ in range(3):  # "<p>.</p><p> | Tekst": debris, an emptied block, debris again
        trimmed = LEADING_EMPTY_BLOCK.sub("", LEADING_DEBRIS.sub(r"\1", cleaned, count=1))
        if trimmed == cleaned:
            break
        cleaned = trimmed
    return cleaned


def plain_without_leading_debris(text: str) -> str:
    """Plain text without white space or stray separators before its first word."""
    return PLAIN_DEBRIS.sub("", text, count=1)


def fit_summary(cleaned: str, max_chars: int | None) -> str:
    """Sanitised HTML as it is, or when its text is longer than max_chars, one paragraph of
    plain text cut at a word boundary."""
    # Text is never longer than its HTML: only a long fragment needs flattening to measure.
    if max_chars and len(cleaned) > max_chars:
        text = _flat_text(cleaned, max_chars)
        if len(text) > max_chars:
            return f"<p>{html.escape(shorten(text, max_chars))}</p>"
    return cleaned


def _flat_text(cleaned: str, max_chars: int) -> str:
    """The one-line text of sanitised HTML (as far as it goes past max_chars), a full stop
    between a block that ends without punctuation and one that starts a sentence: a
    standfirst without full stop otherwise reads "... a traditional Republican Those ..."."""
    text = ""
    for block in KEPT_BLOCK.split(cleaned):
        if len(text) > max_chars:
            break
        part = html_to_text(block, one_line=True)
        if not part:
            continue
        if text and text[-1].isalnum() and part[0].isupper():
            text += "."
        text = f"{text} {part}" if text else part
    return text


def _empty_link_space(match: re.Match) -> str:
    """What stays of an empty link: a space where it held one, so words stay apart."""
    return " " if match.group(1).strip() != match.group(1) or "&nbsp;" in match.group(1) else ""


def shorten(text: str, max_chars: int) -> str:
    """Cut text at a word boundary and add an ellipsis when it is too long."""
    text = " ".join(text.split())
    if len(text) <= max_chars:
        return text
    cut = text[: max_chars - 1].rsplit(" ", 1)[0].rstrip(",.;:–- ")
    return cut + "…"


class _TextCollector(HTMLParser):
    """The text part's reading of HTML: blocks on lines of their own, bullets, link targets."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.links: list[tuple[str, int]] = []  # (href, where the link's text starts)
        self.lists: list[int] = []  # per open list: 0 for bullets, else the next number

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in BLOCK_TAGS:
            self.parts.append("\n")
        if tag in ("ul", "ol"):
            self.lists.append(1 if tag == "ol" else 0)
        elif tag == "li" and self.lists:
            number = self.lists[-1]
            self.parts.append(f"{number}. " if number else "- ")
            self.lists[-1] = number + 1 if number else 0
        if tag == "a":
            self.links.append((dict(attrs).get("href") or "", len(self.parts)))

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self.links:
            href, start = self.links.pop()
            target = _link_target(href)
            if target and target not in "".join(self.parts[start:]):  # not twice
                self.parts.append(f" ({target})")
        if tag in ("ul", "ol") and self.lists:
            self.lists.pop()
        if tag in BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def _link_target(href: str) -> str:
    """What the text part writes out for a link: its URL, or a mail link's address."""
    if href.startswith(("http://", "https://")):
        return href
    if href.lower().startswith("mailto:"):
        return unquote(href[len("mailto:"):].split("?", 1)[0])
    return ""


def html_to_text(fragment: str, *, one_line: bool = False) -> str:
    """Plain text of an HTML fragment, entities decoded.

    By default as the text part of a newsletter reads it: paragraphs and list items on
    lines of their own, list items with "- " or "1. ", links written out after their text.
    With one_line, as a title, summary or preheader reads it: tags and the content of
    script and style dropped, blocks separated by a space, white space collapsed.
    """
    if one_line:
        return _one_line_text(fragment)
    collector = _TextCollector()
    collector.feed(fragment)
    collector.close()
    text = "".join(collector.parts)
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n|\n", text)]
    return "\n\n".join(p for p in paragraphs if p)


def _one_line_text(fragment: str) -> str:
    """The one-line text of html_to_text; plain text (a common title) costs one split."""
    if "<" in fragment:
        fragment = TEXT_ONLY.clean(BLOCK.sub(r" \g<0>", fragment))
    return " ".join((html.unescape(fragment) if "&" in fragment else fragment).split())
