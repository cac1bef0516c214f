"""Benchmark: how long the editor tools take on the sample issue.

    python benchmarks/editor_tools.py [--rounds 5]

Prints wall seconds for: rendering one preview, the offline lint checks (caniemail,
contrast, images, lengths, text links), the SpamAssassin score, the live preview's
reaction to a template save (save -> new version visible on /version -> page rendered),
and the three screenshots in Chromium. Uses a temporary SQLite database and copies of the
content and templates; nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import requests  # noqa: E402

from mailer.app import App  # noqa: E402
from mailer.clock import FixedClock, parse_instant  # noqa: E402
from mailer.compose import compose_issue  # noqa: E402
from mailer.preview import build_preview  # noqa: E402
from mailer.preview_server import PreviewServer  # noqa: E402
from mailer.review import ReviewOptions, review  # noqa: E402
from mailer.screenshots import take_screenshots  # noqa: E402
from mailer.settings import load_settings, with_overrides  # noqa: E402
from mailer.spam import spam_score  # noqa: E402
from mailer.store.db import upgrade  # noqa: E402
from mailer.sync import sync_source  # noqa: E402


def timed(fn, rounds: int) -> tuple[float, float]:
    """Median and max wall seconds of fn over rounds."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), max(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    rounds = parser.parse_args().rounds
    folder = Path(tempfile.mkdtemp(prefix="editor-bench-"))
    shutil.copytree(REPO / "content", folder / "content")
    shutil.copytree(REPO / "templates", folder / "templates")
    settings = with_overrides(
        load_settings(REPO / "mailer.toml", environ={}), secret_key="b" * 32,
        database_url=f"sqlite:///{folder / 'mailer.db'}", content_dir=folder / "content",
        templates_dir=folder / "templates")
    app = App(settings, FixedClock(parse_instant("2026-12-03T09:00")))
    upgrade(app.engine)
    for name, source in app.sources():
        sync_source(app.engine, name, source, app.clock)
    with app.engine.connect() as conn:
        issue = compose_issue(conn, settings, app.clock.now())
    preview = build_preview(app, issue)
    server, save_and_wait = reload_latency(app, folder)
    rows = [
        ("render preview", timed(lambda: build_preview(app, issue), rounds)),
        ("offline lint", timed(lambda: review(app, issue, preview, ReviewOptions(spam=False)),
                               rounds)),
        ("spamassassin -L -t", timed(lambda: spam_score(preview.eml), max(1, rounds // 2))),
        ("save -> reloaded page", timed(save_and_wait, rounds)),
        ("3 screenshots", timed(lambda: take_screenshots(
            preview.html, folder / "shots", settings.chromium), 1)),
    ]
    server.stop()
    print(f"{'step':24} {'median s':>9} {'max s':>7}")
    for name, (median, worst) in rows:
        print(f"{name:24} {median:9.2f} {worst:7.2f}")
    app.engine.dispose()
    shutil.rmtree(folder)


def reload_latency(app: App, folder: Path):
    """A running server, and a function that saves the template and waits for the change."""
    server = PreviewServer(lambda: App(app.settings, app.clock), None, None)
    server.start()
    template = folder / "templates" / "newsletter.mjml.j2"
    counter = iter(range(1_000_000))

    def save_and_wait() -> None:
        marker = f"Uit het magazine {next(counter)}"
        before = requests.get(server.url + "version", timeout=5).json()["version"]
        text = template.read_text()
        template.write_text(text.replace(text[text.index("Uit het magazine"):
                                              text.index("</h2>", text.index("Uit het"))], marker))
        while requests.get(server.url + "version", timeout=5).json()["version"] == before:
            time.sleep(0.01)
        assert marker in requests.get(server.url + "mail", timeout=30).text

    return server, save_and_wait


if __name__ == "__main__":
    main()
