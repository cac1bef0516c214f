"""End to end in Debian's Chromium: subscribe, confirm from the mail, change preferences,
unsubscribe through the newsletter's link, come back; axe-core on every page.

Screenshots go to test-artifacts/ (git-ignored) for people to look at.
"""

from __future__ import annotations

import email
import json
import re
import threading
from email.policy import default
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from mailer.app import App
from mailer.clock import FixedClock, parse_instant
from mailer.compose import issue_moment
from mailer.sending import send_issue, store_issue
from mailer.sync import sync_source
from mailer.web import create_app
from tests.conftest import DEMO_NOW, REPO, make_settings
from tests.webhelpers import csrf_of, link_in, mails_in

pytestmark = pytest.mark.browser
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = REPO / "test-artifacts" / "web"


class LateApp:
    """A WSGI app set after the server is bound, so the app's base_url knows the port.

    It reads the whole answer and closes the app's iterable before the server writes: when
    a browser follows a redirect and resets the connection, werkzeug's development server
    raises while draining the socket and never calls close(), which is when the subscribe
    form queues its mail (gunicorn closes the iterable whatever happened to the socket)."""

    wsgi = None

    def __call__(self, environ, start_response):
        answer = self.wsgi(environ, start_response)
        try:
            return [b"".join(answer)]
        finally:
            if hasattr(answer, "close"):
                answer.close()


@pytest.fixture
def site(tmp_path, sqlite_url):
    holder = LateApp()
    server = make_server("127.0.0.1", 0, holder, threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"
    app = App(make_settings(tmp_path, sqlite_url, base_url=base),
              FixedClock(parse_instant(DEMO_NOW)))
    holder.wsgi = create_app(app)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield app, holder.wsgi, base
    server.shutdown()
    thread.join(10)
    app.engine.dispose()


@pytest.fixture
def browser_page():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} missing: install Debian's chromium (.ci/run does)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        context = browser.new_context(locale="nl-NL", viewport={"width": 1000, "height": 900})
        yield context.new_page()
        browser.close()


@pytest.fixture
def cookieless_page(tmp_path):
    """A Chromium page whose profile blocks all cookies, as strict privacy settings do."""
    from playwright.sync_api import sync_playwright

    profile = tmp_path / "chromium-profile"
    (profile / "Default").mkdir(parents=True)
    (profile / "Default" / "Preferences").write_text(json.dumps(
        {"profile": {"default_content_setting_values": {"cookies": 2}}}))
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, locale="nl-NL",
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield context.pages[0] if context.pages else context.new_page()
        assert context.cookies() == []  # nothing got through the block
        context.close()


class Checker:
    """Runs axe-core on a page and saves a screenshot, numbering them in order."""

    def __init__(self, page):
        from axe_playwright_python.sync_playwright import Axe

        self.page, self.axe, self.count = page, Axe(), 0
        ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def check(self, name: str) -> None:
        self.count += 1
        self.page.screenshot(path=ARTIFACTS / f"{self.count:02d}-{name}.png", full_page=True)
        violations = self.axe.run(self.page).response["violations"]
        bad = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
               for v in violations if v["impact"] in ("serious", "critical")]
        assert not bad, f"axe on {name} ({self.page.url}): {bad}"


def send_newsletter(app: App) -> list[email.message.EmailMessage]:
    for name, source in app.sources():
        assert sync_source(app.engine, name, source, app.clock).ok
    issue = store_issue(app, issue_moment(app.settings, app.clock, None))
    send_issue(app, issue)
    folder = app.settings.path(app.settings.outbox_dir) / f"issue-{issue.id}"
    return [email.message_from_bytes(p.read_bytes(), policy=default)
            for p in sorted(folder.glob("*.eml"))], issue


