"""Local content: Markdown files with YAML front matter in content/magazine and content/events."""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, ClassVar

import frontmatter
import markdown as md
import yaml

from mailer.clock import AMSTERDAM
from mailer.errors import ContentError, Failure
from mailer.models import EVENT_TYPES, Item, ItemKind, ItemStatus
from mailer.sanitize import sanitize_html
from mailer.sources import SourceConfig, register
from mailer.store.tables import items

ID_CHARS = items.c.source_id.type.length  # longer, the database refuses the whole source
# An event's `status`: called off as the iCalendar (STATUS:CANCELLED) and WordPress
# (canceled) sources say it, or in Dutch.
STATUSES = {"active": ItemStatus.ACTIVE, "cancelled": ItemStatus.CANCELLED,
            "canceled": ItemStatus.CANCELLED, "geannuleerd": ItemStatus.CANCELLED}

FOLDERS = {"magazine": ItemKind.MAGAZINE, "events": ItemKind.EVENT}
COMMON_FIELDS = ("id", "title", "url", "topics", "image", "image_alt", "draft")
FIELDS = {
    ItemKind.MAGAZINE: frozenset({*COMMON_FIELDS, "published"}),
    ItemKind.EVENT: frozenset({*COMMON_FIELDS, "starts", "ends", "all_day", "location",
                               "online", "event_type", "status"}),
}
# Fields Hugo and Jekyll use that we ignore on purpose, so a folder shared with (or copied
# from) a site does not warn on every file: the site's URL path (slug, aliases, layout),
# its ordering (weight), its own dates (date, lastmod: we take `published`/`starts`), its
# byline (author, authors) and its taxonomies (tags, categories: our themes are `topics`).
SITE_FIELDS = frozenset({"slug", "aliases", "layout", "weight", "date", "lastmod", "author",
                         "authors", "tags", "categories"})


class NotFields(ValueError):
    """The front matter is valid YAML but a list or text, not `field: value` lines."""


class _FieldsHandler(frontmatter.YAMLHandler):
    """YAML front matter that must be a mapping: python-frontmatter drops anything else
    without a word, and the file would then be reported as missing its title."""

    def load(self, fm: str, **kwargs: Any) -> Any:
        data = super().load(fm, **kwargs)
        if data is not None and not isinstance(data, dict):
            what = {list: "a list", str: "plain text"}.get(type(data), f"{data!r}")
            raise NotFields(f"front matter must be fields ('title: ...' lines), not {what}")
        return data


FIELDS_HANDLER = _FieldsHandler()


@register
class MarkdownSource:
    """Reads `<location>/magazine/*.md` and `<location>/events/*.md`."""

    kind: ClassVar[str] = "markdown"

    def __init__(self, config: SourceConfig, *, themes: Mapping[str, str] | None = None,
                 **_: Any):
        self.config = config
        self.themes = themes  # the list's theme slugs; None: topics are not checked
        self.folder = Path(config.location)
        self.problems: list[ContentError] = []
        self.warnings: list[ContentError] = []  # the item still synced (an unknown field)

    def fetch(self) -> Iterator[Item]:
        """Yield one Item per valid file that is no draft; bad files go to `problems`."""
        self.problems, self.warnings = [], []
        if not self.folder.is_dir():
            raise ContentError(str(self.folder), "content folder not found", Failure.NO_FOLDER)
        # id -> file: the ledger keeps one item per id, so a second file (often a copy
        # whose id was not changed) would be dropped without a word.
        owners: dict[str, Path] = {}
        for sub, kind in FOLDERS.items():
            for path in sorted((self.folder / sub).glob("*.md")):
                try:
                    item = read_item(path, kind, self.config.name, self.warnings,
                                     themes=self.themes)
                except ContentError as problem:
                    self.problems.append(problem)
                    continue
                if item is None:
                    continue
                owner = owners.setdefault(item.source_id, path)
                if owner != path:
                    self.problems.append(ContentError(str(path), (
                        f"id {item.source_id!r} is already the id of "
                        f"{owner.relative_to(self.folder)}; give each file its own id")))
                    continue
                yield item


