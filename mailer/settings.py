"""Settings: built-in defaults, then `mailer.toml`, then `MAILER_*` environment variables.

Every setting is one field of `Settings`. In `mailer.toml` it lives in the table named by
its `section`; in the environment it is `MAILER_<NAME>`. Secrets (`secret=True`) are read
only from the environment: a secret in a file that is committed to git is a leak waiting
to happen.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

from mailer.errors import ConfigError
from mailer.settings_checks import validate

CONFIG_NAME = "mailer.toml"
ENV_PREFIX = "MAILER_"


def _s(section: str, default: Any = None, *, secret: bool = False, factory: Any = None) -> Any:
    meta = {"section": section, "secret": secret}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


DEFAULT_THEMES = {
    "onderwijs": "Onderwijs",
    "jeugdhulp": "Jeugdhulp",
    "jongerenwerk": "Jongerenwerk",
    "gemeente-en-veiligheid": "Gemeente en veiligheid",
    "sociaal-domein": "Sociaal domein",
    "civil-society": "Maatschappelijke organisaties",
    "bestuurders": "Managers en bestuurders",
}


@dataclass(frozen=True)
class Settings:
    """All settings of one mailer installation; `root` anchors relative paths."""

    root: Path = field(default=Path("."), metadata={"section": None, "secret": False})

    # [mailer]
    database_url: str = _s("mailer", "sqlite:///subscribers/mailer.db")
    base_url: str = _s("mailer", "https://nieuwsbrief.platformjep.example.nl")
    secret_key: str | None = _s("mailer", secret=True)
    now: str | None = _s("mailer")

    # [list]
    list_id: str = _s("list", "weerbaarnl.platformjep.example.nl")
    list_name: str = _s("list", "WeerbaarNL")
    from_name: str = _s("list", "Platform JEP")
    from_email: str = _s("list", "weerbaarnl@platformjep.example.nl")
    reply_to: str = _s("list", "redactie@platformjep.example.nl")
    organisation: str = _s(
        "list",
        "Expertise-unit Sociale Stabiliteit (ESS), "
        "ministerie van Sociale Zaken en Werkgelegenheid",
    )
    postal_address: str = _s("list", "Postbus 90801, 2509 LV Den Haag")
    website: str = _s("list", "https://www.platformjep.example.nl")
    privacy_url: str = _s("list", "https://www.platformjep.example.nl/privacy")
    unsubscribe_mailto: str = _s("list", "afmelden@platformjep.example.nl")
    editors: list[str] = _s("list", factory=lambda: ["redactie@platformjep.example.nl"])
    themes: dict[str, str] = _s("list", factory=lambda: dict(DEFAULT_THEMES))

    # [content]
    content_dir: Path = _s("content", Path("content"))
    templates_dir: Path = _s("content", Path("templates"))
    event_horizon_weeks: int = _s("content", 8)
    first_issue_lookback_days: int = _s("content", 28)
    send_time: str = _s("content", "09:00")
    demo_date: str = _s("content", "2026-12-03")
    size_budget_kb: int = _s("content", 90)
    sources_file: Path | None = _s("content")  # default: <content_dir>/sources.toml
    fetch_timeout_seconds: float = _s("content", 20.0)
    fetch_max_bytes: int = _s("content", 20_000_000)
    fetch_retries: int = _s("content", 2)

    # [delivery]
    provider: str = _s("delivery", "file")
    provider_url: str | None = _s("delivery")
    provider_key: str | None = _s("delivery", secret=True)
    provider_domain: str | None = _s("delivery")
    smtp_url: str | None = _s("delivery", secret=True)
    outbox_dir: Path = _s("delivery", Path("outbox"))
    batch_size: int = _s("delivery", 0)
    rate_per_second: float = _s("delivery", 0.0)
    concurrency: int = _s("delivery", 4)
    max_attempts: int = _s("delivery", 5)
    lease_seconds: int = _s("delivery", 300)
    enqueue_only: bool = _s("delivery", False)
    postmark_stream: str = _s("delivery", "broadcast")
    request_timeout: float = _s("delivery", 30.0)
    error_budget: float = _s("delivery", 0.05)
    error_budget_window: int = _s("delivery", 500)
    webhook_secret: str | None = _s("delivery", secret=True)
    sendgrid_verification_key: str | None = _s("delivery", secret=True)

    # [preview]
    preview_dir: Path = _s("preview", Path("preview"))
    caniemail_data: Path = _s("preview", Path("node_modules/caniemail/data/caniemail.json"))
    lint_clients: list[str] = _s("preview", factory=lambda: [
        "gmail.desktop-webmail", "gmail.ios", "gmail.android", "outlook.windows",
        "outlook.outlook-com", "apple-mail.macos", "apple-mail.ios", "samsung-email.android"])
    spamassassin: str = _s("preview", "spamassassin")
    link_timeout: float = _s("preview", 10.0)
    chromium: str = _s("preview", "/usr/bin/chromium")

    # [subscriptions]
    confirm_max_age_days: int = _s("subscriptions", 7)
    pending_purge_days: int = _s("subscriptions", 30)
    consent_text_version: str = _s("subscriptions", "2026-11")
    store_ip: str = _s("subscriptions", "truncated")
    confirm_limit_per_address: int = _s("subscriptions", 3)
    confirm_limit_per_ip: int = _s("subscriptions", 20)
    rate_limit_window_minutes: int = _s("subscriptions", 60)
    goodbye_mail: bool = _s("subscriptions", True)
    trusted_proxies: int = _s("subscriptions", 0)

    # [retention] (AVG art. 5(1)(e): kept no longer than needed; README "Bewaartermijnen")
    left_subscriber_days: int = _s("retention", 90)
    delivery_record_days: int = _s("retention", 90)
    consent_ip_days: int = _s("retention", 365)
    webhook_event_days: int = _s("retention", 30)
    job_run_detail_days: int = _s("retention", 90)

    # [scheduler]
    jobs_dir: Path = _s("scheduler", Path("jobs"))
    grace_hours: float = _s("scheduler", 6.0)
    heartbeat_seconds: int = _s("scheduler", 30)

    def path(self, value: Path) -> Path:
        """Resolve a configured path against the settings root."""
        return value if value.is_absolute() else self.root / value

    def resolved_database_url(self) -> str:
        """The database URL with a relative SQLite path anchored at the root."""
        prefix = "sqlite:///"
        url = self.database_url
        if url.startswith(prefix) and not url.startswith(prefix + "/") and ":memory:" not in url:
            return prefix + str(self.root / url[len(prefix):])
        return url

    def require_secret_key(self) -> str:
        """The signing key, or a ConfigError that says how to set it."""
        if not self.secret_key or len(self.secret_key) < 16:
            raise ConfigError(
                "setting secret_key: missing or shorter than 16 characters; "
                "set MAILER_SECRET_KEY in the environment"
            )
        return self.secret_key


_HINTS = get_type_hints(Settings)
_FIELDS = {f.name: f for f in fields(Settings) if f.metadata.get("section")}


def load_settings(
    config: Path | None = None,
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Build Settings from defaults, the config file, the environment and explicit overrides."""
    environ = os.environ if environ is None else environ
    path = config or _find_config(Path.cwd())
    values: dict[str, Any] = {}
    root = Path.cwd()
    if path is not None:
        if not path.is_file():
            raise ConfigError(f"config file {path}: not found")
        root = path.resolve().parent
        values.update(_read_toml(path))
    else:
        root = _package_checkout() or root
    for name, _f in _FIELDS.items():
        raw = environ.get(ENV_PREFIX + name.upper())
        if raw is not None and raw != "":
            values[name] = _convert(name, raw, from_env=True)
    values.update({k: v for k, v in overrides.items() if v is not None})
    settings = Settings(root=root, **values)
    validate(settings)
    return settings


