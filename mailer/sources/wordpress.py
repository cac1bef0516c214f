"""WordPress posts through the REST API (`/wp-json/wp/v2/posts?_embed`), all pages.

The API lists every published post, so a fetch that read all pages is complete: a post
that is missing was deleted, unpublished or made private, and stops appearing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

from requests.utils import parse_header_links

from mailer.errors import ContentError, Failure
from mailer.models import Item, ItemKind
from mailer.sanitize import html_to_text
from mailer.sources import register
from mailer.sources.protected_posts import PROTECTED
from mailer.sources.remote import RemoteSource, summarize

POSTS_PATH = "/wp-json/wp/v2/posts"
IMAGE_SIZES = ("medium_large", "large", "full")  # ~768 px suits a 600 px mail best
MAX_PAGES = 50
# What WordPress adds to an upload's name: "-768x512" sizes, "-scaled", "-e1480000000" edits.
FILE_SUFFIXES = re.compile(r"(?:-\d+x\d+|-scaled|-e\d{10,})+$")


class PagedSource(RemoteSource):
    """A WordPress REST collection read page by page (X-WP-TotalPages / Link: rel=next)."""

    conditional: ClassVar[bool] = False  # pages change independently: always read them all
    options: ClassVar[frozenset[str]] = RemoteSource.options | {"per_page", "max_pages"}
    path: ClassVar[str]
    max_per_page: ClassVar[int] = 100

    def endpoint(self) -> str:
        """The collection URL: the location itself, or the site root plus the API path."""
        location = self.config.location.rstrip("/")
        parts = urlsplit(location)
        if "/wp-json/" in parts.path or "rest_route=" in parts.query or parts.scheme == "file":
            return location
        return location + self.path

    def pages(self, params: Mapping[str, str], list_key: str | None = None) -> Iterator[Any]:
        """Yield each page's list of records; sets `complete` when the last page was read."""
        url: str | None = self.endpoint()
        per_page = min(int(self.option("per_page", self.max_per_page)), self.max_per_page)
        query: dict[str, str] | None = {**params, "per_page": str(per_page), "page": "1"}
        limit = int(self.option("max_pages", MAX_PAGES))
        self.complete = False
        for number in range(1, limit + 1):
            assert url is not None
            doc = self.get(url, params=query, accept="application/json")
            body = _json(doc.content, doc.url)
            records = body.get(list_key) if list_key and isinstance(body, dict) else body
            if not isinstance(records, list):
                raise _not_a_list(doc.url, list_key or "posts", body, records)
            yield records
            following = _next_page(doc.headers, body, number)
            if following is None:
                self.complete = True
                return
            if isinstance(following, str):
                url, query = urljoin(doc.url, following), None
            elif query is None:
                url = _with_page(url, following)
            else:
                query = {**query, "page": str(following)}


@register
class WordPressSource(PagedSource):
    """Posts of a WordPress site: `location` is the site or its posts endpoint."""

    kind: ClassVar[str] = "wordpress"
    options: ClassVar[frozenset[str]] = PagedSource.options | {"categories", "tags"}
    path: ClassVar[str] = POSTS_PATH

    def fetch(self) -> list[Item]:
        """Read every page of posts and turn each into a magazine item."""
        self.problems, self.warnings = [], []
        params = {"_embed": "1", "orderby": "date", "order": "desc"}
        for key in ("categories", "tags"):
            if self.option(key):
                params[key] = ",".join(str(v) for v in _as_list(self.option(key)))
        items: dict[str, Item] = {}
        for records in self.pages(params):
            for post in records:
                item = self._item(post)
                if item is not None:
                    items.setdefault(item.source_id, item)
        return list(items.values())

    def _item(self, post: Any) -> Item | None:
        if not isinstance(post, dict) or "id" not in post:
            self.problem("post ?", "not a WordPress post object; skipped")
            return None
        where = f"post {post['id']}"
        title = html_to_text(_rendered(post.get("title")), one_line=True)
        link = self.link(post.get("link"), self.endpoint())
        if not title or not link:
            self.problem(where, "post without title or link; skipped")
            return None
        excerpt = post.get("excerpt") or {}
        if any(isinstance(post.get(k), dict) and post[k].get("protected")
               for k in ("content", "excerpt")):
            # Subscribers would meet a password form: the author did not mean it for all.
            self.note(where, PROTECTED)
            return None
        embedded = post.get("_embedded") or {}
        image, alt = featured_image(embedded)
        return Item(
            source=self.name, source_id=str(post["id"]), kind=ItemKind.MAGAZINE, title=title,
            url=link, summary=summarize(_rendered(excerpt), self.summary_chars(), link, link),
            published_at=parse_wp_time(post.get("date_gmt")),
            image_url=image, image_alt=(alt or title) if image else None,
            topics=self.topics_for(term_names(embedded.get("wp:term"))),
        )


