"""The editor's preview page: segment switch, the HTML and text parts side by side, findings."""

from __future__ import annotations

from html import escape
from urllib.parse import urlencode

from mailer.models import Issue
from mailer.render.lint import Finding

# Polls /version and reloads when the sources changed; inline so the page needs no CDN.
RELOAD_SCRIPT = """
<script>
(function () {
  var seen = %d;
  function poll() {
    fetch("/version", {cache: "no-store"}).then(function (r) { return r.json(); })
      .then(function (d) { if (d.version !== seen) { location.reload(); } })
      .catch(function () {})
      .then(function () { setTimeout(poll, 700); });
  }
  setTimeout(poll, 700);
})();
</script>
"""

STYLE = """
body { font-family: Arial, Helvetica, sans-serif; margin: 0; color: #1f2937; }
header { background: #154273; color: #fff; padding: 12px 20px; }
header h1 { font-size: 20px; margin: 0 0 4px; }
header p { margin: 0; }
form { padding: 10px 20px; background: #f3f4f6; }
.panes { display: grid; grid-template-columns: minmax(640px, 1fr) 1fr; gap: 0; }
.panes iframe { width: 100%; height: 80vh; border: 0; border-right: 1px solid #d1d5db; }
.findings { padding: 10px 20px; }
.error { color: #9b1c1c; } .warning { color: #7c4a03; }
.note { padding: 10px 20px; margin: 0; background: #fef3c7; }
.problem { padding: 20px; color: #9b1c1c; white-space: pre-wrap; }
"""


def preview_page(version: int, segments: list[tuple[str, str]], current: str,
                 issue: Issue | None, findings: list[Finding], problem: str = "",
                 note: str = "") -> str:
    """The whole page as HTML (Dutch: editors read it); `note` says what is shown (a sent
    issue as stored)."""
    query = urlencode({"segment": current})
    title = (f"{escape(issue.subject)}" if issue else "Voorbeeld")
    head = (f"<header><h1>{title}</h1><p>Voorbeeldregel: {escape(issue.preheader)} · nr. "
            f"{issue.number} ({escape(issue.period)})</p></header>" if issue else
            "<header><h1>Voorbeeld</h1></header>")
    if note:
        head += f'<p class="note" id="note">{escape(note)}</p>'
    options = "".join(
        f'<option value="{escape(key)}"{" selected" if key == current else ""}>'
        f"{escape(label)}</option>" for key, label in segments)
    switch = (f'<form method="get"><label for="segment">Segment (voorkeuren): </label>'
              f'<select id="segment" name="segment" onchange="this.form.submit()">{options}'
              "</select> <noscript><button>Toon</button></noscript></form>")
    if problem:
        body = f'<div class="problem" id="problem">{escape(problem)}</div>'
    else:
        body = (f'<div class="panes"><iframe id="html-part" title="HTML-deel" '
                f'src="/mail?{query}"></iframe><iframe id="text-part" title="Tekstdeel" '
                f'src="/text?{query}"></iframe></div>' + findings_list(findings))
    return (f'<!doctype html><html lang="nl"><head><meta charset="utf-8">'
            f"<title>Voorbeeld: {title}</title><style>{STYLE}</style></head><body>"
            f'{head}{switch}{body}<p hidden id="version">{version}</p>'
            f"{RELOAD_SCRIPT % version}</body></html>")


def findings_list(findings: list[Finding]) -> str:
    """The lint findings as a list, or a line saying there are none."""
    if not findings:
        return '<section class="findings"><h2>Controle</h2><p>Geen bevindingen.</p></section>'
    items = "".join(
        f'<li class="{f.level}"><strong>{"fout" if f.level == "error" else "waarschuwing"}'
        f"</strong> {escape(f.code)}: {escape(f.message)}"
        + (f" <code>{escape(f.element)}</code>" if f.element else "") + "</li>"
        for f in findings)
    return f'<section class="findings"><h2>Controle</h2><ul>{items}</ul></section>'
