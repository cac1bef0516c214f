"""RSS 0.9x/1.0/2.0 and Atom 0.3/1.0 feeds, read with feedparser, into magazine items.

A feed shows only its latest entries, so a fetch never proves that an older article is
gone. It does prove it for the span the feed still covers: an article missing from the
feed but newer than the oldest entry in it was taken down (see `window`).
"""

from __future__ import annotations

import calendar
import html
import re
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import urljoin, urlsplit

import feedparser

from mailer.clock import AMSTERDAM
from mailer.errors import ContentError, Failure
from mailer.models import Item, ItemKind
from mailer.sanitize import html_to_text
from mailer.sources import Window, register
from mailer.sources.http import Document
from mailer.sources.plain_feed import read_plain_feed
from mailer.sources.protected_posts import PROTECTED, is_protected_post
from mailer.sources.remote import RemoteSource, resolve, summarize

ACCEPT = ("application/rss+xml, application/atom+xml, application/rdf+xml;q=0.9, "
          "application/xml;q=0.8, text/xml;q=0.8, */*;q=0.1")
CLOSING_ROOT = re.compile(rb"</(?:rss|feed|(?:\w+:)?RDF)\s*>")
IMG = re.compile(r"<img\b[^>]*>", re.IGNORECASE)
ATTR = re.compile(r"""\b(src|alt|width|height|class)\s*=\s*(?:"([^"]*)"|'([^']*)')""",
                  re.IGNORECASE)
FEED_LINK = re.compile(
    r"""<link\b[^>]*type=["']application/(?:rss|atom)\+xml["'][^>]*>""", re.IGNORECASE)
IMAGE_FILE = re.compile(r"\.(?:jpe?g|png|gif|webp)$", re.IGNORECASE)
# Images feeds carry that are no picture of the article: author avatars (Gravatar, GitHub,
# WordPress), FeedBurner share buttons and click pixels (/~f/, /~ff/, /~r/), WordPress.com
# share buttons, stats pixels and smileys, and icons.
DECORATION_URL = re.compile(
    r"^https?://(?:[^/]*\bgravatar\.com/|avatars?\d*\.|[^/]*\.wp\.com/(?:b\.gif|wp-content/mu-"
    r"plugins/wpcom-smileys/)|pixel\.wp\.com/|stats\.wordpress\.com/|feeds\.wordpress\.com/|"
    r"s\.w\.org/images/core/emoji/)"
    r"|/~(?:f|ff|r|a|at)/|/avatars?/|[/_.-]icons?[_.-][^/]*$",
    re.IGNORECASE)
DECORATION_CLASS = re.compile(r"\b(?:avatar|wp-smiley|emoji)\b", re.IGNORECASE)
HARMLESS = (feedparser.CharacterEncodingOverride, feedparser.NonXMLContentType)
# "2020/1/10 14:33:00" as forum and CMS generators write it; feedparser's ISO 8601 handler
# takes it for 1 November 2020.
SLASH_DATE = re.compile(r"\s*(\d{4})/(\d{1,2})/(\d{1,2})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?\s*")


