"""Fidelity: our templates compiled by the official MJML (npm `mjml`) and by mjml-python.

mjml-python wraps MRML, a Rust port of MJML 4. Both compilers' output is reduced to the
structure a reader sees: layout tables and their widths, columns, images, links and text
blocks, in document order. A template feature MRML renders differently from MJML 4.18
(package.json pins it) shows up as a difference in that sequence.
"""

from __future__ import annotations

import difflib
import json
import re
import subprocess

import lxml.html
import mjml
import pytest

from mailer.app import App
from mailer.compose import compose_issue
from mailer.models import Preferences
from mailer.render.newsletter import HTML_TEMPLATE, select_for
from mailer.sync import sync_source
from tests.conftest import REPO, make_settings

pytestmark = pytest.mark.usefixtures("node_modules")

COMPILE_JS = """
const mjml2html = require("mjml");
let source = "";
process.stdin.on("data", (chunk) => { source += chunk; });
process.stdin.on("end", () => {
  const out = mjml2html(source, {validationLevel: "strict", minify: false, keepComments: true});
  process.stdout.write(JSON.stringify({html: out.html, errors: out.errors}));
});
"""
COLUMN = re.compile(r"mj-column-(?:per|px)-[\w-]+")
SEGMENTS = [Preferences(), Preferences(frozenset({"agenda"})),
            Preferences(frozenset({"magazine"}), frozenset({"onderwijs"}))]


def official_mjml(source: str) -> str:
    """Compile with the npm `mjml` package (installed by `npm ci`)."""
    run = subprocess.run(["node", "-e", COMPILE_JS], input=source, capture_output=True,
                         text=True, cwd=REPO, timeout=60, check=False)
    assert run.returncode == 0, f"node mjml failed (did `npm ci` run?): {run.stderr[-500:]}"
    result = json.loads(run.stdout)
    assert result["errors"] == [], result["errors"]
    return result["html"]


def structure(html: str) -> list[str]:
    """What a reader's client lays out, in order; MSO-only markup (comments) is left out."""
    tokens = []
    for el in lxml.html.document_fromstring(html).body.iter():
        if not isinstance(el.tag, str):
            continue
        style = el.get("style") or ""
        if el.tag == "table":
            tokens.append(f"table width={el.get('width')} role={el.get('role')} "
                          f"bg={el.get('bgcolor') or background(style)}")
        elif el.tag == "td" and el.get("width"):
            tokens.append(f"td width={el.get('width')}")
        elif el.tag == "div" and (m := re.search(r"max-width:\s*(\d+px)", style)):
            tokens.append(f"block max-width={m[1]}")
        elif el.tag == "div" and (m := COLUMN.search(el.get("class") or "")):
            tokens.append(f"column {m[0]} {squash(style)}")
        elif el.tag == "img":
            tokens.append(f"img src={el.get('src')} alt={el.get('alt')!r} width={el.get('width')}")
        elif el.tag == "a":
            tokens.append(f"a href={el.get('href')} text={squash(el.text_content())!r}")
        elif el.tag in {"h1", "h2", "h3", "p"}:
            tokens.append(f"{el.tag} {squash(el.text_content())!r}")
    return tokens


def background(style: str) -> str | None:
    match = re.search(r"background(?:-color)?:\s*(#[0-9a-fA-F]{3,6})", style)
    return match[1].lower() if match else None


def squash(text: str) -> str:
    return " ".join(text.split())


def test_structure_notices_a_different_column_width():
    a = ('<div style="max-width:600px"><div class="mj-column-per-100" style="width:100%">'
         '<table width="600"><tr><td width="600">x</td></tr></table></div></div>')
    assert structure(a) != structure(a.replace("600", "552"))
    assert structure(a) != structure(a.replace("per-100", "per-50"))


@pytest.fixture(scope="module")
def mjml_sources(tmp_path_factory, sqlite_template):
    import shutil

    from mailer.clock import FixedClock, parse_instant

    folder = tmp_path_factory.mktemp("fidelity")
    shutil.copy(sqlite_template, folder / "mailer.db")
    app = App(make_settings(folder, f"sqlite:///{folder / 'mailer.db'}"),
              FixedClock(parse_instant("2026-12-03T09:00")))
    for name, source in app.sources():
        sync_source(app.engine, name, source, app.clock)
    with app.engine.connect() as conn:
        issue = compose_issue(conn, app.settings, app.clock.now())
    renderer, sources = app.renderer, {}
    for prefs in SEGMENTS:
        magazine, agenda = select_for(issue, prefs)
        context = renderer.context(issue, magazine, agenda, prefs)
        sources[prefs.key()] = renderer.html_env.get_template(HTML_TEMPLATE).render(context)
    app.engine.dispose()
    return sources


@pytest.mark.parametrize("key", [p.key() for p in SEGMENTS])
def test_mjml_python_matches_official_mjml(mjml_sources, key):
    source = mjml_sources[key]
    ours, official = structure(mjml.mjml2html(source)), structure(official_mjml(source))
    assert len(official) > 20  # the comparison saw the real layout, not an empty page
    difference = "\n".join(difflib.unified_diff(official, ours, "mjml (npm)", "mjml-python",
                                                lineterm="", n=2))
    assert ours == official, f"mjml-python renders the template differently:\n{difference}"
