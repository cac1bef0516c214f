"""Reading `content/sources.toml`: the configured content sources, checked before any fetch."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from mailer.errors import ConfigError
from mailer.models import EVENT_TYPES, ItemKind
from mailer.sources import SourceConfig, factory_for, source_kinds

NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,99}$")
COMMON_KEYS = {"name", "kind", "location", "items", "topics", "enabled"}
EVENT_KINDS = {"ical", "wordpress-events"}  # kinds whose items are always events
MAGAZINE_KINDS = {"feed", "wordpress"}  # kinds whose items are always articles


def load_source_configs(path: Path, themes: Mapping[str, str]) -> list[SourceConfig]:
    """Parse and validate a sources file; ConfigError names the file, source and key."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"sources file {path}: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"sources file {path}: {exc}") from None
    unknown = set(data) - {"sources"}
    if unknown:
        raise ConfigError(f"sources file {path}: unknown top-level key(s) {sorted(unknown)}; "
                          "use [[sources]] tables")
    entries = data.get("sources", [])
    if not isinstance(entries, list):
        raise ConfigError(f"sources file {path}: 'sources' must be [[sources]] tables")
    configs: list[SourceConfig] = []
    for number, entry in enumerate(entries, 1):
        config = _source_config(entry, path.parent, themes, f"sources file {path}, source {number}")
        if any(c.name == config.name for c in configs):
            raise ConfigError(f"sources file {path}: source name {config.name!r} used twice")
        configs.append(config)
    return configs


def _source_config(entry: Any, folder: Path, themes: Mapping[str, str], where: str) -> SourceConfig:
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: must be a table")
    name = entry.get("name")
    if not isinstance(name, str) or not NAME.match(name):
        raise ConfigError(f"{where}: 'name' must be lower-case letters, digits, '-' or '_', "
                          f"got {name!r}")
    where = f"{where.rsplit(', source', 1)[0]}, source {name!r}"
    kind = entry.get("kind")
    if kind not in source_kinds():
        raise ConfigError(f"{where}: 'kind' must be one of {', '.join(source_kinds())}, "
                          f"got {kind!r}")
    options = {k: v for k, v in entry.items() if k not in COMMON_KEYS}
    allowed = getattr(factory_for(kind), "options", frozenset())
    extra = sorted(set(options) - set(allowed))
    if extra:
        hint = f"; {kind} takes {', '.join(sorted(allowed))}" if allowed else ""
        raise ConfigError(f"{where}: unknown key(s) {', '.join(extra)}{hint}")
    _check_event_type(options.get("event_type"), where)
    return SourceConfig(
        name=name,
        kind=kind,
        location=_location(entry.get("location"), kind, folder, where),
        item_kind=_item_kind(entry.get("items"), kind, where),
        topics=_topics(entry.get("topics", {}), themes, where),
        enabled=_bool(entry.get("enabled", True), "enabled", where),
        options=options,
    )


def _location(value: Any, kind: str, folder: Path, where: str) -> str:
    """An http(s) URL as given; a path (relative to the sources file) as a path or file: URL."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: 'location' (a URL or a path) is required")
    value = value.strip()
    scheme = urlsplit(value).scheme.lower()
    if scheme in ("http", "https"):
        return value
    if scheme == "file":
        return value if kind != "markdown" else urlsplit(value).path
    if scheme and len(scheme) > 1:
        raise ConfigError(f"{where}: location scheme {scheme!r} not allowed; "
                          "use http, https, file or a path")
    path = (folder / value).resolve()
    return str(path) if kind == "markdown" else path.as_uri()


def _item_kind(value: Any, kind: str, where: str) -> str:
    default = ItemKind.EVENT.value if kind in EVENT_KINDS else ItemKind.MAGAZINE.value
    if value is None:
        return default
    if value not in (ItemKind.MAGAZINE.value, ItemKind.EVENT.value):
        raise ConfigError(f"{where}: 'items' must be \"magazine\" or \"event\", got {value!r}")
    if value != default and (kind in EVENT_KINDS or kind in MAGAZINE_KINDS):
        raise ConfigError(f"{where}: a {kind} source yields {default} items; "
                          f"remove 'items' or set \"{default}\"")
    return value


def _topics(value: Any, themes: Mapping[str, str], where: str) -> dict[str, str]:
    """Source tag -> our topic; '*' gives every item of the source that topic."""
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: 'topics' must be a table of source tag = our topic")
    result: dict[str, str] = {}
    for tag, topic in value.items():
        if topic not in themes:
            raise ConfigError(f"{where}: topic {topic!r} for tag {tag!r} is not a theme; "
                              f"known: {', '.join(themes)}")
        result[normalize_tag(tag)] = topic
    return result


def normalize_tag(tag: str) -> str:
    """Compare tags case- and space-insensitively: ' Onderwijs ' matches 'onderwijs'."""
    return " ".join(str(tag).split()).casefold()


def _check_event_type(value: Any, where: str) -> None:
    if value is not None and value not in EVENT_TYPES:
        raise ConfigError(f"{where}: event_type {value!r} unknown; use one of "
                          f"{', '.join(EVENT_TYPES)}")


def _bool(value: Any, key: str, where: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{where}: '{key}' must be true or false, got {value!r}")
    return value
