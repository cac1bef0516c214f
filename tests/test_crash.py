"""Crash safety: SIGKILL a real `mailer send` at random points, resume, count at the provider.

Each active subscriber must have received the issue exactly once, apart from duplicates
the outbox itself declares (`possible_duplicate`). The kill points are chosen by waiting
on the emulator (k accepted batches, or a batch accepted whose answer never comes), not
by sleeping.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys

import pytest
from sqlalchemy import select

from mailer.models import OutboxStatus
from mailer.store.db import make_engine
from mailer.store.tables import outbox, subscribers
from tests.conftest import DEMO_NOW, REPO, TEST_KEY, run_mailer
from tests.delivery_support import add_subscribers, provider_env, start_emulator

SUBSCRIBERS = 240
SEED = int(os.environ.get("MAILER_CRASH_SEED", random.randrange(1 << 30)))


def mailer_env(db_url, tmp_path, name, emulator):
    return {"MAILER_DATABASE_URL": db_url, "MAILER_SECRET_KEY": TEST_KEY,
            "MAILER_NOW": DEMO_NOW, "MAILER_OUTBOX_DIR": str(tmp_path / "outbox"),
            "MAILER_BATCH_SIZE": "20", "MAILER_CONCURRENCY": "2",
            "MAILER_REQUEST_TIMEOUT": "20", **provider_env(name, emulator)}


def start_send(env):
    return subprocess.Popen([sys.executable, "-m", "mailer", "send", "--yes"], cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO), **env},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def prepared(loaded_app):
    add_subscribers(loaded_app.engine, SUBSCRIBERS, loaded_app.clock.now())
    with loaded_app.engine.connect() as conn:
        return {e.lower() for e in conn.execute(select(subscribers.c.email)).scalars()}


# "in_flight": the kill comes while a batch the provider accepted awaits its answer (the
# hard case); "between": after k accepted batches, wherever the threads happen to be.
@pytest.mark.parametrize("name,how", [
    ("postmark", "in_flight"), ("sendgrid", "in_flight"), ("mailgun", "in_flight"),
    ("brevo", "in_flight"), ("sendgrid", "between"),
])
def test_sigkill_then_resume_delivers_to_everyone_once(loaded_app, tmp_path, name, how):
    rng = random.Random(f"{SEED}-{name}-{how}")
    everyone = prepared(loaded_app)
    emulator = start_emulator(name)
    try:
        env = mailer_env(loaded_app.settings.database_url, tmp_path, name, emulator)
        k = rng.randint(1, 6)
        if how == "in_flight":  # batch k+1 is accepted, but its answer never arrives
            emulator.fail_next("hang", count=1, accept=True, seconds=60)
        process = start_send(env)
        try:
            if how == "in_flight":
                # the hanging call is the first; let the other thread get k batches in too
                assert emulator.wait_for_batches(k + 1, timeout=60), process.stdout
            else:
                assert emulator.wait_for_batches(k, timeout=60), process.stdout
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait()
        before = sum(emulator.received.values())
        assert before < len(everyone), f"seed {SEED}: the send finished before the kill"
        command = ["issues", "resume", "1"] if rng.random() < 0.5 else ["send", "--yes"]
        done = run_mailer(command, env=env)
        assert done.returncode == 0, done.stdout + done.stderr
    finally:
        emulator.stop()
    engine = make_engine(loaded_app.settings.database_url)
    with engine.connect() as conn:
        rows = conn.execute(select(outbox.c.email, outbox.c.status,
                                   outbox.c.possible_duplicate)).all()
    engine.dispose()
    assert {r.email.lower() for r in rows} == everyone
    assert {r.status for r in rows} == {OutboxStatus.SENT.value}, f"seed {SEED}"
    assert set(emulator.received) == everyone, f"seed {SEED}: someone got nothing"
    declared = {r.email.lower() for r in rows if r.possible_duplicate}
    assert set(emulator.duplicates()) <= declared, f"seed {SEED}: undeclared duplicates"
    if name in ("postmark", "brevo", "mailgun"):  # reconciled at the provider: no guessing
        assert not emulator.duplicates()


def test_sigterm_finishes_and_records_the_batches_in_flight(loaded_app, tmp_path):
    everyone = prepared(loaded_app)
    emulator = start_emulator("sendgrid")
    try:
        env = mailer_env(loaded_app.settings.database_url, tmp_path, "sendgrid", emulator)
        process = start_send(env)
        try:
            assert emulator.wait_for_batches(2, timeout=60)
        finally:
            process.send_signal(signal.SIGTERM)
            output, _ = process.communicate(timeout=60)
    finally:
        emulator.stop()
    assert process.returncode == 0, output
    assert "stopped on request" in output
    engine = make_engine(loaded_app.settings.database_url)
    with engine.connect() as conn:
        rows = conn.execute(select(outbox.c.email, outbox.c.status)).all()
    engine.dispose()
    assert not [r for r in rows if r.status == OutboxStatus.SENDING.value]
    sent = {r.email.lower() for r in rows if r.status == OutboxStatus.SENT.value}
    assert sent == set(emulator.received) and len(sent) < len(everyone)
