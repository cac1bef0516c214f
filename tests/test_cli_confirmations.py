"""Confirmation mails that `mailer subscribers import|add` could not send: who got none is
reported, and adding the address again sends it (within the per-address mail limit)."""

import json
import socket

import pytest

from tests.test_cli import invoke
from tests.webhelpers import mails_in


@pytest.fixture
def env(tmp_path, sqlite_url):
    return {"MAILER_DATABASE_URL": sqlite_url, "MAILER_SECRET_KEY": "k" * 32,
            "MAILER_NOW": "2026-12-03T09:00", "MAILER_OUTBOX_DIR": str(tmp_path / "outbox")}


@pytest.fixture
def provider_down(env):
    """The environment with an SMTP provider nobody listens for."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return {**env, "MAILER_PROVIDER": "smtp", "MAILER_SMTP_URL": f"smtp://u:p@127.0.0.1:{port}"}


@pytest.fixture
def pend_csv(tmp_path):
    path = tmp_path / "pend.csv"
    path.write_text("email,name\na@example.org,Anna\nb@example.org,Bas\n", encoding="utf-8")
    return path


def events_of(env, address: str) -> list[str]:
    shown = invoke(["subscribers", "show", address, "--json"], env)
    return [e["event"] for e in json.loads(shown.output)["consent_history"]]


def recipients(env) -> list[str]:
    from pathlib import Path

    return sorted(m["To"].addresses[0].addr_spec for m in mails_in(Path(env["MAILER_OUTBOX_DIR"])))


def test_an_import_with_the_provider_down_says_who_got_no_mail_and_a_rerun_sends_it(
        env, provider_down, pend_csv):
    failed = invoke(["subscribers", "import", str(pend_csv)], provider_down)
    assert failed.exit_code == 1
    assert "2 added (pending)" in failed.output
    assert "a@example.org: smtp: cannot connect" in failed.output
    assert "b@example.org: not tried" in failed.output
    assert "run the same command again" in failed.output
    assert events_of(env, "a@example.org") == ["subscribe"]  # no mail, no "sent" entry

    again = invoke(["subscribers", "import", str(pend_csv)], env)
    assert again.exit_code == 0, again.output
    assert "2 already present" in again.output
    assert "2 pending address(es) get their confirmation mail again" in again.output
    assert recipients(env) == ["a@example.org", "b@example.org"]
    assert events_of(env, "a@example.org") == ["subscribe", "confirmation_sent"]

    third = invoke(["subscribers", "import", str(pend_csv)], env)
    assert third.exit_code == 0 and "confirmation mail again" not in third.output
    assert len(recipients(env)) == 2  # their links still work: nothing sent twice


def test_add_sends_the_confirmation_again_only_when_none_works(env, provider_down):
    failed = invoke(["subscribers", "add", "p@example.org"], provider_down)
    assert failed.exit_code == 1 and "p@example.org: smtp: cannot connect" in failed.output
    resent = invoke(["subscribers", "add", "p@example.org"], env)
    assert resent.exit_code == 0, resent.output
    assert "p@example.org is pending; sending its confirmation mail again" in resent.output
    assert recipients(env) == ["p@example.org"]
    twice = invoke(["subscribers", "add", "p@example.org"], env)
    assert twice.exit_code == 1 and "already a subscriber" in twice.output
    assert "confirmation mail went out on" in twice.output
    expired = {**env, "MAILER_NOW": "2026-12-11T09:00"}  # past confirm_max_age_days (7)
    assert invoke(["subscribers", "add", "p@example.org"], expired).exit_code == 0
    assert recipients(env) == ["p@example.org", "p@example.org"]


def test_mails_that_never_went_out_do_not_use_up_the_address_limit(env, provider_down,
                                                                   pend_csv):
    for _ in range(4):  # confirm_limit_per_address is 3 an hour
        assert invoke(["subscribers", "import", str(pend_csv)], provider_down).exit_code == 1
    assert invoke(["subscribers", "import", str(pend_csv)], env).exit_code == 0
    assert recipients(env) == ["a@example.org", "b@example.org"]


def test_over_the_mail_limit_the_report_says_who_got_no_mail(env):
    limited = {**env, "MAILER_CONFIRM_LIMIT_PER_ADDRESS": "1",
               "MAILER_RATE_LIMIT_WINDOW_MINUTES": str(14 * 24 * 60)}
    assert invoke(["subscribers", "add", "p@example.org"], limited).exit_code == 0
    expired = {**limited, "MAILER_NOW": "2026-12-11T09:00"}  # link gone, limit still full
    result = invoke(["subscribers", "add", "p@example.org"], expired)
    assert result.exit_code == 1
    assert "p@example.org: mail limit reached" in result.output
    assert recipients(env) == ["p@example.org"]
