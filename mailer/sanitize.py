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


def sanitize_html(fragment: str, max_chars: int | None = None) -> str:
    """Reduce an HTML fragment to safe paragraphs, emphasis, lists and links."""
    cleaned = CLEANER.clean(fragment).strip()
    if max_chars and len(html_to_text(cleaned)) > max_chars:
        return f"<p>{html.escape(shorten(html_to_text(cleaned), max_chars))}</p>"
    return cleaned


def shorten(text: str, max_chars: int) -> str:
    """Cut text at a word boundary and add an ellipsis when it is too long."""
    text = " ".join(text.split())
    if len(text) <= max_chars:
        return text
    cut = text[: max_chars - 1].rsplit(" ", 1)[0].rstrip(",.;:–- ")
    return cut + "…"


class _TextCollector(HTMLParser):
    BLOCK = {"p", "br", "li", "ul", "ol", "div", "h1", "h2", "h3", "tr"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.links: list[tuple[str, int]] = []  # (href, where the link's text starts)
        self.lists: list[int] = []  # per open list: 0 for bullets, else the next number

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in self.BLOCK:
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
        if tag in self.BLOCK:
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


def html_to_text(fragment: str) -> str:
    """Plain text of an HTML fragment: paragraphs kept, links written out after their text."""
    collector = _TextCollector()
    collector.feed(fragment)
    collector.close()
    text = "".join(collector.parts)
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n|\n", text)]
    return "\n\n".join(p for p in paragraphs if p)