def with_overrides(settings: Settings, **changes: Any) -> Settings:
    """A copy of settings with some fields changed, validated again."""
    new = replace(settings, **changes)
    validate(new)
    return new


def _find_config(start: Path) -> Path | None:
    for folder in (start, *start.parents):
        candidate = folder / CONFIG_NAME
        if candidate.is_file():
            return candidate
    checkout = _package_checkout()
    return checkout / CONFIG_NAME if checkout else None


def _package_checkout() -> Path | None:
    """The source checkout this package is installed from (editable installs), if any."""
    top = Path(__file__).resolve().parent.parent
    return top if (top / CONFIG_NAME).is_file() else None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path}: {exc}") from None
    values: dict[str, Any] = {}
    for section, table in data.items():
        if not isinstance(table, dict):
            raise ConfigError(f"config file {path}: top-level key '{section}' must be a [table]")
        for key, value in table.items():
            f = _FIELDS.get(key)
            if f is None or f.metadata["section"] != section:
                raise ConfigError(f"config file {path}: unknown setting [{section}] {key}")
            if f.metadata["secret"]:
                raise ConfigError(
                    f"setting {key}: secrets are read only from the environment "
                    f"(MAILER_{key.upper()}), remove it from {path.name}"
                )
            values[key] = _convert(key, value, from_env=False)
    return values


def _convert(name: str, raw: Any, *, from_env: bool) -> Any:
    """Coerce a raw value to the field's type, or raise a ConfigError naming the setting."""
    hint = _HINTS[name]
    where = f"setting {name}" + (f" (MAILER_{name.upper()})" if from_env else "")
    base = _base_type(hint)
    try:
        if base is bool:
            return _to_bool(raw)
        if base is int:
            if isinstance(raw, bool):
                raise ValueError
            return int(raw)
        if base is float:
            return float(raw)
        if base is Path:
            return Path(raw)
        if base is list:
            items = raw.split(",") if isinstance(raw, str) else raw
            return [str(i).strip() for i in items if str(i).strip()]
        if base is dict:
            value = json.loads(raw) if isinstance(raw, str) else raw
            if not isinstance(value, dict):
                raise ValueError
            return {str(k): str(v) for k, v in value.items()}
        if not isinstance(raw, str):
            raise ValueError
        return raw
    except (ValueError, TypeError, json.JSONDecodeError):
        raise ConfigError(f"{where}: expected {_describe(base)}, got {raw!r}") from None


def _base_type(hint: Any) -> type:
    """The plain type behind a hint: `str | None` -> str, `list[str]` -> list."""
    args = [a for a in get_args(hint) if a is not type(None)]
    origin = get_origin(hint)
    if origin in (list, dict):
        return origin
    if args and origin is not None:
        return _base_type(args[0])
    return hint


def _to_bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off"}:
        return False
    raise ValueError


def _describe(base: type) -> str:
    return {
        bool: "true or false",
        int: "a whole number",
        float: "a number",
        Path: "a path",
        list: "a list (comma-separated in the environment)",
        dict: "a table (JSON object in the environment)",
    }.get(base, "text")


def setting_names() -> list[str]:
    """Every configurable setting name, for docs and tests."""
    return list(_FIELDS)