def test_subscriber_journey_in_chromium(site, browser_page):
    app, web, base = site
    page, checker = browser_page, Checker(browser_page)

    page.goto(f"{base}/aanmelden")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Direct naar de inhoud"
    checker.check("aanmelden")
    page.fill("#email", "geen-adres")
    page.click("button[type=submit]")
    assert page.locator("#email-fout").is_visible()
    assert page.get_attribute("#email", "aria-invalid") == "true"
    checker.check("aanmelden-fout")

    page.fill("#email", "anna@example.org")
    page.fill("#naam", "Anna de Boer")
    page.check("#onderdeel-magazine")
    page.check("#thema-onderwijs")
    page.click("button[type=submit]")
    assert page.locator("h1").inner_text() == "Kijk in je mailbox"
    checker.check("kijk-in-je-mailbox")

    web.extensions["weerbaarnl.mail"].join()
    confirmation = mails_in(app.settings.outbox_dir)[-1]
    page.goto(link_in(confirmation, "bevestigen"))
    checker.check("bevestigen")
    page.click("text=Ja, ik wil WeerbaarNL ontvangen")
    assert page.locator("h1").inner_text() == "Gelukt, je bent aangemeld"
    checker.check("bevestigd")

    page.click("text=Kies welke onderdelen")
    assert page.is_checked("#onderdeel-magazine") and not page.is_checked("#onderdeel-agenda")
    page.uncheck("#onderdeel-magazine")
    page.uncheck("#thema-onderwijs")
    page.click("text=Voorkeuren opslaan")
    assert page.locator("#onderdelen-fout").is_visible()
    checker.check("voorkeuren-fout")
    page.check("#onderdeel-agenda")
    page.check("#thema-jeugdhulp")
    page.click("text=Voorkeuren opslaan")
    assert "opgeslagen" in page.locator("[role=status]").inner_text()
    checker.check("voorkeuren-opgeslagen")

    messages, issue = send_newsletter(app)
    mine = [m for m in messages if m["To"].addresses[0].addr_spec == "anna@example.org"]
    assert len(mine) == 1, "anna gets the issue once"
    header_url = re.search(r"<(https?://[^>]+)>", mine[0]["List-Unsubscribe"]).group(1)
    assert mine[0]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    html = mine[0].get_body(preferencelist=("html",)).get_content()
    assert "Uit het magazine" not in html  # she chose the agenda only
    body_link = re.search(r'href="([^"]+/afmelden/[^"]+)"', html).group(1)

    page.goto(body_link)
    checker.check("afmelden")
    page.click("button:has-text('Afmelden')")
    assert page.locator("h1").inner_text() == "Je bent afgemeld"
    checker.check("afgemeld")
    one_click = page.request.post(header_url, form={"List-Unsubscribe": "One-Click"},
                                  max_redirects=0)
    assert one_click.status == 200  # RFC 8058 POST: idempotent, no redirect

    page.click("text=Meld je weer aan via je voorkeuren")
    page.click("button:has-text('Weer aanmelden')")
    assert "Welkom terug" in page.locator("[role=status]").inner_text()
    checker.check("weer-aangemeld")

    page.goto(f"{base}/archief")
    entry = page.locator(f"a[href='/archief/{issue.period}']").inner_text()
    assert entry.startswith(f"Nr. {issue.number}: ") and entry.lower().count("nr.") == 1
    checker.check("archief")
    page.click(f"a[href='/archief/{issue.period}']")
    assert "Beste lezer," in page.content()
    assert page.get_by_text("Bekijk deze e-mail in je browser").count() == 0
    assert page.get_by_text("omdat je je hebt aangemeld").count() == 0
    checker.check("archief-nummer")
    page.get_by_role("link", name="Meld je aan", exact=True).click()
    assert page.url == f"{base}/aanmelden"

    response = page.goto(f"{base}/afmelden/niet-echt")
    assert response.status == 400
    checker.check("foute-link")


def test_reloading_the_answer_to_the_form_posts_nothing_again(site, browser_page):
    app, web, base = site
    page = browser_page
    posts = []
    page.on("request", lambda r: r.method == "POST" and posts.append(r.url))
    page.goto(f"{base}/aanmelden")
    page.fill("#email", "anna@example.org")
    page.click("button[type=submit]")
    assert page.locator("h1").inner_text() == "Kijk in je mailbox"
    page.reload()  # a refresh must not post the form again: that sends another mail
    assert page.locator("h1").inner_text() == "Kijk in je mailbox"
    assert posts == [f"{base}/aanmelden"]
    page.go_back()
    page.go_forward()
    assert page.locator("h1").inner_text() == "Kijk in je mailbox"
    assert posts == [f"{base}/aanmelden"]
    web.extensions["weerbaarnl.mail"].join()
    assert len(mails_in(app.settings.outbox_dir)) == 1


