"""`mailer preview --serve`: real HTTP against the server, real file edits, polled versions."""

from __future__ import annotations

import pytest
import requests

from mailer.app import App
from mailer.models import Preferences
from mailer.preview_server import PreviewServer, segments
from mailer.settings import with_overrides
from tests.conftest import make_settings
from tests.editor_support import editable_sources
from tests.polling import wait_for


@pytest.fixture
def server(tmp_path, sqlite_url, clock):
    content, templates = editable_sources(tmp_path)
    settings = with_overrides(make_settings(tmp_path, sqlite_url), content_dir=content,
                              templates_dir=templates)
    config = tmp_path / "mailer.toml"
    config.write_text("# watched like the real config file\n")
    srv = PreviewServer(lambda: App(settings, clock), None, config)
    srv.start()
    srv.files = (content, templates, config)
    yield srv
    srv.stop()


def version(srv: PreviewServer) -> int:
    return requests.get(srv.url + "version", timeout=5).json()["version"]


def test_page_shows_html_and_text_side_by_side_with_reload_script(server):
    page = requests.get(server.url, timeout=30)
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    assert 'id="html-part"' in page.text and 'id="text-part"' in page.text
    assert 'fetch("/version"' in page.text and "<script src" not in page.text
    assert "Controle" in page.text
    mail = requests.get(server.url + "mail", timeout=30)
    assert mail.headers["Content-Type"].startswith("text/html") and "Uit het magazine" in mail.text
    text = requests.get(server.url + "text", timeout=30)
    assert text.headers["Content-Type"].startswith("text/plain") and "AGENDA" in text.text.upper()


def test_editing_a_template_bumps_the_version_and_the_page_changes(server):
    _, templates, _ = server.files
    before = version(server)
    template = templates / "newsletter.mjml.j2"
    template.write_text(template.read_text().replace("Uit het magazine", "Nieuw in het magazine"))
    wait_for(lambda: version(server) > before, "a version bump after a template edit")
    assert "Nieuw in het magazine" in requests.get(server.url + "mail", timeout=30).text


def test_editing_content_and_settings_bumps_the_version(server):
    content, _, config = server.files
    start = version(server)
    article = next((content / "magazine").glob("*apeldoorn*.md"))
    article.write_text(article.read_text().replace("Samenwerking in de keten",
                                                   "Samen optrekken in de keten"))
    wait_for(lambda: version(server) > start, "a version bump after a content edit")
    assert "Samen optrekken in de keten" in requests.get(server.url + "text", timeout=30).text
    after_content = version(server)
    config.write_text(config.read_text() + "# changed\n")
    wait_for(lambda: version(server) > after_content, "a version bump after a settings edit")


def test_template_error_is_shown_on_the_page_and_fixing_it_recovers(server):
    _, templates, _ = server.files
    template = templates / "newsletter.mjml.j2"
    good = template.read_text()
    start = version(server)
    template.write_text(good.replace("{{ list_name }}</h1>", "{{ list_name </h1>", 1))
    wait_for(lambda: version(server) > start, "a version bump after breaking the template")
    broken = requests.get(server.url, timeout=30)
    assert broken.status_code == 500 and 'id="problem"' in broken.text
    assert 'fetch("/version"' in broken.text  # keeps polling, so the fix reloads it
    template.write_text(good)
    wait_for(lambda: requests.get(server.url, timeout=30).status_code == 200, "recovery")


def test_segment_switch_renders_each_preference_set(server):
    keys = dict(segments(server._build.app))
    assert len(keys) == 3 * 8  # (both, magazine, agenda) x (all themes + 7 themes)
    page = requests.get(server.url, timeout=30).text
    assert page.count("<option") == len(keys)
    agenda_only = Preferences(frozenset({"agenda"}), frozenset()).key()
    mail = requests.get(server.url + "mail", params={"segment": agenda_only}, timeout=30).text
    assert "Agenda" in mail and "Uit het magazine" not in mail
    shown = requests.get(server.url, params={"segment": agenda_only}, timeout=30).text
    assert "selected>Agenda, alle thema" in shown
    # The header names the subject and preheader this segment's readers get.
    assert "Uit het magazine" not in shown and "Samenwerking in de keten" not in shown
    unknown = requests.get(server.url + "mail", params={"segment": "s=spam"}, timeout=30)
    assert unknown.status_code == 404


