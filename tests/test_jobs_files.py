"""Job files: the shipped defaults, validation errors, triggers across months and DST."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from mailer.cli import main
from mailer.errors import ConfigError
from mailer.jobs import fire_count, fire_times, latest_fire, load_job, load_jobs

REPO = Path(__file__).resolve().parent.parent
AMS = ZoneInfo("Europe/Amsterdam")


def shipped():
    return {s.id: s for s in load_jobs(REPO / "jobs")}


def write_job(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_jobs_cover_the_editorial_week():
    jobs = shipped()
    assert {s.task for s in jobs.values()} == {
        "newsletter", "proof", "sync-content", "purge-pending", "retention", "retry-failed"}
    wednesday = datetime(2026, 12, 2, 0, 0, tzinfo=AMS)
    assert jobs["newsletter"].next_fire(wednesday) == datetime(2026, 12, 3, 9, 0, tzinfo=AMS)
    assert jobs["proof"].next_fire(wednesday) == datetime(2026, 12, 2, 14, 0, tzinfo=AMS)
    assert jobs["newsletter"].options["min_items"] >= 1
    hourly = list(fire_times(jobs["sync-content"], wednesday, wednesday + timedelta(hours=3)))
    assert [f.astimezone(AMS).hour for f in hourly] == [1, 2, 3]
    assert all(s.enabled and s.grace == timedelta(hours=6) for s in jobs.values())


GOOD = 'task = "newsletter"\n[trigger]\ntype = "cron"\nday_of_week = "thu"\nhour = 9\n'


@pytest.mark.parametrize("text, field", [
    ('task = "newslettr"\n[trigger]\ntype = "cron"\nhour = 9\n', "field task"),
    ('task = "newsletter"\n', "field trigger"),
    ('task = "newsletter"\n[trigger]\ntype = "daily"\n', "field trigger.type"),
    ('task = "newsletter"\n[trigger]\ntype = "cron"\nhour = 25\n', "field trigger.hour"),
    ('task = "newsletter"\n[trigger]\ntype = "cron"\nday_of_week = "donderdag"\n',
     "field trigger.day_of_week"),
    ('task = "newsletter"\n[trigger]\ntype = "cron"\nhours = 9\n', "field trigger.hours"),
    ('task = "newsletter"\n[trigger]\ntype = "interval"\nhours = -1\n', "field trigger.hours"),
    ('task = "newsletter"\n[trigger]\ntype = "interval"\nminutes = 0\n', "field trigger"),
    (GOOD.replace('task', 'timezone = "Europe/Amsterdan"\ntask'), "field timezone"),
    (GOOD.replace('task', 'enabled = "yes"\ntask'), "field enabled"),
    (GOOD.replace('task', 'grace_hours = 0\ntask'), "field grace_hours"),
    (GOOD.replace('task', 'schedule = 1\ntask'), "field schedule"),
    (GOOD + '[options]\nmin_items = 0\n', "field options.min_items"),
    (GOOD + '[options]\nmin_items = "3"\n', "field options.min_items"),
    (GOOD + '[options]\nmin_items = true\n', "field options.min_items"),
    (GOOD + '[options]\neven_without_news = 1\n', "field options.even_without_news"),
    (GOOD + '[options]\neven_without_news = "ja"\n', "field options.even_without_news"),
    (GOOD + '[options]\nmax_age_hours = 3\n', "field options.max_age_hours"),
    ('task = "newsletter"\n[trigger\n', "not valid TOML"),
])
def test_an_invalid_job_file_names_the_file_and_the_field(tmp_path, text, field):
    path = write_job(tmp_path, "broken", text)
    with pytest.raises(ConfigError) as caught:
        load_job(path)
    assert str(path) in str(caught.value) and field in str(caught.value)


def test_a_newsletter_job_can_send_even_without_news(tmp_path):
    assert shipped()["newsletter"].options["even_without_news"] is False
    spec = load_job(write_job(tmp_path, "weekly", GOOD + "[options]\neven_without_news = true\n"))
    assert spec.options["even_without_news"] is True


@pytest.mark.parametrize("text, message", [
    ('task = "newsletter"\n[trigger]\ntype = "interval"\nhour = 1\n', "not an interval field"),
    ('task = "newsletter"\n[trigger]\ntype = "cron"\nhours = 9\n', "not a cron field"),
])
def test_a_misplaced_trigger_field_is_named_in_proper_english(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        load_job(write_job(tmp_path, "broken", text))


def test_a_proof_must_point_at_a_newsletter_job(tmp_path):
    write_job(tmp_path, "weekly", GOOD)
    write_job(tmp_path, "proof", 'task = "proof"\n[trigger]\ntype = "cron"\nhour = 14\n'
              '[options]\nnewsletter_job = "newsletter"\n')
    with pytest.raises(ConfigError, match=r"proof\.toml: field options\.newsletter_job"):
        load_jobs(tmp_path)
    write_job(tmp_path, "newsletter", GOOD)
    assert [s.id for s in load_jobs(tmp_path)] == ["newsletter", "proof", "weekly"]


def test_an_invalid_job_file_stops_the_scheduler_with_one_line(tmp_path, sqlite_url):
    jobs = tmp_path / "jobs"
    write_job(jobs, "newsletter", GOOD.replace("hour = 9", "hour = 9\nminute = 61"))
    env = {"MAILER_DATABASE_URL": sqlite_url, "MAILER_JOBS_DIR": str(jobs),
           "MAILER_SECRET_KEY": "k" * 32}
    result = CliRunner().invoke(main, ["--config", str(REPO / "mailer.toml"), "scheduler", "run"],
                                env=env)
    assert result.exit_code == 1
    assert "newsletter.toml: field trigger.minute" in result.output


@pytest.mark.parametrize("setting, value, says", [
    ("MAILER_SECRET_KEY", "", "MAILER_SECRET_KEY"),
    ("MAILER_PROVIDER", "postmarc", "unknown provider 'postmarc'"),
    ("MAILER_PROVIDER", "postmark", "MAILER_PROVIDER_KEY"),
])
def test_settings_a_job_needs_stop_the_scheduler_at_start(tmp_path, sqlite_url, setting, value,
                                                          says):
    # The scheduler started, synced hourly and failed only at the Wednesday proof or the
    # Thursday newsletter, when it was too late to fix the key or the provider; the note
    # about it could not even be mailed through an unknown provider.
    env = {"MAILER_DATABASE_URL": sqlite_url, "MAILER_JOBS_DIR": str(REPO / "jobs"),
           "MAILER_SECRET_KEY": "k" * 32, setting: value}
    result = CliRunner().invoke(main, ["--config", str(REPO / "mailer.toml"), "scheduler", "run"],
                                env=env)
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and says in lines[0], result.output


def test_jobs_list_json_shows_next_runs_in_local_time(sqlite_url):
    env = {"MAILER_DATABASE_URL": sqlite_url, "MAILER_NOW": "2026-10-24T12:00"}
    result = CliRunner().invoke(main, ["--config", str(REPO / "mailer.toml"), "jobs", "list",
                                       "--json"], env=env)
    assert result.exit_code == 0, result.output
    rows = {r["id"]: r for r in json.loads(result.output)}
    assert set(rows) == set(shipped())
    assert {"id", "task", "trigger", "next_run"} <= set(rows["newsletter"])
    # Thursday 29 October is after the change to winter time: +01:00, still 09:00.
    assert rows["newsletter"]["next_run"] == "2026-10-29T09:00:00+01:00"
    assert rows["proof"]["next_run"] == "2026-10-28T14:00:00+01:00"
    assert rows["sync-content"]["next_run"] == "2026-10-24T13:00:00+02:00"
    assert rows["newsletter"]["last_status"] is None
    text = CliRunner().invoke(main, ["--config", str(REPO / "mailer.toml"), "jobs", "list"],
                              env=env)
    assert "2026-10-29T09:00:00+01:00" in text.output and "newsletter" in text.output


def test_the_newsletter_stays_at_nine_through_a_year_of_dst_changes():
    spec = shipped()["newsletter"]
    start, end = datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)
    fires = list(fire_times(spec, start, end))
    assert len(fires) == 53  # 2026 has 53 Thursdays
    assert all(f.astimezone(AMS).strftime("%a %H:%M") == "Thu 09:00" for f in fires)
    utc_hours = {f.date().isoformat(): f.astimezone(UTC).hour for f in fires}
    assert utc_hours["2026-03-26"] == 8 and utc_hours["2026-04-02"] == 7  # CET -> CEST
    assert utc_hours["2026-10-22"] == 7 and utc_hours["2026-10-29"] == 8  # CEST -> CET
    weeks = [f.astimezone(AMS).isocalendar()[:2] for f in fires]
    assert len(set(weeks)) == len(weeks)


def test_a_simulated_clock_stepping_hourly_fires_each_run_once():
    """What the scheduler's `fire` does each time it wakes: the latest fire time up to now."""
    spec = shipped()["newsletter"]
    now, end = datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 11, 30, tzinfo=UTC)
    ran = []
    while now < end:
        later = now + timedelta(minutes=37)  # an odd step crosses every hour boundary
        fire = latest_fire(spec, now, later)
        if fire is not None:
            assert fire_count(spec, now, later) == 1
            ran.append(fire)
        now = later
    assert ran == list(fire_times(spec, datetime(2026, 3, 1, tzinfo=UTC), end))
    assert len(ran) == 39
    assert all(f.astimezone(AMS).hour == 9 for f in ran)


