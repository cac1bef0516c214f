"""The public archive: web versions of sent issues read as web pages, for anyone."""

from __future__ import annotations

import email
import re
import threading
from email.policy import default

import pytest
from sqlalchemy import select, update

from mailer.compose import issue_moment
from mailer.models import Preferences
from mailer.render.personalize import MARKER
from mailer.sending import send_issue, store_issue
from mailer.store import issues as issue_store
from mailer.store.tables import issue_web_versions, issues, items, subscribers
from mailer.web import create_app
from mailer.web.archive import archive_title

VIEW_IN_BROWSER = "Bekijk deze e-mail in je browser"
WHY_YOU_GET_IT = "omdat je je hebt aangemeld"


@pytest.fixture
def sent(loaded_app):
    """The sample issue sent to the sample subscribers: (app, issue, mails as sent)."""
    issue = store_issue(loaded_app, issue_moment(loaded_app.settings, loaded_app.clock, None))
    send_issue(loaded_app, issue)
    folder = loaded_app.settings.path(loaded_app.settings.outbox_dir) / f"issue-{issue.id}"
    mails = [email.message_from_bytes(p.read_bytes(), policy=default)
             for p in sorted(folder.glob("*.eml"))]
    assert mails
    return loaded_app, issue, mails


def html_of(message) -> str:
    return message.get_body(preferencelist=("html",)).get_content()


def test_the_web_version_reads_as_a_web_page_that_invites_to_subscribe(sent):
    app, issue, mails = sent
    page = create_app(app).test_client().get(f"/archief/{issue.period}")
    assert page.status_code == 200
    assert VIEW_IN_BROWSER not in page.text
    assert WHY_YOU_GET_IT not in page.text
    assert not re.search(r'href="[^"]*/(afmelden|voorkeuren)\b', page.text)
    subscribe = app.links.url("aanmelden")
    invitation = re.search(rf'<a href="{re.escape(subscribe)}"[^>]*>([^<]+)</a>', page.text)
    assert invitation and "Meld je aan" in invitation.group(1)
    assert f'href="{app.links.url("archief")}"' in page.text
    assert "Beste lezer," in page.text
    for message in mails:  # what subscribers got stays the mail it was
        html = html_of(message)
        assert VIEW_IN_BROWSER in html and WHY_YOU_GET_IT in html
        assert re.search(r'href="[^"]*/afmelden/[\w.-]{20,}"', html)
        assert f'href="{subscribe}"' not in html


def test_no_personal_value_can_reach_the_web_version(sent):
    app, issue, mails = sent
    web_html = app.renderer.web_html(loaded_issue(app, issue))
    assert MARKER.findall(web_html) == []  # nothing there to fill with a person's values
    page = create_app(app).test_client().get(f"/archief/{issue.period}").text
    with app.engine.connect() as conn:
        people = conn.execute(select(subscribers.c.email, subscribers.c.name)).all()
    personal = {value for person in people for value in person if value}
    for message in mails:
        html = html_of(message)
        links = re.findall(r'href="[^"]+/(?:afmelden|voorkeuren)/([^"]+)"', html)
        greetings = set(re.findall(r"Beste [^,<]+,", html)) - {"Beste lezer,"}
        assert links and greetings, "each mail carries its reader's links and name"
        personal.update(links, greetings)
    assert [value for value in personal if value in page] == []
    assert "%%" not in page


def loaded_issue(app, issue):
    with app.engine.connect() as conn:
        return issue_store.load_issue(conn, issue_store.issue_by_id(conn, issue.id))


def test_the_web_version_is_there_without_an_all_sections_mailing(sent):
    """Nobody got every section: the web version is rendered all the same."""
    from mailer.store.tables import issue_renders

    app, issue, _ = sent
    with app.engine.begin() as conn:
        conn.execute(issue_renders.delete().where(
            issue_renders.c.segment_key == Preferences().key()))
    page = create_app(app).test_client().get(f"/archief/{issue.period}")
    assert page.status_code == 200 and "Uit het magazine" in page.text
    assert VIEW_IN_BROWSER not in page.text


@pytest.mark.parametrize("subject, title", [
    ("WeerbaarNL nr. 7: Samen optrekken in de klas", "Nr. 7: Samen optrekken in de klas"),
    ("Zomereditie", "Nr. 7: Zomereditie"),
    ("Nr. 7: extra dikke editie", "Nr. 7: extra dikke editie"),
    ("WeerbaarNL nummer 7, de zomer", "WeerbaarNL nummer 7, de zomer"),
    ("Veertien vragen over nr. 17", "Nr. 7: Veertien vragen over nr. 17"),
    ("WeerbaarNL nr. 7", "Nr. 7"),
])
def test_an_archive_title_names_the_number_once(subject, title):
    assert archive_title(subject, 7, "WeerbaarNL") == title


