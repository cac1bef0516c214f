import os
import re
from dataclasses import replace
from datetime import date
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from mailer.compose import compose_issue, issue_moment
from mailer.models import Preferences
from mailer.preview import build_preview
from mailer.render.lint import has_errors, lint_message
from mailer.render.personalize import PersonalTemplate

GOLDEN = Path(__file__).parent / "golden" / "issue-2026-12-03.txt"


@pytest.fixture
def issue(loaded_app):
    with loaded_app.engine.connect() as conn:
        return compose_issue(conn, loaded_app.settings,
                             issue_moment(loaded_app.settings, loaded_app.clock, date(2026, 12, 3)))


@pytest.fixture
def preview(loaded_app, issue):
    return build_preview(loaded_app, issue)


def test_text_part_matches_the_golden_file(preview):
    # Tokens differ per key; normalise them so the golden file tests layout and content.
    text = re.sub(r"/(afmelden|voorkeuren)/[\w.-]+", r"/\1/TOKEN", preview.text)
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.write_text(text, encoding="utf-8")
    assert text == GOLDEN.read_text(encoding="utf-8")


def test_html_structure(preview, issue):
    html = preview.html
    assert html.lower().startswith("<!doctype html>")
    assert '<html lang="nl"' in html
    assert len(html.encode()) < 90 * 1024
    assert issue.preheader in html
    assert "Beste lezer," in html
    for stored in issue.magazine:
        assert f'href="{stored.item.url}"' in html
    imgs = re.findall(r"<img\b[^>]*>", html)
    assert imgs and all(re.search(r'\balt="[^"]+"', tag) for tag in imgs)
    assert preview.findings == []


def test_every_link_is_https_or_mailto(preview):
    hrefs = re.findall(r'href="([^"]*)"', preview.html)
    assert hrefs and all(h.startswith(("https://", "mailto:")) for h in hrefs)


def test_eml_is_multipart_alternative_with_list_headers(preview):
    message = message_from_bytes(preview.eml, policy=policy.default)
    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe = message["List-Unsubscribe"]
    assert re.fullmatch(r"<https://[^>]+/afmelden/[^>]+>, <mailto:[^>]+>", unsubscribe)
    assert message["List-Id"] == "WeerbaarNL <weerbaarnl.platformjep.example.nl>"
    assert message["Message-ID"].startswith("<") and "@" in message["Message-ID"]


def test_segments_only_show_their_sections_and_themes(loaded_app, issue):
    agenda_only = loaded_app.renderer.render(issue, Preferences(frozenset({"agenda"})))
    assert "Uit het magazine" not in agenda_only.html
    assert all(s.item.title not in agenda_only.text for s in issue.magazine)
    themed = loaded_app.renderer.render(issue, Preferences(themes=frozenset({"onderwijs"})))
    for stored in issue.magazine:
        topics = set(stored.item.topics)
        shown = stored.item.url in themed.html
        assert shown == (not topics or "onderwijs" in topics)


def test_personal_values_are_escaped_in_html_but_not_in_text():
    html = PersonalTemplate.parse("<p>%%greeting%%</p>", escape_html=True)
    text = PersonalTemplate.parse("%%greeting%%", escape_html=False)
    assert html.fill({"greeting": "Beste <Jan> & co,"}) == "<p>Beste &lt;Jan&gt; &amp; co,</p>"
    assert text.fill({"greeting": "Beste <Jan> & co,"}) == "Beste <Jan> & co,"
    with pytest.raises(KeyError):
        html.fill({})


def test_lint_reports_each_problem():
    html = ('<!doctype html><html lang="en"><body><img src="https://x/a.png">'
            '<a href="http://x">x</a> {{ oops }}</body></html>')
    findings = lint_message(html, "tekst", preheader="Hallo", unsubscribe_url="https://u",
                            preferences_url="https://p", budget_kb=90)
    codes = sorted(f.code for f in findings)
    assert codes == ["alt", "lang", "link", "preferences", "preferences", "preheader",
                     "template", "unsubscribe", "unsubscribe"]
    assert has_errors(findings)


def test_lint_reads_the_preheader_as_a_reader_sees_the_page():
    # The HTML's text is read like a summary's: blocks apart, style sheets unseen. Once
    # read as the bare run of text nodes, "Nieuw</div><div>nummer" was "Nieuwnummer".
    def preheader_findings(body: str) -> list[str]:
        html = (f'<!doctype html><html lang="nl"><head><style>.x{{}}</style></head><body>{body}'
                '<a href="https://u">afmelden</a><a href="https://p">voorkeuren</a></body></html>')
        return [f.message for f in lint_message(
            html, "https://u https://p", preheader="Nieuw nummer", unsubscribe_url="https://u",
            preferences_url="https://p", budget_kb=90) if f.code == "preheader"]

    assert preheader_findings("<div>Nieuw</div><div>nummer</div>") == []
    assert preheader_findings("<style>Nieuw nummer</style>") == [
        "preheader text not found in the HTML"]