FOCUS_RING = """() => {
  const e = document.activeElement, s = getComputedStyle(e);
  let parent = e.parentElement, bg = "rgba(0, 0, 0, 0)";
  while (parent && (bg = getComputedStyle(parent).backgroundColor) === "rgba(0, 0, 0, 0)")
    parent = parent.parentElement;
  return {what: e.id || e.textContent.trim().slice(0, 40), style: s.outlineStyle,
          width: parseFloat(s.outlineWidth), ring: s.outlineColor,
          behind: parent ? bg : "rgb(255, 255, 255)"};
}"""


def contrast(first: str, second: str) -> float:
    """The WCAG contrast ratio of two CSS rgb() colours."""
    def luminance(css: str) -> float:
        channels = [int(c) / 255 for c in re.findall(r"\d+", css)[:3]]
        r, g, b = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
                   for c in channels]
        return 0.2126 * r + 0.7152 * g + 0.0722 * b
    light, dark = sorted((luminance(first), luminance(second)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_every_focus_ring_stands_out_from_what_is_behind_it(site, browser_page):
    """WCAG 1.4.11: a focus indicator needs 3:1 against the colours next to it."""
    app, web, base = site
    page = browser_page
    page.set_viewport_size({"width": 360, "height": 800})
    page.goto(f"{base}/aanmelden")
    seen = []
    for _ in range(40):  # once round the page, to the body or back to the skip link
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement === document.body"):
            break
        ring = page.evaluate(FOCUS_RING)
        if seen and ring["what"] == seen[0]["what"]:
            break
        seen.append(ring)
    assert any(r["what"] == "Aanmelden" for r in seen), seen  # the button was reached
    for ring in seen:
        assert ring["style"] != "none" and ring["width"] >= 2, ring
        assert contrast(ring["ring"], ring["behind"]) >= 3, ring


def test_confirm_preferences_and_unsubscribe_in_chromium_with_cookies_blocked(
        site, cookieless_page):
    app, web, base = site
    page = cookieless_page
    page.goto(f"{base}/aanmelden")  # the public form keeps its cookie-bound CSRF token
    page.fill("#email", "anna@example.org")
    page.click("button[type=submit]")
    assert page.locator("h1").inner_text() == "Formulier verlopen"
    form = web.test_client()  # so Anna subscribed in a browser that takes cookies
    token = csrf_of(form.get("/aanmelden").text)
    form.post("/aanmelden", data={"csrf_token": token, "email": "anna@example.org"}).close()
    web.extensions["weerbaarnl.mail"].join()
    confirm = link_in(mails_in(app.settings.outbox_dir)[-1], "bevestigen")

    # and opens the link in her mail app, which blocks cookies
    forged = page.request.post(confirm, form={})
    assert forged.status == 400 and status_of(app) == "pending"
    page.goto(confirm)
    page.click("text=Ja, ik wil WeerbaarNL ontvangen")
    assert page.locator("h1").inner_text() == "Gelukt, je bent aangemeld"
    assert status_of(app) == "active"

    page.click("text=Kies welke onderdelen")
    forged = page.request.post(page.url, form={"actie": "opslaan", "onderdelen": "agenda"})
    assert forged.status == 400
    page.uncheck("#onderdeel-magazine")
    page.click("text=Voorkeuren opslaan")
    assert "opgeslagen" in page.locator("[role=status]").inner_text()
    assert not page.is_checked("#onderdeel-magazine") and page.is_checked("#onderdeel-agenda")

    page.click("text=Afmelden voor WeerbaarNL")
    page.click("button:has-text('Afmelden')")
    assert page.locator("h1").inner_text() == "Je bent afgemeld"
    assert status_of(app) == "unsubscribed"


def status_of(app: App, email: str = "anna@example.org") -> str:
    from mailer.store.subscribers import find_by_email

    with app.engine.connect() as conn:
        return find_by_email(conn, email).status.value