def read_item(path: Path, kind: ItemKind, source: str,
              warnings: list[ContentError] | None = None, *,
              themes: Mapping[str, str] | None = None) -> Item | None:
    """Parse one Markdown file into an Item, or raise ContentError naming file and problem.

    A draft (`draft: true`, as in Hugo and Jekyll) is None: not published and, being work
    in progress, not checked further. Unknown fields are added to `warnings`.
    """
    where = str(path)
    post = _load_post(path)
    meta = post.metadata
    if _flag(meta, "draft", where):
        return None
    if warnings is not None:  # before the checks below: 'titel' explains a missing title
        warnings.extend(ContentError(where, w) for w in _unknown_fields(meta, kind))
    title = _required_text(meta, "title", where)
    url = _absolute_url(meta, where)
    if url.startswith("http://") and warnings is not None:  # synced, as sites still have them
        warnings.append(ContentError(where, f"url {url!r} is not https; `mailer lint` reports "
                                            "it as an error: use the https:// address"))
    summary = sanitize_html(md.markdown(post.content or ""))
    image_url, image_alt = _image(meta, where)
    common = dict(
        source=source,
        source_id=_source_id(meta, kind, path),
        kind=kind,
        title=title,
        url=url,
        summary=summary,
        image_url=image_url,
        image_alt=image_alt,
        topics=_topics(meta.get("topics"), themes, where),
    )
    if kind is ItemKind.MAGAZINE:
        return Item(**common, published_at=_instant(meta, "published", where))
    return Item(**common, **_event_fields(meta, where))


def _absolute_url(meta: dict, where: str) -> str:
    """The required `url`, an absolute http(s) link."""
    url = _required_text(meta, "url", where)
    if not url.startswith(("https://", "http://")):
        raise ContentError(where, f"url must be an absolute http(s) link, got {url!r}")
    return url


def _image(meta: dict, where: str) -> tuple[str | None, str | None]:
    """The optional image's absolute URL and its required description, or (None, None)."""
    image = meta.get("image")
    if not image:
        return None, None
    if not str(image).startswith(("https://", "http://")):  # no site to resolve it
        raise ContentError(where, f"image must be an absolute http(s) link, got {image!r}")
    if not meta.get("image_alt"):
        raise ContentError(where, "image given without image_alt (describe the image)")
    return str(image), str(meta["image_alt"])


def _source_id(meta: dict, kind: ItemKind, path: Path) -> str:
    """The item's id: the `id` field, else kind and file name; it must fit the column."""
    source_id = str(meta.get("id") or f"{kind.value}-{path.stem}")
    if len(source_id) > ID_CHARS:
        raise ContentError(str(path), f"id is {len(source_id)} characters long; "
                                      f"at most {ID_CHARS} fit")
    return source_id


def _load_post(path: Path) -> frontmatter.Post:
    """Read a file's front matter and text; a ContentError says why it cannot be read."""
    where = str(path)
    try:
        # utf-8-sig: a byte order mark would hide the opening '---' of the front matter.
        text = path.read_text(encoding="utf-8-sig")
        # Only YAML front matter gets our handler; without the '---' detection a '---'
        # line in the text would be taken for front matter.
        return frontmatter.loads(text, handler=FIELDS_HANDLER if FIELDS_HANDLER.detect(text)
                                 else None)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" (line {mark.line + 1})" if mark else ""
        problem = f"front matter is not valid YAML{line}: {_first_line(exc)}"
        raise ContentError(where, problem) from None
    except UnicodeDecodeError:  # before ValueError, which it is a kind of
        raise ContentError(where, "not UTF-8 text; save the file as UTF-8") from None
    except NotFields as exc:
        raise ContentError(where, str(exc)) from None
    except ValueError as exc:
        raise ContentError(where, f"invalid date in front matter: {exc}") from None


