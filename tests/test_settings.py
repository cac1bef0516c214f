from pathlib import Path

import pytest

from mailer.clock import FixedClock, SystemClock, clock_for
from mailer.errors import ConfigError
from mailer.settings import load_settings

REPO = Path(__file__).resolve().parent.parent


def test_environment_overrides_the_file():
    s = load_settings(REPO / "mailer.toml", environ={
        "MAILER_DATABASE_URL": "postgresql+psycopg://u@h/db", "MAILER_PROVIDER": "smtp",
        "MAILER_BATCH_SIZE": "50", "MAILER_EDITORS": "a@x.nl, b@x.nl",
    })
    assert s.database_url == "postgresql+psycopg://u@h/db"
    assert s.provider == "smtp" and s.batch_size == 50
    assert s.editors == ["a@x.nl", "b@x.nl"]
    assert s.list_name == "WeerbaarNL"  # from the file


def test_invalid_value_names_the_setting_and_variable():
    with pytest.raises(ConfigError, match=r"batch_size \(MAILER_BATCH_SIZE\).*whole number"):
        load_settings(REPO / "mailer.toml", environ={"MAILER_BATCH_SIZE": "veel"})


@pytest.mark.parametrize("name, value, why", [
    ("from_email", "weerbaarnl", "must have an @-sign"),
    ("reply_to", "redactie platformjep.example.nl", "must have an @-sign"),
    ("unsubscribe_mailto", "afmelden@", "something after the @-sign"),
    ("editors", "redactie@x.nl, geen-adres", "must have an @-sign"),
    # Checked as subscribers' addresses are (email-validator), not by a shape of its own:
    ("from_email", "Redactie <redactie@x.nl>", "angle brackets"),
    ("reply_to", "redactie@platformjep.test", "special-use or reserved name"),
    ("from_email", "jörg@platformjep.example.nl", "cannot be mailed"),
    ("from_email", "weerbaarnl@platformjep.example.nl ", "spaces around"),
])
def test_an_address_setting_that_is_no_address_is_refused(name, value, why):
    with pytest.raises(ConfigError, match=rf"setting {name}: not an e-mail address.*{why}"):
        load_settings(REPO / "mailer.toml", environ={f"MAILER_{name.upper()}": value})


def test_address_settings_keep_what_was_configured():
    s = load_settings(REPO / "mailer.toml", environ={"MAILER_FROM_EMAIL": "Nieuws@Example.ORG"})
    assert s.from_email == "Nieuws@Example.ORG"


def test_secret_in_the_file_is_refused(tmp_path):
    config = tmp_path / "mailer.toml"
    config.write_text('[mailer]\nsecret_key = "hunter2hunter2hunter2"\n')
    with pytest.raises(ConfigError, match="secret_key: secrets are read only from the environment"):
        load_settings(config, environ={})


def test_unknown_setting_is_refused(tmp_path):
    config = tmp_path / "mailer.toml"
    config.write_text('[delivery]\nbatch_sise = 3\n')
    with pytest.raises(ConfigError, match=r"unknown setting \[delivery\] batch_sise"):
        load_settings(config, environ={})


def test_relative_paths_are_anchored_at_the_config_file(tmp_path):
    config = tmp_path / "mailer.toml"
    config.write_text('[mailer]\ndatabase_url = "sqlite:///data/m.db"\n')
    s = load_settings(config, environ={})
    assert s.resolved_database_url() == f"sqlite:///{tmp_path}/data/m.db"


def test_missing_secret_key_says_how_to_set_it():
    s = load_settings(REPO / "mailer.toml", environ={})
    with pytest.raises(ConfigError, match="MAILER_SECRET_KEY"):
        s.require_secret_key()


def test_mailer_now_fixes_the_clock():
    s = load_settings(REPO / "mailer.toml", environ={"MAILER_NOW": "2026-03-29T03:30"})
    clock = clock_for(s.now)
    assert isinstance(clock, FixedClock)
    assert clock.now().isoformat() == "2026-03-29T01:30:00+00:00"  # CEST, after the change
    assert isinstance(clock_for(None), SystemClock)


def test_invalid_now_is_reported():
    with pytest.raises(ConfigError, match="MAILER_NOW"):
        load_settings(REPO / "mailer.toml", environ={"MAILER_NOW": "gisteren"})
