"""The deeper lint: caniemail support, contrast, images, lengths, text links, spam, links."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from click.testing import CliRunner

from mailer.app import App
from mailer.cli import main
from mailer.errors import ConfigError
from mailer.linkcheck import check_image_files, check_links
from mailer.preview import build_preview
from mailer.render.caniemail import check_support, load_support_data
from mailer.render.content_checks import (
    check_images,
    check_subject_and_preheader,
    check_text_links,
)
from mailer.render.contrast import check_contrast, contrast_ratio
from mailer.render.dom import parse_html
from mailer.render.lint import ERROR, WARNING
from mailer.review import ReviewOptions, review
from mailer.settings import with_overrides
from mailer.spam import check_spam, spam_score
from tests.conftest import REPO, make_settings
from tests.editor_support import LocalSite, png_bytes, serve_site, silent_port

pytestmark = pytest.mark.usefixtures("node_modules")

CLIENTS = ("gmail.desktop-webmail", "gmail.android", "outlook.windows", "outlook.outlook-com",
           "apple-mail.ios", "samsung-email.android")


@pytest.fixture(scope="module")
def support():
    return load_support_data(REPO / "node_modules" / "caniemail" / "data" / "caniemail.json")


def page(body: str, head: str = "") -> str:
    return f'<!doctype html><html lang="nl"><head>{head}</head><body>{body}</body></html>'


def caniemail(html: str, support) -> dict[str, object]:
    return {f.message.split(" is not supported")[0]: f
            for f in check_support(html, parse_html(html), support, CLIENTS)}


def test_flex_and_svg_are_errors_naming_clients_and_element(support):
    html = page('<div style="display:flex;color:#000">a</div><svg width="10"></svg>')
    found = caniemail(html, support)
    flex = found["display:flex"]
    assert flex.level == ERROR and "Outlook (Windows)" in flex.message
    assert "display:flex" in flex.element and flex.element.startswith("<div")
    svg = found["Embedded <svg> image"]
    assert svg.level == ERROR and "Gmail (Desktop Webmail)" in svg.message


def test_dark_mode_media_query_is_a_warning_for_gmail(support):
    html = page("<p>x</p>", "<style>@media (prefers-color-scheme: dark) { p { color: #fff; } }"
                "</style>")
    finding = caniemail(html, support)["@media (prefers-color-scheme)"]
    assert finding.level == WARNING and "Gmail (Android)" in finding.message
    assert finding.element == "<style>"


def test_table_layout_with_bgcolor_raises_nothing(support):
    html = page('<table role="presentation" width="600" cellpadding="0" bgcolor="#ffffff">'
                "<tr><td><p>Hallo</p></td></tr></table>")
    assert not [f for f in caniemail(html, support).values() if f.level == ERROR]


def mjml_page(head: str = "", body: str = "") -> str:
    """A message as our pipeline makes it from an MJML document (compiled, CSS inlined)."""
    from mailer.render.newsletter import compile_mjml, inline_css

    return inline_css(compile_mjml(
        '<mjml lang="nl"><mj-head><mj-preview>Voorproefje</mj-preview><mj-attributes>'
        f'<mj-all font-family="Arial" /></mj-attributes>{head}</mj-head><mj-body><mj-section>'
        '<mj-column><mj-text>Hallo</mj-text><mj-image src="https://example.org/a.png" '
        f'alt="Een foto" /></mj-column></mj-section>{body}</mj-body></mjml>'))


def test_what_mjml_writes_into_every_message_is_left_out_unless_asked(support):
    html = mjml_page()
    # Was ten warnings on every issue (doctype, the preview's hiding styles, the reset's
    # outline, the body's word-spacing) that neither an editor nor a template can change.
    assert check_support(html, parse_html(html), support, CLIENTS) == []
    everything = check_support(html, parse_html(html), support, CLIENTS, show_hidden=True)
    titles = {f.message.split(" is not supported")[0] for f in everything}
    assert {"HTML5 doctype", "outline", "word-spacing", "opacity", "overflow"} <= titles
    assert all(f.message.endswith("MJML writes this into every message") for f in everything)


def test_the_same_features_used_by_a_template_or_content_are_still_reported(support):
    html = mjml_page(
        "<mj-style>.kader { outline: 2px solid #154273; }</mj-style>",
        '<mj-section><mj-column><mj-text><div style="opacity:0.8;overflow:hidden">Tekst</div>'
        '<img src="https://example.org/b.png" alt="b" style="outline:1px solid #000">'
        "</mj-text></mj-column></mj-section><mj-raw><p style=\"word-spacing:2px\">x</p></mj-raw>")
    found = caniemail(html, support)
    assert found["outline"].element == "<style>"  # the template's rule, not MJML's reset
    assert found["opacity"].element.startswith('<div style="opacity:0.8')
    assert found["overflow"].element.startswith('<div style="opacity:0.8')
    assert found["word-spacing"].element.startswith("<p")
    assert not any(f.message.endswith("every message") for f in found.values())


def test_unknown_lint_client_is_a_config_error(lint_app):
    bad = App(with_overrides(lint_app.settings, lint_clients=["outlook.windows", "pager.beeper"]),
              lint_app.clock)
    issue = the_issue(bad)
    with pytest.raises(ConfigError, match="pager.beeper"):
        review(bad, issue, build_preview(bad, issue), ReviewOptions(spam=False))


def test_missing_caniemail_data_is_a_warning_not_a_crash(lint_app, tmp_path):
    app = App(with_overrides(lint_app.settings, caniemail_data=tmp_path / "nope.json"),
              lint_app.clock)
    issue = the_issue(app)
    findings = review(app, issue, build_preview(app, issue), ReviewOptions(spam=False))
    missing = [f for f in findings if f.code == "caniemail"]
    assert len(missing) == 1 and missing[0].level == WARNING and "npm ci" in missing[0].message


@pytest.mark.parametrize("body, expected", [
    ('<p style="color:#999999">Grijze tekst</p>', "#999999 on #ffffff"),
    ('<div style="background-color:#ffff00"><p style="color:#ffffff">Geel</p></div>',
     "#ffffff on #ffff00"),
    ('<table><tr><td bgcolor="#154273"><p style="color:#4b5563">Donker</p></td></tr></table>',
     "#4b5563 on #154273"),
    ('<p style="color:#949494;font-size:16px">Klein en licht</p>', "#949494 on #ffffff"),
])
def test_low_contrast_text_is_an_error(body, expected):
    findings = check_contrast(parse_html(page(body)))
    assert len(findings) == 1 and findings[0].level == ERROR
    assert expected in findings[0].message and "4.5:1" in findings[0].message


@pytest.mark.parametrize("body", [
    '<td bgcolor="#154273"><p style="color:#ffffff">Wit op blauw</p></td>',
    '<h1 style="color:#949494;font-size:32px">Groot mag 3:1</h1>',
    '<div style="display:none;color:#ffffff">verborgen voorregel</div>',
    '<p style="color:#1f2937">Gewone tekst</p>',
])
def test_sufficient_or_hidden_text_passes(body):
    assert check_contrast(parse_html(page(f"<table><tr>{body}</tr></table>"))) == []


def test_contrast_ratio_matches_wcag_examples():
    assert contrast_ratio((0, 0, 0), (255, 255, 255)) == pytest.approx(21)
    assert contrast_ratio((0x76, 0x76, 0x76), (255, 255, 255)) == pytest.approx(4.54, abs=0.01)


def test_subject_and_preheader_lengths():
    codes = {(f.code, f.level) for f in check_subject_and_preheader("x" * 70, "kort")}
    assert codes == {("subject", WARNING), ("preheader", WARNING)}
    assert check_subject_and_preheader("", "p" * 50)[0].level == ERROR
    assert check_subject_and_preheader("WeerbaarNL nr. 4: nieuws", "p" * 60) == []
    long = check_subject_and_preheader("Onderwerp", "p" * 141)
    assert [f.code for f in long] == ["preheader"] and "141" in long[0].message


def test_image_checks():
    html = page(
        '<a href="https://x.nl"><img src="https://x.nl/a.png" alt="" width="100"></a>'
        '<img src="https://x.nl/b.png" alt="IMG_2041.jpg" width="300">'
        '<img src="https://x.nl/c.png" alt="Breed" width="800">'
        '<img src="https://x.nl/d.png" alt="Zonder breedte">'
        '<img src="https://x.nl/e.png" alt="Goed" width="552" style="width:552px">')
    found = {(f.element.split('src="')[1][13], f.code, f.level)
             for f in check_images(parse_html(html))}
    assert found == {("a", "alt", ERROR), ("b", "alt", WARNING), ("c", "image-size", ERROR),
                     ("d", "image-size", WARNING)}


def test_text_part_must_hold_every_link():
    html = page('<a href="https://x.nl/een">een</a> <a href="https://x.nl/twee">twee</a> '
                '<a href="mailto:redactie@x.nl?subject=hoi">mail</a>')
    findings = check_text_links(parse_html(html), "Lees https://x.nl/een of mail redactie@x.nl")
    assert [f.code for f in findings] == ["text-links"]
    assert "https://x.nl/twee" in findings[0].message and findings[0].element.startswith("<a")


@pytest.fixture
def lint_app(tmp_path, sqlite_url, clock):
    app = App(make_settings(tmp_path, sqlite_url), clock)
    from mailer.sync import sync_source

    for name, source in app.sources():
        assert sync_source(app.engine, name, source, app.clock).ok
    yield app
    app.engine.dispose()


def the_issue(app):
    from mailer.compose import compose_issue

    with app.engine.connect() as conn:
        return compose_issue(conn, app.settings, app.clock.now())


def test_sample_issue_has_no_errors_with_every_offline_check(lint_app):
    issue = the_issue(lint_app)
    findings = review(lint_app, issue, build_preview(lint_app, issue))
    assert [f for f in findings if f.level == ERROR] == []
    # Nothing an editor cannot act on: what the template does on purpose is left out...
    assert [f for f in findings if f.code == "caniemail"] == []
    # ...but the checks did run: `--all` shows the template's enhancements.
    everything = review(lint_app, issue, build_preview(lint_app, issue),
                        ReviewOptions(spam=False, show_hidden=True))
    enhancements = {f.message.split(" is not supported")[0] for f in everything
                    if f.message.endswith("progressive enhancement that degrades safely")}
    assert enhancements == {"@media", "color-scheme CSS property"}


def test_the_sample_keeps_a_light_colour_scheme_in_a_stylesheet(lint_app):
    # Apple Mail on iOS and Samsung Email read the color-scheme property, not the meta tag.
    html = build_preview(lint_app, the_issue(lint_app)).html
    root = parse_html(html)
    assert any("color-scheme: light only" in (s.text or "") for s in root.iter("style"))
    assert not root.xpath("//meta[@name='color-scheme']")
    assert "color-scheme" not in (root.get("style") or "")  # premailer left it a rule


MEDIA, SCHEME = "@media", "color-scheme CSS property"


@pytest.mark.parametrize("css, reported, hidden", [
    ("@media only screen and (max-width: 479px) { h1 { font-size: 28px !important; } }",
     [], [MEDIA]),
    ("@media screen and (min-width: 480px) { h1 { font-size: 40px; } }", [MEDIA], []),
    ("@media print { h1 { color: #000; } }", [MEDIA], []),
    (":root { color-scheme: light only; }", [], [SCHEME]),
    ("html { color-scheme: light; }", [], [SCHEME]),
    (":root { color-scheme: dark; }", [SCHEME], []),
    ("@media (max-width: 479px) { h1 { display: flex; } }", ["display:flex"], [MEDIA]),
])
def test_safe_progressive_enhancements_are_hidden_unless_asked(support, css, reported, hidden):
    html = page("<h1>x</h1>", f"<style>{css}</style>")
    assert sorted(caniemail(html, support)) == reported
    everything = check_support(html, parse_html(html), support, CLIENTS, show_hidden=True)
    assert [f.message.split(" is not supported")[0] for f in everything
            if f.message.endswith("a progressive enhancement that degrades safely")] == hidden


def test_spamassassin_scores_the_sample_below_a_spammy_message(lint_app):
    issue = the_issue(lint_app)
    sample = build_preview(lint_app, issue).eml
    report = spam_score(sample)
    assert report is not None and report.score < report.required
    spammy = sample.replace(b"Subject: ", b"Subject: FREE MONEY!!! 100% GUARANTEED $$$ ", 1)
    spammy = spammy.replace(b"Beste lezer,", b"Beste lezer, CLICK HERE to claim your FREE "
                            b"prize!!! Act now, limited time, 100% free, no credit card "
                            b"required, risk free, viagra, casino winner!!!", 1)
    worse = spam_score(spammy)
    assert worse.score > report.score
    assert any(points > 0 for points, _, _ in worse.rules)


def test_missing_spamassassin_is_a_warning_finding():
    findings = check_spam(b"Subject: x\r\n\r\nhallo\r\n", command="no-such-spamassassin")
    assert [(f.level, f.code) for f in findings] == [(WARNING, "spam-score")]
    assert "not installed" in findings[0].message


def test_check_links_against_a_local_server():
    site = LocalSite(routes={"/ok": (200, "text/html", b"ok"), "/nohead": (200, "text/html", b"x"),
                             "/gone": (404, "text/html", b"weg")}, head_refused={"/nohead"})
    with serve_site(site), silent_port() as port:
        hang = f"http://127.0.0.1:{port}/hang"
        links = [site.url("/ok"), site.url("/nohead"), site.url("/gone"), hang,
                 site.url("/gone") + "?skip", "mailto:a@b.nl"]
        html = page("".join(f'<a href="{u}">x</a>' for u in links))
        findings = check_links(parse_html(html), timeout=0.5, skip=[site.url("/gone") + "?skip"])
    by_url = {f.message.split(" ")[0]: f for f in findings}
    assert set(by_url) == {site.url("/gone"), hang}
    assert "HTTP 404" in by_url[site.url("/gone")].message
    assert "no answer within 0.5 s" in by_url[hang].message
    assert all(f.level == ERROR and f.element.startswith("<a") for f in findings)


def test_image_files_compared_with_their_shown_width():
    site = LocalSite(routes={
        "/small.png": (200, "image/png", png_bytes(100, 50)),
        "/huge.png": (200, "image/png", png_bytes(2400, 100)),
        "/right.png": (200, "image/png", png_bytes(1104, 100)),
        "/broken.png": (200, "image/png", b"not an image"),
    })
    with serve_site(site):
        html = page("".join(f'<img src="{site.url(p)}" alt="x" width="552">'
                            for p in ("/small.png", "/huge.png", "/right.png", "/broken.png",
                                      "/missing.png")))
        findings = check_image_files(parse_html(html), timeout=5)
    by_image = {f.element.split("/")[3].split('"')[0]: f for f in findings}
    assert set(by_image) == {"small.png", "huge.png", "broken.png", "missing.png"}
    assert "blurry" in by_image["small.png"].message and by_image["small.png"].level == WARNING
    assert "2400 px" in by_image["huge.png"].message
    assert by_image["broken.png"].code == "image-file" and by_image["broken.png"].level == ERROR
    assert by_image["missing.png"].code == "image-unreachable"


def test_lint_json_for_machines(tmp_path, sqlite_url):
    env = {"MAILER_DATABASE_URL": sqlite_url, "MAILER_SECRET_KEY": "k" * 32,
           "MAILER_NOW": "2026-12-03T09:00", "MAILER_PREVIEW_DIR": str(tmp_path / "p")}
    runner = CliRunner()
    config = ["--config", str(REPO / "mailer.toml")]
    assert runner.invoke(main, [*config, "content", "sync"], env=env).exit_code == 0
    result = runner.invoke(main, [*config, "lint", "--json"], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["errors"] == 0 and report["issue"]["period"] == "2026-W49"
    assert report["warnings"] == len(report["findings"])
    assert not [f for f in report["findings"] if f["code"] == "caniemail"]
    result = runner.invoke(main, [*config, "lint", "--json", "--all"], env=env)
    everything = json.loads(result.output)
    assert everything["warnings"] == len(everything["findings"]) > report["warnings"]
    assert set(everything["findings"][0]) == {"level", "code", "message", "element"}
    mjml = [f for f in everything["findings"] if "MJML writes" in f["message"]]
    assert {f["element"] for f in mjml} >= {"<!doctype>"}


def test_lint_exits_1_and_names_the_element_on_errors(tmp_path, sqlite_url, clock):
    app = App(make_settings(tmp_path, sqlite_url), clock)
    issue = replace(the_issue_synced(app), subject="")
    findings = review(app, issue, build_preview(app, issue), ReviewOptions(spam=False))
    assert ("subject", ERROR) in {(f.code, f.level) for f in findings}
    app.engine.dispose()


def the_issue_synced(app):
    from mailer.sync import sync_source

    for name, source in app.sources():
        sync_source(app.engine, name, source, app.clock)
    return the_issue(app)
