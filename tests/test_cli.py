import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from mailer.cli import main

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def env(tmp_path, sqlite_url):
    return {"MAILER_DATABASE_URL": sqlite_url, "MAILER_SECRET_KEY": "k" * 32,
            "MAILER_NOW": "2026-12-03T09:00", "MAILER_OUTBOX_DIR": str(tmp_path / "outbox"),
            "MAILER_PREVIEW_DIR": str(tmp_path / "preview")}


def invoke(args, env, input=None):
    result = CliRunner().invoke(main, ["--config", str(REPO / "mailer.toml"), *args], env=env,
                                input=input, catch_exceptions=False)
    return result


def test_demo_runs_twice_in_the_same_folder(tmp_path):
    folder = tmp_path / "demo"
    first = invoke(["demo", "--dir", str(folder)], env={"MAILER_NOW": ""})
    assert first.exit_code == 0, first.output
    assert "Subscribers: 12 added" in first.output
    assert re.search(r"Issue nr\. 1 \(2026-W49\): sent", first.output)
    assert len(list((folder / "outbox").rglob("*.eml"))) == 12
    assert (folder / "preview" / "issue.html").is_file()
    second = invoke(["demo", "--dir", str(folder)], env={"MAILER_NOW": ""})
    assert second.exit_code == 0, second.output
    assert "Subscribers: 0 added" in second.output
    assert len(list((folder / "outbox").rglob("*.eml"))) == 12


def test_sync_preview_lint_send(env, tmp_path):
    assert invoke(["init"], env).exit_code == 0
    synced = invoke(["content", "sync"], env)
    assert synced.exit_code == 0 and "local: fetched 18, new 18" in synced.output
    listed = json.loads(invoke(["content", "list", "--json"], env).output)
    assert len(listed) == 18 and {"title", "url", "starts", "published"} <= set(listed[0])
    shown = invoke(["preview", "--out", str(tmp_path / "p")], env)
    assert shown.exit_code == 0, shown.output
    assert "Lint: 0 error(s)" in shown.output
    assert {p.name for p in (tmp_path / "p").iterdir()} == {"issue.html", "issue.txt", "issue.eml"}
    assert invoke(["lint"], env).exit_code == 0
    no_one = invoke(["send", "--yes"], env)
    assert no_one.exit_code == 0 and "sent 0" in no_one.output


def test_each_test_send_keeps_its_own_file(env, tmp_path):
    # Test mails were all numbered 0, so the file provider wrote a second proof to the
    # same address over the first.
    invoke(["init"], env)
    invoke(["content", "sync"], env)
    for _ in range(2):
        result = invoke(["send", "--test", "redactie@example.org"], env)
        assert result.exit_code == 0 and "redactie@example.org: sent" in result.output
    files = sorted((tmp_path / "outbox").rglob("*.eml"))
    assert len(files) == 2, files
    assert all(re.fullmatch(r"\d{8,}-redactie@example\.org\.eml", f.name) for f in files)


def test_send_asks_for_confirmation(env):
    invoke(["init"], env)
    invoke(["content", "sync"], env)
    aborted = invoke(["send"], env, input="n\n")
    assert aborted.exit_code == 1 and "Aborted" in aborted.output


def test_preview_serve_refuses_options_it_would_ignore(env, tmp_path):
    for extra in (["--out", str(tmp_path / "p")], ["--screenshot"], ["--diff"]):
        result = invoke(["preview", "--serve", "--port", "0", *extra], env)
        assert result.exit_code == 2 and "cannot be combined with --serve" in result.output


def test_nothing_new_exits_zero(env):
    invoke(["init"], env)
    result = invoke(["preview", "--date", "2027-06-01"], env)
    assert result.exit_code == 0 and "Nothing new to send" in result.output


def test_lint_json_is_json_also_when_there_is_nothing_new(env):
    invoke(["init"], env)
    result = invoke(["lint", "--json", "--date", "2027-06-01"], env)
    assert result.exit_code == 0
    assert json.loads(result.output) == {"issue": None, "errors": 0, "warnings": 0,
                                         "findings": []}


def test_a_bad_setting_is_one_clear_line(env):
    result = invoke(["init"], {**env, "MAILER_CONCURRENCY": "0"})
    assert result.exit_code == 1
    assert result.output.strip() == "Error: setting concurrency: must be at least 1, got 0"