def cron_job(tmp_path, hour, minute=30):
    text = f'task = "purge-pending"\n[trigger]\ntype = "cron"\nhour = {hour}\nminute = {minute}\n'
    return load_job(write_job(tmp_path, "nightly", text))


def test_a_nonexistent_local_time_fires_an_hour_later_on_the_clock(tmp_path):
    spec = cron_job(tmp_path, 2)
    fires = list(fire_times(spec, datetime(2026, 3, 27, 12, tzinfo=AMS),
                            datetime(2026, 3, 31, 12, tzinfo=AMS)))
    local = [f.astimezone(AMS).strftime("%m-%d %H:%M%z") for f in fires]
    # 02:30 does not exist on 29 March: it fires once, at 03:30 CEST (01:30 UTC).
    assert local == ["03-28 02:30+0100", "03-29 03:30+0200", "03-30 02:30+0200",
                     "03-31 02:30+0200"]


def test_a_doubled_local_time_fires_once_at_its_first_occurrence(tmp_path):
    spec = cron_job(tmp_path, 2)
    fires = list(fire_times(spec, datetime(2026, 10, 23, 12, tzinfo=AMS),
                            datetime(2026, 10, 27, 12, tzinfo=AMS)))
    local = [f.astimezone(AMS).strftime("%m-%d %H:%M%z") for f in fires]
    assert local == ["10-24 02:30+0200", "10-25 02:30+0200", "10-26 02:30+0100",
                     "10-27 02:30+0100"]
    # APScheduler's own chaining (previous fire time in, next out) agrees.
    chained, fire = [], spec.trigger.get_next_fire_time(None, fires[0])
    while fire <= fires[-1]:
        chained.append(fire.astimezone(UTC))  # PEP 495: a time in the fold never == across zones
        fire = spec.trigger.get_next_fire_time(fire, fire)
    assert chained == fires


def test_an_interval_job_counts_elapsed_time_across_the_change(tmp_path):
    text = 'task = "sync-content"\n[trigger]\ntype = "interval"\nhours = 1\n'
    spec = load_job(write_job(tmp_path, "sync", text))
    fires = list(fire_times(spec, datetime(2026, 10, 25, 0, 30, tzinfo=AMS),
                            datetime(2026, 10, 25, 4, 30, tzinfo=AMS)))
    gaps = {b - a for a, b in zip(fires, fires[1:], strict=False)}
    assert gaps == {timedelta(hours=1)} and len(fires) == 5  # 02:00 happens twice, runs twice


def test_the_latest_of_many_fire_times_is_found_without_walking_them_all(tmp_path):
    text = 'task = "sync-content"\n[trigger]\ntype = "interval"\nseconds = 1\n'
    spec = load_job(write_job(tmp_path, "often", text))
    after = datetime(2026, 1, 1, tzinfo=UTC)
    until = datetime(2026, 12, 3, 8, 0, 0, 500000, tzinfo=UTC)
    assert latest_fire(spec, after, until) == datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
    assert fire_count(spec, after, until) == 1000  # capped
    assert latest_fire(spec, until, until + timedelta(milliseconds=100)) is None
