"""`mailer subscribers ...` and `mailer serve` as an operator runs them."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.conftest import REPO, run_mailer
from tests.test_cli import invoke
from tests.webhelpers import link_in, mails_in


@pytest.fixture
def env(tmp_path, sqlite_url):
    return {"MAILER_DATABASE_URL": sqlite_url, "MAILER_SECRET_KEY": "k" * 32,
            "MAILER_NOW": "2026-12-03T09:00", "MAILER_OUTBOX_DIR": str(tmp_path / "outbox")}


def test_add_pending_sends_a_confirmation(env, tmp_path):
    result = invoke(["subscribers", "add", "Anna@Example.ORG", "--name", "Anna",
                     "--themes", "onderwijs"], env)
    assert result.exit_code == 0, result.output
    assert "Added Anna@example.org as pending" in result.output
    assert "/bevestigen/" in link_in(mails_in(tmp_path / "outbox")[0], "bevestigen")
    again = invoke(["subscribers", "add", "Anna@example.org"], env)
    assert again.exit_code == 1 and "already a subscriber" in again.output
    bad = invoke(["subscribers", "add", "x@example.org", "--themes", "astrologie"], env)
    assert bad.exit_code == 2 and "unknown theme(s) astrologie" in bad.output


def test_an_address_in_another_case_or_one_we_cannot_mail_is_not_added(env, tmp_path):
    assert invoke(["subscribers", "add", "kim@example.org"], env).exit_code == 0
    again = invoke(["subscribers", "add", "KIM@example.org"], env)
    assert again.exit_code == 1 and "already a subscriber" in again.output
    accented = invoke(["subscribers", "add", "jörg@example.org"], env)
    assert accented.exit_code == 2 and "before the @-sign" in accented.output
    csv_path = tmp_path / "in.csv"
    csv_path.write_text("email,name,sections,themes,audience\n"
                        "jörg@example.org,Jörg,,,\n"
                        "Kim@Example.org,Kim,,,\n", encoding="utf-8")
    result = invoke(["subscribers", "import", str(csv_path), "--confirmed",
                     "--consent-note", "lijst"], env)
    assert result.exit_code == 2 and "line 2" in result.output.lower()
    listed = json.loads(invoke(["subscribers", "export", "--format", "json"], env).output)
    assert [s["email"] for s in listed] == ["kim@example.org"]


def test_json_gives_a_date_not_yet_reached_as_null_and_csv_as_empty(env):
    invoke(["subscribers", "add", "p@example.org"], env)  # pending: never confirmed
    exported = json.loads(invoke(["subscribers", "export", "--format", "json"], env).output)
    listed = json.loads(invoke(["subscribers", "list", "--json"], env).output)
    for record in (exported[0], listed[0]):
        assert record["confirmed_at"] is None and record["unsubscribed_at"] is None
        assert record["created_at"] == "2026-12-03T08:00:00+00:00"
    csv_line = invoke(["subscribers", "export"], env).output.splitlines()[1]
    assert csv_line.endswith(",2026-12-03T08:00:00+00:00,,")


def test_confirmed_needs_a_consent_note(env):
    result = invoke(["subscribers", "add", "b@example.org", "--confirmed"], env)
    assert result.exit_code == 2 and "--consent-note" in result.output


def test_import_export_show_forget(env, tmp_path):
    csv_path = tmp_path / "in.csv"
    csv_path.write_text("email,name,sections,themes,audience\n"
                        "a@example.org,Anna,magazine,,onderwijs\n"
                        "broken,,,\n"
                        "A@example.org,,agenda,,\n"
                        "b@example.org,Bas,agenda,jeugdhulp,\n", encoding="utf-8")
    result = invoke(["subscribers", "import", str(csv_path), "--confirmed",
                     "--consent-note", "aanmeldlijst training 2026-10-01"], env)
    assert result.exit_code == 2  # some rows rejected: visible in the exit status
    assert "in.csv line 3: An email address must have an @-sign." in result.output
    assert "2 added (active), 1 duplicate row(s) merged, 0 already present, 1 rejected" \
        in result.output
    exported = json.loads(invoke(["subscribers", "export", "--format", "json"], env).output)
    assert [(r["email"], r["sections"], r["themes"]) for r in exported] == [
        ("a@example.org", ["agenda", "magazine"], ["onderwijs"]),
        ("b@example.org", ["agenda"], ["jeugdhulp"])]
    out = tmp_path / "out.csv"
    assert invoke(["subscribers", "export", "--out", str(out)], env).exit_code == 0
    assert out.read_text().splitlines()[1].startswith("a@example.org,Anna,active,agenda;magazine")
    shown = json.loads(invoke(["subscribers", "show", "a@example.org", "--json"], env).output)
    assert shown["subscriber"]["status"] == "active"
    assert shown["consent_history"][0]["details"] == {"note": "aanmeldlijst training 2026-10-01"}
    assert invoke(["subscribers", "forget", "a@example.org", "--yes"], env).exit_code == 0
    listed = invoke(["subscribers", "list"], env).output
    assert "a@example.org" not in listed and "1 subscriber(s)" in listed
    gone = json.loads(invoke(["subscribers", "show", "a@example.org", "--json"], env).output)
    assert gone["subscriber"] is None and gone["suppression"]["reason"] == "erased"
    reimport = invoke(["subscribers", "import", str(csv_path), "--confirmed",
                       "--consent-note", "opnieuw"], env)
    assert "line 2: address is suppressed" in reimport.output


def test_access_and_erasure_find_an_address_typed_in_another_case(env):
    invoke(["subscribers", "add", "Anna.de.Vries@example.org", "--name", "Anna",
            "--confirmed", "--consent-note", "formulier"], env)
    invoke(["subscribers", "add", "anna.de.vries@example.org"], env)  # same mailbox again
    shown = json.loads(invoke(["subscribers", "show", "anna.DE.vries@example.org", "--json"],
                              env).output)
    assert shown["subscriber"]["name"] == "Anna"
    erased = invoke(["subscribers", "forget", "ANNA.DE.VRIES@example.org", "--yes"], env)
    assert erased.exit_code == 0 and "Erased ANNA.DE.VRIES@example.org" in erased.output
    listed = invoke(["subscribers", "list", "--json"], env).output
    assert json.loads(listed) == []


def export_file(tmp_path, *lines: str):
    """A file as `subscribers export` writes it, with these subscriber lines."""
    exported = tmp_path / "export.csv"
    exported.write_text(
        "email,name,status,sections,themes,source,created_at,confirmed_at,unsubscribed_at\n"
        + "".join(line + "\n" for line in lines), encoding="utf-8")
    return exported


def import_confirmed(env, exported):
    return invoke(["subscribers", "import", str(exported), "--confirmed",
                   "--consent-note", "verhuizing naar nieuwe server"], env)


def test_importing_an_export_does_not_resubscribe_people_who_left(env, tmp_path):
    result = import_confirmed(env, export_file(
        tmp_path,
        "a@example.org,Anna,active,magazine,,web,2026-01-01T00:00:00+00:00,,",
        "b@example.org,Bas,unsubscribed,magazine,,web,2026-01-01T00:00:00+00:00,,"
        "2026-02-01T00:00:00+00:00",
        "c@example.org,Cor,bounced,agenda,,web,2026-01-01T00:00:00+00:00,,",
        "d@example.org,Dirk,complained,agenda,,web,2026-01-01T00:00:00+00:00,,"))
    assert result.exit_code == 2
    assert "export.csv line 3: status unsubscribed: not imported" in result.output
    assert "1 added (active)" in result.output and "3 rejected" in result.output
    listed = json.loads(invoke(["subscribers", "list", "--json"], env).output)
    assert [r["email"] for r in listed] == ["a@example.org"]


def test_importing_an_export_as_confirmed_does_not_activate_who_never_confirmed(env, tmp_path):
    exported = export_file(
        tmp_path,
        "a@example.org,Anna,active,magazine,,web,2026-01-01T00:00:00+00:00,"
        "2026-01-01T00:05:00+00:00,",
        "p@example.org,Piet,pending,magazine,,web,2026-01-01T00:00:00+00:00,,")
    result = import_confirmed(env, exported)
    assert result.exit_code == 2
    assert "export.csv line 3: status pending: never confirmed" in result.output
    assert "1 added (active)" in result.output and "1 rejected" in result.output
    listed = json.loads(invoke(["subscribers", "list", "--json"], env).output)
    assert [r["email"] for r in listed] == ["a@example.org"]
    # Without --confirmed the same line is welcome: it gets a confirmation mail.
    pending = invoke(["subscribers", "import", str(exported)], env)
    assert pending.exit_code == 0 and "1 added (pending)" in pending.output
    assert json.loads(invoke(["subscribers", "show", "p@example.org", "--json"],
                             env).output)["subscriber"]["status"] == "pending"




def test_revoke_links_finds_an_address_typed_in_another_case(env):
    invoke(["subscribers", "add", "Bas@example.org", "--confirmed", "--consent-note", "x"], env)
    result = invoke(["subscribers", "revoke-links", "bas@example.org"], env)
    assert result.exit_code == 0, result.output
    shown = json.loads(invoke(["subscribers", "show", "Bas@example.org", "--json"], env).output)
    assert shown["consent_history"][-1]["event"] == "links_revoked"


def test_a_csv_that_is_not_utf8_is_reported_not_a_traceback(env, tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes("email,name\na@example.org,Anna\nj@example.org,Jörg\n".encode("cp1252"))
    result = invoke(["subscribers", "import", str(path)], env)
    assert result.exit_code == 2
    assert "excel.csv line 3: not UTF-8 text; save the file as CSV UTF-8" in result.output
    assert "0 added" in result.output  # nothing half-imported with garbled names


def test_a_csv_saved_by_dutch_excel_with_semicolons_is_imported(env, tmp_path):
    # Excel with Dutch regional settings saves "CSV" with ';' between fields. The import
    # said the header had no 'email' column and imported nobody.
    path = tmp_path / "excel.csv"
    path.write_bytes("\ufeffemail;name;sections;themes\r\n"
                     "a@example.org;Anna;magazine;onderwijs,jeugdhulp\r\n"
                     "j@example.org;\"Jörg; de Vries\";;\r\n".encode())
    result = invoke(["subscribers", "import", str(path), "--confirmed", "--consent-note", "x"],
                    env)
    assert result.exit_code == 0, result.output
    assert "2 added" in result.output
    anna = json.loads(invoke(["subscribers", "show", "a@example.org", "--json"], env).output)
    assert anna["subscriber"]["sections"] == ["magazine"]
    assert sorted(anna["subscriber"]["themes"]) == ["jeugdhulp", "onderwijs"]
    jorg = json.loads(invoke(["subscribers", "show", "j@example.org", "--json"], env).output)
    assert jorg["subscriber"]["name"] == "Jörg; de Vries"


def test_a_csv_without_an_email_column_names_the_header_it_found(env, tmp_path):
    path = tmp_path / "list.csv"
    path.write_text("adres,naam\na@example.org,Anna\n", encoding="utf-8")
    result = invoke(["subscribers", "import", str(path)], env)
    assert result.exit_code == 2
    assert ("list.csv line 1: header must contain an 'email' column, found: adres, naam"
            in result.output)


def test_purge_command(env):
    invoke(["subscribers", "add", "p@example.org"], env)
    later = {**env, "MAILER_NOW": "2027-01-10T09:00"}
    result = invoke(["subscribers", "purge"], later)
    assert result.exit_code == 0 and "Purged 1 pending subscriber(s)" in result.output


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_runs_gunicorn(env, tmp_path):
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "mailer", "--config", str(REPO / "mailer.toml"), "serve",
         "--port", str(port), "--workers", "2"],
        env={**os.environ, **env, "PYTHONPATH": str(REPO)}, cwd=REPO,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz") as response:
                    body = json.loads(response.read())
                    server = response.headers["Server"]
                break
            except OSError:
                assert process.poll() is None, process.stderr.read().decode()
                assert time.monotonic() < deadline, "server did not come up"
                time.sleep(0.1)  # polling a real condition with a deadline
        assert body == {"status": "ok"} and "gunicorn" in server
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_serve_without_key_is_one_clear_line(env):
    result = invoke(["serve"], {**env, "MAILER_SECRET_KEY": ""})
    assert result.exit_code == 1 and "MAILER_SECRET_KEY" in result.output


def test_serve_refuses_a_database_without_schema_like_the_worker_does(env, tmp_path):
    # Serving would start, answer /healthz with 200 and fail every page with a 500.
    fresh = {**env, "MAILER_DATABASE_URL": f"sqlite:///{tmp_path / 'new.db'}"}
    result = run_mailer(["serve", "--port", "0", "--workers", "1"], env=fresh, timeout=60)
    assert result.returncode == 1, result.stderr
    assert "database schema is not up to date" in result.stderr
    assert "run `mailer init` first" in result.stderr


def test_an_empty_email_cell_is_reported_as_empty(env, tmp_path):
    path = tmp_path / "in.csv"
    path.write_text("email,name\na@example.org,Anna\n,Bas\n  ,Cor\n", encoding="utf-8")
    result = invoke(["subscribers", "import", str(path)], env)
    assert result.exit_code == 2
    assert "in.csv line 3: the email column is empty" in result.output
    assert "in.csv line 4: the email column is empty" in result.output
    assert "@-sign" not in result.output
    empty = invoke(["subscribers", "add", " "], env)
    assert empty.exit_code == 2 and "The email address is empty." in empty.output