def _event_fields(meta: dict, where: str) -> dict[str, Any]:
    all_day = _flag(meta, "all_day", where)
    starts = _instant(meta, "starts", where, all_day=all_day)
    ends = _instant(meta, "ends", where, all_day=all_day, required=False)
    if all_day:
        ends = (ends or starts) + timedelta(days=1)  # inclusive last day -> exclusive end
    if ends is not None and ends < starts:
        raise ContentError(where, "ends is before starts")
    event_type = str(meta.get("event_type") or "bijeenkomst")
    if event_type not in EVENT_TYPES:
        raise ContentError(
            where, f"event_type {event_type!r} unknown; use one of {', '.join(EVENT_TYPES)}"
        )
    return dict(
        starts_at=starts,
        ends_at=ends,
        all_day=all_day,
        location=str(meta["location"]) if meta.get("location") else None,
        online=_flag(meta, "online", where),
        event_type=event_type,
        status=_status(meta, where),
    )


def _status(meta: dict, where: str) -> ItemStatus:
    """Active unless the event is called off; an unknown word is not guessed at."""
    value = meta.get("status")
    if value is None:
        return ItemStatus.ACTIVE
    status = STATUSES.get(str(value).strip().lower())
    if status is None:
        raise ContentError(where, f"status {value!r} unknown; use cancelled (or geannuleerd) "
                                  "for an event that does not go ahead, or leave status out")
    return status


def _unknown_fields(meta: dict, kind: ItemKind) -> Iterator[str]:
    """A line per field we do not read (a typo, most likely), with a suggestion if close."""
    known = FIELDS[kind]
    for key in map(str, meta):
        if key in known or key in SITE_FIELDS:
            continue
        if any(key in fields for fields in FIELDS.values()):  # the other kind's field
            other = "events" if kind is ItemKind.MAGAZINE else "articles"
            yield f"field '{key}' is for {other} only; ignored"
            continue
        close = difflib.get_close_matches(key.lower(), sorted(known), n=1)
        yield f"unknown field '{key}' ignored" + (f"; did you mean '{close[0]}'?" if close else "")


def _topics(value: Any, themes: Mapping[str, str] | None, where: str) -> tuple[str, ...]:
    """A list of topics, or one written as plain text (not one topic per letter).

    Each must be a theme of the list: readers who chose themes never get an article filed
    under a misspelt one.
    """
    if not value:
        return ()
    topics = (str(value),) if isinstance(value, str) else tuple(str(t) for t in value)
    for topic in topics:
        if themes is not None and topic not in themes:
            close = difflib.get_close_matches(topic.lower(), sorted(themes), n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"themes: {', '.join(themes)}"
            raise ContentError(where, f"topic {topic!r} is not a theme of the list; {hint}")
    return topics


def _flag(meta: dict, key: str, where: str) -> bool:
    """A yes/no field; text such as 'nee' or "false" would be true as a Python value."""
    value = meta.get(key)
    if value is None or isinstance(value, bool):
        return bool(value)
    raise ContentError(where, f"{key} must be true or false, got {value!r}")


def _required_text(meta: dict, key: str, where: str) -> str:
    value = meta.get(key)
    if value is None or not str(value).strip():
        raise ContentError(where, f"missing required field '{key}'")
    return " ".join(str(value).split())


def _instant(
    meta: dict, key: str, where: str, *, all_day: bool = False, required: bool = True
) -> datetime | None:
    """A front-matter date or datetime as aware UTC; dates and naive times are Amsterdam."""
    value = meta.get(key)
    if value is None:
        if required:
            raise ContentError(where, f"missing required field '{key}'")
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise ContentError(where, f"{key}: not a date or ISO 8601 time: {value!r}") from None
    if not isinstance(value, date):  # YAML read a number, yes/no, a list, ...
        raise ContentError(where, f"{key}: not a date or ISO 8601 time: {value!r}")
    if not isinstance(value, datetime):
        value = datetime.combine(value, time(0, 0))
    elif all_day:
        raise ContentError(where, f"{key}: an all-day event takes a date, not a time")
    if value.tzinfo is None:
        value = value.replace(tzinfo=AMSTERDAM)
    try:
        return value.astimezone(UTC)
    except OverflowError:  # year 1 or 9999 moved past the calendar's end by the offset
        raise ContentError(where, f"{key}: date out of range: {meta[key]}") from None


def _first_line(exc: Exception) -> str:
    return str(getattr(exc, "problem", None) or exc).splitlines()[0]

