"""Scheduled jobs: read `jobs/*.toml`, build their triggers and the APScheduler scheduler.

One file is one job; its id is the file name without `.toml`. A file names a task, a
trigger (cron fields on the wall clock of the job's timezone, or an interval of elapsed
time), a timezone (default Europe/Amsterdam), task options and whether it is enabled.
Anything wrong stops loading with a ConfigError naming the file and the field.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from mailer.errors import ConfigError

TASKS = ("newsletter", "proof", "sync-content", "purge-pending", "retention", "retry-failed")
CRON_FIELDS = ("year", "month", "day", "week", "day_of_week", "hour", "minute", "second")
INTERVAL_FIELDS = ("weeks", "days", "hours", "minutes", "seconds")
TOP_KEYS = {"task", "trigger", "timezone", "options", "enabled", "grace_hours", "description"}
DEFAULT_TIMEZONE = "Europe/Amsterdam"
# Interval jobs count from a fixed local midnight, so every scheduler process computes
# the same fire times (and so the same run keys) whenever it started.
INTERVAL_ANCHOR = datetime(2026, 1, 1)
# (name, type, default, check, what the check requires) per task option.
OPTIONS: dict[str, dict[str, tuple[type, Any, Callable[[Any], bool], str]]] = {
    "newsletter": {
        "min_items": (int, 1, lambda v: v >= 1, "at least 1"),
        "event_horizon_weeks": (int, None, lambda v: v >= 1, "at least 1"),
        "even_without_news": (bool, False, lambda v: True, "true or false"),
    },
    "proof": {"newsletter_job": (str, "newsletter", bool, "a job id")},
    "sync-content": {},
    "purge-pending": {},
    "retention": {},
    "retry-failed": {"max_age_hours": (int, 24, lambda v: v >= 1, "at least 1")},
}


class WallClockCronTrigger(CronTrigger):
    """A cron trigger that fires a wall-clock time that occurs twice only once.

    When clocks go back (last Sunday of October, 03:00 CEST -> 02:00 CET) the local times
    02:00-02:59 happen twice; APScheduler 3 would fire a job at 02:30 in both. We keep the
    first (summer time) occurrence and skip the repeat. A local time that does not exist
    (02:00-02:59 on the last Sunday of March) is left to APScheduler: it fires at the same
    elapsed time as in winter time, i.e. one hour later on the clock (02:30 -> 03:30 CEST).
    """

    def get_next_fire_time(self, previous_fire_time, now):
        """The next fire time, skipping the second occurrence of a repeated local time."""
        fire = super().get_next_fire_time(previous_fire_time, now)
        while fire is not None and _second_occurrence(fire):
            fire = super().get_next_fire_time(fire, fire)
        return fire


def _second_occurrence(moment: datetime) -> bool:
    local = moment.astimezone(UTC).astimezone(moment.tzinfo)  # normalise a nonexistent time
    naive = local.replace(tzinfo=None)
    first = naive.replace(tzinfo=local.tzinfo, fold=0).utcoffset()
    second = naive.replace(tzinfo=local.tzinfo, fold=1).utcoffset()
    return first != second and local.utcoffset() == second and local.fold == 1


@dataclass(frozen=True)
class JobSpec:
    """One job as its file describes it."""

    id: str
    path: Path
    task: str
    trigger: BaseTrigger
    trigger_text: str
    timezone: ZoneInfo
    options: dict[str, Any]
    enabled: bool
    grace: timedelta
    description: str = ""
    raw_trigger: dict[str, Any] = field(default_factory=dict)

    def next_fire(self, after: datetime) -> datetime | None:
        """The first fire time strictly after an instant, as aware UTC.

        UTC, because Python compares and subtracts two datetimes of one zone by their
        wall-clock values, which is wrong exactly around a DST change.
        """
        fire = self.trigger.get_next_fire_time(None, after + timedelta(microseconds=1))
        return fire.astimezone(UTC) if fire else None


def load_jobs(folder: Path, default_grace_hours: float = 6.0) -> list[JobSpec]:
    """Every `*.toml` job in a folder, sorted by id; a bad file raises ConfigError."""
    if not folder.is_dir():
        raise ConfigError(f"setting jobs_dir: folder {folder} not found")
    specs = [load_job(path, default_grace_hours) for path in sorted(folder.glob("*.toml"))]
    _check_references(specs)
    return specs


def load_job(path: Path, default_grace_hours: float = 6.0) -> JobSpec:
    """Read and validate one job file."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"job file {path}: not valid TOML: {exc}") from None
    problem = _Problem(path)
    unknown = sorted(set(data) - TOP_KEYS)
    if unknown:
        raise problem(unknown[0], f"unknown key; expected one of {', '.join(sorted(TOP_KEYS))}")
    task = data.get("task")
    if task not in TASKS:
        raise problem("task", f"must be one of {', '.join(TASKS)}, got {task!r}")
    zone = _timezone(data.get("timezone", DEFAULT_TIMEZONE), problem)
    trigger, text = _trigger(data.get("trigger"), zone, problem)
    enabled = data.get("enabled", True)
    if not isinstance(enabled, bool):
        raise problem("enabled", f"must be true or false, got {enabled!r}")
    grace = data.get("grace_hours", default_grace_hours)
    if isinstance(grace, bool) or not isinstance(grace, int | float) or grace <= 0:
        raise problem("grace_hours", f"must be a positive number of hours, got {grace!r}")
    return JobSpec(
        id=path.stem, path=path, task=task, trigger=trigger, trigger_text=text, timezone=zone,
        options=_options(task, data.get("options", {}), problem), enabled=enabled,
        grace=timedelta(hours=grace), description=str(data.get("description", "")),
        raw_trigger=dict(data.get("trigger", {})),
    )