def test_long_headers_stay_literal_and_lose_no_spaces(preview, issue):
    # Python's folding of long headers splits encoded words at spaces and drops them
    # ("van  ééngezamenlijke"), and it turns a long List-Unsubscribe into encoded words,
    # which no mail client reads as a URL (RFC 2369 needs the literal <https://...>).
    raw = preview.eml.split(b"\r\n\r\n", 1)[0].decode("ascii")
    headers = dict(line.split(": ", 1) for line in re.sub(r"\r\n[ \t]", " ", raw).split("\r\n"))
    assert re.fullmatch(r"<https://[^>]+/afmelden/[^>]+>, <mailto:[^>]+>",
                        headers["List-Unsubscribe"])
    assert any(ord(c) > 127 for c in issue.subject)  # the case that folded badly
    assert message_from_bytes(preview.eml, policy=policy.default)["Subject"] == issue.subject


def test_derived_subject_and_preheader_name_only_what_the_segment_gets(loaded_app, issue):
    # One derived subject for the whole issue told an agenda-only reader about an article
    # they do not get, and a magazine-only reader about "7 activiteiten in de agenda".
    agenda_only = loaded_app.renderer.render(issue, Preferences(frozenset({"agenda"})))
    assert all(s.item.title[:30] not in agenda_only.subject for s in issue.magazine)
    assert issue.events[0].item.title[:30] in agenda_only.subject
    assert agenda_only.subject.startswith(f"WeerbaarNL nr. {issue.number}: ")
    magazine_only = loaded_app.renderer.render(issue, Preferences(frozenset({"magazine"})))
    assert "agenda" not in magazine_only.preheader
    themed = loaded_app.renderer.render(
        issue, Preferences(frozenset({"agenda"}), frozenset({"bestuurders"})))
    events = themed.text.count("Meer informatie:")
    others = events - 1  # the subject names the first
    assert events < 7 and (f"Verder in de agenda: {others} nieuwe activiteit" if others else
                           "Lees verder voor alle details.") in themed.preheader
    for segment in (agenda_only, magazine_only, themed):
        assert segment.preheader in segment.html
        assert f"<title>{segment.subject}</title>" in segment.html
    everything = loaded_app.renderer.render(issue, Preferences())
    assert (everything.subject, everything.preheader) == (issue.subject, issue.preheader)
    # The editor's lint checks the segment's own preheader, not the issue's.
    assert build_preview(loaded_app, issue, Preferences(frozenset({"agenda"}))).findings == []


def test_an_editors_subject_and_preheader_go_to_every_segment(loaded_app, issue):
    edited = replace(issue, subject="Eigen onderwerp van de redactie",
                     preheader="Een voorbeeldregel die de redactie zelf schreef voor iedereen")
    agenda_only = loaded_app.renderer.render(edited, Preferences(frozenset({"agenda"})))
    assert agenda_only.subject == edited.subject
    assert agenda_only.preheader == edited.preheader


def test_text_part_names_an_event_type_once(preview):
    # "Training: Training Signalen herkennen en duiden": the type label was put before
    # titles that already start with it.
    lines = preview.text.splitlines()
    assert "Training Signalen herkennen en duiden – Utrecht" in lines
    assert not [line for line in lines if re.match(r"(\w+): \1\b", line, re.I)]
    assert "Bijeenkomst: Kennisdag Weerbare jongeren, weerbare professionals – Utrecht" in lines


def test_content_that_looks_like_a_marker_stays_text(loaded_app, issue):
    """A feed title or summary may hold '%%word%%': it must not become a personal marker,
    which a send would fill with the reader's link or fail on for every recipient."""
    lead = issue.magazine[0]
    odd = replace(lead, item=replace(
        lead.item, title="Korting %%nope%% en %%unsubscribe_url%%",
        summary="<p>Tarief 100%% vast, %%preferences_url%%.</p>"))
    segment = loaded_app.renderer.render(replace(issue, magazine=(odd, *issue.magazine[1:])),
                                         Preferences())
    allowed = {"greeting", "unsubscribe_url", "preferences_url"}
    assert set(segment.html_template.keys) <= allowed
    assert set(segment.text_template.keys) <= allowed
    values = {"greeting": "Beste Anna,", "unsubscribe_url": "https://x.test/afmelden/t",
              "preferences_url": "https://x.test/voorkeuren/t"}
    html, text = segment.html_template.fill(values), segment.text_template.fill(values)
    for body in (html, text):
        visible = body.replace("\u200b", "")
        assert "Korting %%nope%% en %%unsubscribe_url%%" in visible
        assert "Tarief 100%% vast, %%preferences_url%%." in visible
    assert text.count(values["unsubscribe_url"]) == 1  # only the footer's own link