def test_a_database_without_schema_says_to_run_init(env, tmp_path):
    fresh = {**env, "MAILER_DATABASE_URL": f"sqlite:///{tmp_path / 'new.db'}"}
    for args in (["issues", "list"], ["subscribers", "list"], ["send", "--dry-run"]):
        result = invoke(args, fresh)
        assert result.exit_code == 1, result.output
        assert result.output.strip() == (
            "Error: the database schema is not up to date: run `mailer init` first")


def test_init_lists_the_revisions_it_applied(env, tmp_path):
    from alembic.script import ScriptDirectory

    from mailer.store.db import alembic_config

    every = sorted(r.revision for r in ScriptDirectory.from_config(
        alembic_config(None)).walk_revisions())
    fresh = {**env, "MAILER_DATABASE_URL": f"sqlite:///{tmp_path / 'new.db'}"}
    first = invoke(["init"], fresh)
    assert first.exit_code == 0, first.output
    listed = re.search(r"Schema upgraded \((.*)\):", first.output).group(1).split(", ")
    assert listed == every  # also 0001 and the revisions below a head, not just the heads
    again = invoke(["init"], fresh)
    assert again.exit_code == 0 and again.output.startswith("Schema up to date (")


def test_an_unreachable_database_is_one_clear_line(env):
    url = "postgresql+psycopg://mailer:geheim@127.0.0.1:1/mailer"
    result = invoke(["issues", "list"], {**env, "MAILER_DATABASE_URL": url})
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "Error: database postgresql+psycopg://mailer:***@127.0.0.1:1/mailer: ")
    assert "geheim" not in result.output


@pytest.mark.parametrize("url, says", [
    ("foo://mailer:geheim@db/mailer", "unknown database kind 'foo'"),
    ("mysql://mailer:geheim@db/mailer", "driver for 'mysql' is not installed"),
])
def test_a_database_url_of_an_unknown_kind_or_driver_is_one_clear_line(env, url, says):
    # An unknown scheme or a driver that is not installed ended in SQLAlchemy's traceback.
    result = CliRunner().invoke(main, ["--config", str(REPO / "mailer.toml"), "issues", "list"],
                                env={**env, "MAILER_DATABASE_URL": url})
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "Error: setting database_url (MAILER_DATABASE_URL): "), result.output
    assert says in lines[0] and "geheim" not in result.output


def test_a_folder_that_cannot_be_written_is_one_clear_line(env, tmp_path):
    invoke(["init"], env)
    invoke(["content", "sync"], env)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    attempts = [
        (["subscribers", "export", "--out", str(blocker / "subs.csv")], env),
        (["preview", "--out", str(blocker / "preview")], env),
        (["send", "--test", "redactie@example.org"],
         {**env, "MAILER_OUTBOX_DIR": str(blocker / "outbox")}),
    ]
    for args, environment in attempts:
        result = invoke(args, environment)
        assert result.exit_code == 1, result.output
        last = result.output.strip().splitlines()[-1]
        assert last.startswith(f"Error: {blocker}/") and last.endswith(": Not a directory")


def test_lint_exits_1_on_errors(env, tmp_path):
    templates = tmp_path / "templates"
    templates.mkdir()
    for name in ("newsletter.mjml.j2", "newsletter.txt.j2"):
        body = (REPO / "templates" / name).read_text()
        templates.joinpath(name).write_text(body.replace("links.unsubscribe", "links.archive"))
    env = {**env, "MAILER_TEMPLATES_DIR": str(templates)}
    invoke(["init"], env)
    invoke(["content", "sync"], env)
    result = invoke(["lint"], env)
    assert result.exit_code == 1
    assert "ERROR   unsubscribe: no unsubscribe link in the HTML part" in result.output


def test_preview_names_the_editorial_file_and_field_with_a_line_break(env, tmp_path):
    content = tmp_path / "content"
    (content / "issues").mkdir(parents=True)
    for sub in ("magazine", "events"):
        (content / sub).symlink_to(REPO / "content" / sub)
    (content / "issues" / "2026-12-03.md").write_text('---\nsubject: "a\\r\\nb"\n---\n')
    env = {**env, "MAILER_CONTENT_DIR": str(content)}
    invoke(["init"], env)
    invoke(["content", "sync"], env)
    shown = invoke(["preview", "--out", str(tmp_path / "p")], env)
    assert shown.exit_code == 1
    assert "2026-12-03.md: het veld subject bevat een regeleinde" in shown.output