@pytest.mark.browser
def test_browser_reloads_by_itself_after_an_edit(server):
    from playwright.sync_api import sync_playwright

    from mailer.screenshots import CHROMIUM_ARGS

    _, templates, _ = server.files
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=server._build.app.settings.chromium,
                                     args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(server.url)
            frame = page.frame_locator("#html-part")
            frame.get_by_text("Uit het magazine").wait_for()
            template = templates / "newsletter.mjml.j2"
            template.write_text(template.read_text().replace("Uit het magazine",
                                                             "Vers uit het magazine"))
            # No navigation by the test: the page's own polling script must reload it.
            frame.get_by_text("Vers uit het magazine").wait_for(timeout=20_000)
            assert page.locator("#version").inner_text() != "0"
        finally:
            browser.close()


def test_preview_serve_command_runs_as_a_real_process(tmp_path, sqlite_url):
    import os
    import signal
    import subprocess
    import sys

    from tests.conftest import REPO

    env = {**os.environ, "PYTHONPATH": str(REPO), "MAILER_DATABASE_URL": sqlite_url,
           "MAILER_SECRET_KEY": "k" * 32, "MAILER_NOW": "2026-12-03T09:00"}
    process = subprocess.Popen(
        [sys.executable, "-m", "mailer", "--config", str(REPO / "mailer.toml"), "preview",
         "--serve", "--port", "0"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, text=True)
    try:
        first_line = process.stdout.readline()
        assert first_line.startswith("Preview on http://127.0.0.1:"), first_line
        url = first_line.split()[2]
        page = requests.get(url, timeout=30)
        assert page.status_code == 200 and "Uit het magazine" in requests.get(
            url + "mail", timeout=30).text
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0


def test_a_content_file_with_a_mistake_is_named_on_the_page(server):
    """A Markdown file with a mistake is not synced (a new one never shows, an edited one
    keeps its last good version); the page says which file and why."""
    content, _, _ = server.files
    article = next((content / "magazine").glob("*apeldoorn*.md"))
    start = version(server)
    article.write_text(article.read_text().replace("\nurl:", "\nadres:", 1))
    wait_for(lambda: version(server) > start, "a version bump after the faulty edit")
    page = requests.get(server.url, timeout=30).text
    assert article.name in page and "missing required field &#x27;url&#x27;" in page


def test_a_sent_week_is_served_as_stored_and_says_so(tmp_path, sqlite_url, clock):
    """As plain `mailer preview`: a segment its readers got is the stored rendering, not
    laid out again from the content as edited since; one nobody got says it is."""
    from mailer.cli.demo import add_sample_subscribers
    from mailer.compose import issue_moment
    from mailer.sending import send_issue, store_issue
    from mailer.store import outbox_fill
    from mailer.sync import sync_source

    content, templates = editable_sources(tmp_path)
    settings = with_overrides(make_settings(tmp_path, sqlite_url), content_dir=content,
                              templates_dir=templates)
    app = App(settings, clock)
    for name, source in app.sources():
        assert sync_source(app.engine, name, source, app.clock).ok
    add_sample_subscribers(app)
    issue = store_issue(app, issue_moment(settings, clock, None))
    assert send_issue(app, issue).finished
    with app.engine.connect() as conn:
        stored = outbox_fill.load_renders(conn, issue.id)
    nobody = next(key for key, _ in segments(app) if key not in stored)
    article = next((content / "magazine").glob("*apeldoorn*.md"))
    article.write_text(article.read_text().replace("Samenwerking in de keten",
                                                   "Een kop van na het versturen"))
    app.engine.dispose()
    srv = PreviewServer(lambda: App(settings, clock), None, tmp_path / "mailer.toml")
    srv.start()
    try:
        mail = requests.get(srv.url + "mail", timeout=30).text
        assert "Samenwerking in de keten" in mail
        assert "Een kop van na het versturen" not in mail
        page = requests.get(srv.url, timeout=30).text
        assert "Dit nummer is al verstuurd: dit is het opgeslagen nummer" in page
        other = requests.get(srv.url, params={"segment": nobody}, timeout=30).text
        assert "Dit nummer is al verstuurd, maar niemand kreeg dit segment" in other
    finally:
        srv.stop()