def test_the_archive_index_names_each_number_once(sent):
    app, issue, _ = sent
    client = create_app(app).test_client()
    links = re.findall(r'<a href="/archief/[^"]+">([^<]+)</a>', client.get("/archief").text)
    assert len(links) == 1
    assert links[0].startswith(f"Nr. {issue.number}: ")
    assert len(re.findall(rf"\bnr\. {issue.number}\b", links[0], re.IGNORECASE)) == 1
    with app.engine.begin() as conn:
        conn.execute(update(issues).where(issues.c.id == issue.id)
                     .values(subject="Zomereditie"))
    index = client.get("/archief").text
    assert f">Nr. {issue.number}: Zomereditie</a>" in index


def test_the_archive_shows_the_issue_as_sent_not_as_edited_since(sent, monkeypatch):
    """The web version is kept when sending begins: an item edited after the send does not
    change what the archive shows as sent, and no request renders it again."""
    app, issue, _ = sent
    lead = issue.magazine[0].item
    with app.engine.begin() as conn:
        conn.execute(update(items).where(items.c.source == lead.source,
                                         items.c.source_id == lead.source_id)
                     .values(title="Een nieuwe kop voor het archief"))
    renders = []
    monkeypatch.setattr(app.renderer, "web_html", lambda i: renders.append(i) or "")
    client = create_app(app).test_client()
    page = client.get(f"/archief/{issue.period}").text
    assert lead.title in page and "Een nieuwe kop voor het archief" not in page
    assert client.get(f"/archief/{issue.period}").text == page
    assert renders == []
    with app.engine.connect() as conn:
        assert page == issue_store.kept_web_version(conn, issue.id)


def test_the_kept_web_version_holds_nothing_of_any_subscriber(sent):
    app, issue, mails = sent
    with app.engine.connect() as conn:
        kept = issue_store.kept_web_version(conn, issue.id)
        people = conn.execute(select(subscribers.c.email, subscribers.c.name)).all()
    personal = {value for person in people for value in person if value}
    for message in mails:
        html = html_of(message)
        personal.update(re.findall(r'href="[^"]+/(?:afmelden|voorkeuren)/([^"]+)"', html))
    assert kept and MARKER.findall(kept) == []
    assert [value for value in personal if value in kept] == []
    assert not re.search(r"/(afmelden|voorkeuren)/", kept) and "Beste lezer," in kept


def test_a_resumed_send_keeps_the_first_web_version(sent):
    app, issue, _ = sent
    with app.engine.begin() as conn:
        first = issue_store.kept_web_version(conn, issue.id)
        issue_store.keep_web_version(conn, issue.id, "<p>later</p>", app.clock.now())
    send_issue(app, issue)  # a rerun of the finished send
    with app.engine.connect() as conn:
        assert issue_store.kept_web_version(conn, issue.id) == first


def test_an_issue_sent_before_web_versions_were_kept_is_rendered_from_its_items(sent):
    app, issue, _ = sent
    with app.engine.begin() as conn:
        conn.execute(issue_web_versions.delete())
    page = create_app(app).test_client().get(f"/archief/{issue.period}")
    assert page.status_code == 200 and issue.magazine[0].item.title in page.text
    assert VIEW_IN_BROWSER not in page.text


def test_a_send_that_crashes_right_after_it_began_leaves_its_web_version_kept(
        loaded_app, monkeypatch):
    """The scheduler marks the issue sending and keeps its web version in one step: a
    crash before the send itself leaves no sending issue the archive renders afresh."""
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from mailer import tasks
    from mailer.jobs import load_jobs
    from mailer.models import IssueStatus

    def crash(*_args, **_kwargs):
        raise RuntimeError("the process died here")

    monkeypatch.setattr(tasks, "send_issue", crash)
    specs = {s.id: s for s in load_jobs(loaded_app.settings.path(loaded_app.settings.jobs_dir))}
    fire = datetime(2026, 12, 3, 9, 0, tzinfo=ZoneInfo("Europe/Amsterdam")).astimezone(UTC)
    ctx = tasks.TaskContext(loaded_app, specs["newsletter"], fire, specs, threading.Event())
    with pytest.raises(RuntimeError, match="died"):
        tasks.run_newsletter(ctx)
    with loaded_app.engine.connect() as conn:
        [record] = issue_store.list_issues(conn)
        kept = issue_store.kept_web_version(conn, record.id)
    assert record.status is IssueStatus.SENDING
    assert kept and record.subject in kept
    monkeypatch.setattr(loaded_app.renderer, "web_html", crash)  # the archive renders nothing
    page = create_app(loaded_app).test_client().get(f"/archief/{record.period}")
    assert page.status_code == 200 and page.text == kept