@dataclass(frozen=True)
class _Problem:
    path: Path

    def __call__(self, name: str, message: str) -> ConfigError:
        return ConfigError(f"job file {self.path}: field {name}: {message}")


def _timezone(name: Any, problem: _Problem) -> ZoneInfo:
    try:
        return ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError):
        raise problem("timezone", f"unknown time zone {name!r} (e.g. Europe/Amsterdam)") from None


def _trigger(table: Any, zone: ZoneInfo, problem: _Problem) -> tuple[BaseTrigger, str]:
    if not isinstance(table, dict):
        raise problem("trigger", 'missing: add a [trigger] table with type = "cron" or "interval"')
    kind = table.get("type")
    fields = {k: v for k, v in table.items() if k != "type"}
    allowed = {"cron": CRON_FIELDS, "interval": INTERVAL_FIELDS}.get(kind)
    if allowed is None:
        raise problem("trigger.type", f"must be \"cron\" or \"interval\", got {kind!r}")
    for name, value in fields.items():
        if name not in allowed:
            article = "an" if kind == "interval" else "a"
            raise problem(f"trigger.{name}",
                          f"not {article} {kind} field; use {', '.join(allowed)}")
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise problem(f"trigger.{name}", f"must be a number or text, got {value!r}")
    if not fields:
        raise problem("trigger", f"a {kind} trigger needs at least one of {', '.join(allowed)}")
    text = f"{kind} " + " ".join(f"{k}={v}" for k, v in fields.items())
    if kind == "cron":
        return _cron(fields, zone, problem), text
    return _interval(fields, zone, problem), text


def _cron(fields: dict[str, Any], zone: ZoneInfo, problem: _Problem) -> CronTrigger:
    for name, value in fields.items():  # one by one, so the error names the field
        try:
            CronTrigger(**{name: value}, timezone=zone)
        except (ValueError, TypeError) as exc:
            raise problem(f"trigger.{name}", f"invalid value {value!r}: {exc}") from None
    return WallClockCronTrigger(**fields, timezone=zone)


def _interval(fields: dict[str, Any], zone: ZoneInfo, problem: _Problem) -> IntervalTrigger:
    for name, value in fields.items():
        if not isinstance(value, int | float) or value < 0:
            raise problem(f"trigger.{name}", f"must be a non-negative number, got {value!r}")
    if sum(fields.values()) <= 0:
        raise problem("trigger", "an interval must be longer than zero")
    anchor = INTERVAL_ANCHOR.replace(tzinfo=zone)
    return IntervalTrigger(**fields, start_date=anchor, timezone=zone)


def _options(task: str, given: Any, problem: _Problem) -> dict[str, Any]:
    if not isinstance(given, dict):
        raise problem("options", "must be a table: [options]")
    known = OPTIONS[task]
    for name in given:
        if name not in known:
            allowed = ", ".join(known) or "none"
            raise problem(f"options.{name}", f"not an option of task {task} (options: {allowed})")
    values = {}
    for name, (kind, default, check, requirement) in known.items():
        value = given.get(name, default)
        # TOML's true is an int to Python: a count must not take it.
        if value is not None and name in given and (
                isinstance(value, bool) is not (kind is bool) or not isinstance(value, kind)
                or not check(value)):
            raise problem(f"options.{name}", f"must be {requirement}, got {value!r}")
        values[name] = value
    return values


def _check_references(specs: list[JobSpec]) -> None:
    by_id = {s.id: s for s in specs}
    for spec in specs:
        if spec.task != "proof":
            continue
        target = by_id.get(spec.options["newsletter_job"])
        if target is None or target.task != "newsletter":
            raise _Problem(spec.path)("options.newsletter_job",
                                      f"{spec.options['newsletter_job']!r} is not a newsletter "
                                      "job in this folder")


def fire_times(spec: JobSpec, after: datetime, until: datetime, limit: int = 100_000
               ) -> Iterator[datetime]:
    """The job's fire times in (after, until], oldest first (at most `limit`)."""
    fire = spec.next_fire(after)
    for _ in range(limit):
        if fire is None or fire > until:
            return
        yield fire
        fire = spec.next_fire(fire)


def latest_fire(spec: JobSpec, after: datetime, until: datetime) -> datetime | None:
    """The latest fire time in (after, until], or None.

    Searches backwards in doubling windows, so a frequent job over a long gap costs a
    few steps, not one per fire time.
    """
    span = timedelta(minutes=1)
    while True:
        start = max(after, until - span)
        latest = max(fire_times(spec, start, until), default=None)
        if latest is not None or start <= after:
            return latest
        span *= 2


def fire_count(spec: JobSpec, after: datetime, until: datetime, cap: int = 1000) -> int:
    """How many fire times lie in (after, until], counting at most `cap`."""
    return sum(1 for _ in fire_times(spec, after, until, limit=cap))


def build_scheduler(specs: list[JobSpec], fire: Callable[[JobSpec], None]) -> BackgroundScheduler:
    """An APScheduler BackgroundScheduler with one job per enabled spec, calling `fire`."""
    scheduler = BackgroundScheduler(timezone=UTC)
    for spec in specs:
        if spec.enabled:
            # Coalesce: a run late by less than the grace period happens once, not per
            # missed fire time; later than that APScheduler drops it and the scheduler reports it.
            scheduler.add_job(fire, spec.trigger, args=[spec], id=spec.id, name=spec.id,
                              coalesce=True, max_instances=1,
                              misfire_grace_time=int(spec.grace.total_seconds()))
    return scheduler