@register
class FeedSource(RemoteSource):
    """A feed at `location` (http, https or file)."""

    kind: ClassVar[str] = "feed"

    def fetch(self) -> list[Item]:
        """Fetch and parse the feed; raises ContentError when it is no usable feed."""
        self.problems = []
        doc = self.get(self.config.location, conditional=True, accept=ACCEPT)
        if doc.not_modified:
            return []
        self.warnings = []
        entries = self.entries(doc)
        items, protected = [], 0
        for entry in entries:
            if is_protected_post(entry.get("summary", ""), _content(entry)):
                self.note(_where(entry), PROTECTED)
                protected += 1
            elif (item := self._item(entry, doc.url)) is not None:
                items.append(item)
        self.window = _window(entries, len(items) + protected)
        return items

    def entries(self, doc: Document) -> list[Any]:
        """The document's entries: the fast reader for plain feeds, feedparser for the rest."""
        plain = read_plain_feed(doc.content)
        if plain is not None:
            return plain
        parsed = parse_feed(doc)
        if parsed.bozo and not isinstance(parsed.bozo_exception, HARMLESS):
            self.problem("feed", f"not well-formed XML, read leniently ({parsed.bozo_exception})")
        return parsed.entries

    def _item(self, entry: Any, base: str) -> Item | None:
        where = _where(entry)
        title = html_to_text(entry.get("title", ""), one_line=True)
        link = self.link(entry.get("link"), base)
        if not title:
            self.problem(where, "entry has no title; skipped")
            return None
        if not link:
            self.problem(where, "entry has no http(s) link; skipped")
            return None
        body = entry.get("summary") or _content(entry)
        summary = summarize(body, self.summary_chars(), base, link)
        image, alt = _image(entry, base, body + _content(entry))
        tags = [t.get("term") or t.get("label") or "" for t in entry.get("tags", [])]
        return Item(
            source=self.name,
            source_id=str(entry.get("id") or self.absolute_link(entry.get("link"), base))[:500],
            kind=ItemKind.MAGAZINE, title=title, url=link, summary=summary,
            published_at=_when(entry), image_url=image, image_alt=(alt or title) if image else None,
            topics=self.topics_for(tags),
        )


def _where(entry: Any) -> str:
    return f"entry {entry.get('id') or entry.get('link') or entry.get('title') or '?'}"


def _slash_date(value: str) -> time.struct_time | None:
    """A 'YYYY/M/D [H:MM[:SS]]' date in Amsterdam time (no offset), as UTC; else None."""
    found = SLASH_DATE.fullmatch(value)
    if found is None:
        return None
    year, month, day, hour, minute, second = (int(part or 0) for part in found.groups())
    try:
        moment = datetime(year, month, day, hour, minute, second, tzinfo=AMSTERDAM)
    except ValueError:
        return None
    return moment.astimezone(UTC).timetuple()


feedparser.registerDateHandler(_slash_date)  # tried before feedparser's own handlers


def parse_feed(doc: Document) -> Any:
    """Parse a fetched document as a feed, or raise ContentError saying what it is instead."""
    # No content-location: feedparser would resolve GUIDs against it, and an id must not
    # change when the feed moves; links are resolved in `_item` instead.
    headers = {"content-type": _content_type(doc)}
    parsed = feedparser.parse(doc.content, response_headers=headers,
                              sanitize_html=False, resolve_relative_uris=False)
    if not parsed.get("version"):
        raise _not_a_feed(doc, parsed)
    lenient = parsed.bozo and not isinstance(parsed.bozo_exception, HARMLESS)
    if lenient and not CLOSING_ROOT.search(doc.content[-4096:]):
        raise ContentError(doc.url, "feed is truncated or not well-formed "
                                    f"(no closing root element; {parsed.bozo_exception})",
                           Failure.TRUNCATED_FEED, parser=str(parsed.bozo_exception))
    return parsed


def _not_a_feed(doc: Document, parsed: Any) -> ContentError:
    head = doc.content[:4096].decode("utf-8", "replace")
    if "<html" in head.lower() or doc.content_type == "text/html":
        found = FEED_LINK.search(doc.content[:65536].decode("utf-8", "replace"))
        feed_url = ""
        if found and (href := re.search(r"""href=["']([^"']+)""", found.group(0))):
            feed_url = urljoin(doc.url, html.unescape(href.group(1)))
        hint = f"; the page names a feed at {feed_url}" if feed_url else ""
        return ContentError(doc.url, f"not a feed: the server sent an HTML page{hint}",
                            Failure.HTML_PAGE, expected="feed", feed_url=feed_url)
    reason = f" ({parsed.bozo_exception})" if parsed.get("bozo") else ""
    return ContentError(doc.url, f"not an RSS or Atom feed{reason}", Failure.NOT_A_FEED)