def featured_image(embedded: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """The embedded featured image at a mail-friendly size, and its alt text."""
    media = embedded.get("wp:featuredmedia") or []
    first = media[0] if media and isinstance(media[0], dict) else {}
    if not first.get("source_url") and not first.get("media_details"):
        return None, None  # absent, or an error object such as rest_forbidden
    sizes = (first.get("media_details") or {}).get("sizes") or {}
    url = next((sizes[s]["source_url"] for s in IMAGE_SIZES
                if isinstance(sizes.get(s), dict) and sizes[s].get("source_url")),
               first.get("source_url"))
    alt = " ".join(str(first.get("alt_text") or "").split()) or None
    if alt and _is_file_name(alt, str(first.get("source_url") or url or "")):
        alt = None  # "unitedarabemirates" for UnitedArabEmirates.jpg describes nothing
    return url, alt


def _is_file_name(alt: str, url: str) -> bool:
    """Whether an alt text only repeats the image's file name (WCAG failure F30)."""
    stem = url.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    return _letters(alt) == _letters(FILE_SUFFIXES.sub("", stem)) != ""


def _letters(text: str) -> str:
    return "".join(c for c in text.lower() if c.isalnum())


def term_names(groups: Any) -> list[str]:
    """Names and slugs of the embedded categories, tags and custom terms."""
    names: list[str] = []
    for group in groups or []:
        for term in group if isinstance(group, list) else []:
            if isinstance(term, dict):
                names += [str(term[k]) for k in ("name", "slug") if term.get(k)]
    return names


def parse_wp_time(value: Any) -> datetime | None:
    """WordPress's '2026-11-20T09:00:00' or '2026-11-20 09:00:00' in UTC (the *_gmt fields)."""
    if not value or not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace(" ", "T")).replace(tzinfo=UTC)
    except ValueError:
        return None


def _rendered(field: Any) -> str:
    if isinstance(field, dict):
        return str(field.get("rendered") or "")
    return str(field or "")


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _json(content: bytes, url: str) -> Any:
    try:
        return json.loads(content)
    except (ValueError, UnicodeDecodeError) as exc:
        head = content[:200].lstrip().lower()
        if head.startswith((b"<!doctype html", b"<html")):
            raise ContentError(url, f"expected JSON, got an HTML page ({exc})",
                               Failure.HTML_PAGE, expected="json") from None
        raise ContentError(url, f"expected JSON, got invalid JSON ({exc})",
                           Failure.INVALID_JSON, parser=str(exc)) from None


def _not_a_list(url: str, wanted: str, body: Any, records: Any) -> ContentError:
    """What came instead of a list: one record (the URL names one post or event), the API's
    error object ({"code": ..., "message": ...}), or something else."""
    technical = f"expected a JSON list of {wanted}, got {type(records).__name__}"
    if isinstance(body, dict) and isinstance(body.get("code"), str) and "message" in body:
        return ContentError(url, f"{technical}: {body['code']}: {body['message']}",
                            Failure.NOT_A_LIST, wanted=wanted, got="error",
                            message=html_to_text(str(body["message"]), one_line=True))
    got = "one" if isinstance(body, dict) and "id" in body else "other"
    return ContentError(url, technical, Failure.NOT_A_LIST, wanted=wanted, got=got)


def _next_page(headers: Mapping[str, str], body: Any, number: int) -> str | int | None:
    """Where the next page is: a Link rel=next URL, else page+1 while below the total pages."""
    for link in parse_header_links(headers.get("link", "")):
        if link.get("rel") == "next" and link.get("url"):
            return link["url"]
    total = headers.get("x-wp-totalpages")
    if total is None and isinstance(body, dict):
        total = body.get("total_pages")
    try:
        return number + 1 if number < int(total or 0) else None
    except (TypeError, ValueError):
        return None


def _with_page(url: str, page: int) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query["page"] = str(page)
    return urlunsplit(parts._replace(query=urlencode(query)))