def _content_type(doc: Document) -> str:
    """The Content-Type to tell feedparser; valid UTF-8 is UTF-8, whatever was declared.

    Servers and generators often declare the wrong charset; UTF-8 with non-ASCII bytes is
    valid only by design, so it wins. Anything else keeps the declaration and feedparser's
    fallbacks (declared, then windows-1252) do the rest.
    """
    declared = doc.headers.get("content-type") or "application/xml"
    if doc.content[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return declared
    try:
        doc.content.decode("utf-8")
    except UnicodeDecodeError:
        return declared
    return f"{doc.content_type or 'application/xml'}; charset=utf-8"


def _content(entry: Any) -> str:
    return "".join(c.get("value", "") for c in entry.get("content", [])[:1])


def _when(entry: Any) -> datetime | None:
    parsed = (dict.get(entry, "published_parsed") or dict.get(entry, "updated_parsed")
              or dict.get(entry, "created_parsed"))
    return datetime.fromtimestamp(calendar.timegm(parsed), UTC) if parsed else None


def _stamp(entry: Any) -> datetime | None:
    """The later of published and updated: feeds order by one of them."""
    # dict.get: feedparser's own get() maps missing keys to others and warns about it.
    found = [dict.get(entry, k) for k in ("published_parsed", "updated_parsed", "created_parsed")]
    stamps = [datetime.fromtimestamp(calendar.timegm(p), UTC) for p in found if p]
    return max(stamps) if stamps else None


def _window(entries: Iterable[Any], usable: int) -> Window | None:
    """From the oldest entry on, the feed is complete; without dates it proves nothing."""
    stamps = [_stamp(e) for e in entries]
    if not stamps or any(s is None for s in stamps) or usable != len(stamps):
        return None
    return Window("published_at", min(s for s in stamps if s is not None))


def _is_pixel(attrs: dict[str, str]) -> bool:
    """A 1x1 image is a tracking pixel, never a picture to show."""
    sizes = [attrs.get(k, "").strip().rstrip("px") for k in ("width", "height")]
    return any(s.isdigit() and int(s) <= 2 for s in sizes)


def _is_decoration(url: str, attrs: dict[str, str] | None = None) -> bool:
    """An avatar, share button, smiley, icon or tracking pixel: never the article's picture."""
    attrs = attrs or {}
    return (_is_pixel(attrs) or DECORATION_URL.search(url) is not None
            or DECORATION_CLASS.search(attrs.get("class", "")) is not None)


def _is_image(media: Any) -> bool:
    """media:content says image by medium or type; with neither, trust the file name."""
    medium, kind = media.get("medium"), str(media.get("type", ""))
    if medium or kind:
        return medium == "image" or kind.startswith("image/")
    return IMAGE_FILE.search(urlsplit(media["url"]).path) is not None


def _image(entry: Any, base: str, body: str) -> tuple[str | None, str | None]:
    """The entry's picture: enclosure, media:content, media:thumbnail, else first <img>."""
    candidates: list[tuple[str, str | None]] = []
    for enclosure in entry.get("enclosures", []):
        if str(enclosure.get("type", "")).startswith("image/") and enclosure.get("href"):
            candidates.append((enclosure["href"], None))
    media = [m for m in entry.get("media_content", [])
             if m.get("url") and _is_image(m) and not _is_decoration(m["url"], m)]
    media.sort(key=lambda m: -int(m["width"]) if str(m.get("width", "")).isdigit() else 0)
    candidates += [(m["url"], None) for m in media]
    candidates += [(t["url"], None) for t in entry.get("media_thumbnail", [])
                   if t.get("url") and not _is_decoration(t["url"], t)]
    for tag in IMG.findall(body)[:10]:
        attrs = {m.group(1).lower(): m.group(2) or m.group(3) or "" for m in ATTR.finditer(tag)}
        src = html.unescape(attrs.get("src", ""))
        if src and not _is_decoration(src, attrs):
            candidates.append((src, html.unescape(attrs.get("alt", ""))))
            break
    for url, alt in candidates:
        absolute = resolve(base, url)
        if absolute.startswith(("http://", "https://")):
            return absolute, (" ".join(alt.split()) or None) if alt else None
    return None, None
