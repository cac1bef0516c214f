"""Checks on a rendered, personalised message before anyone receives it."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from html.parser import HTMLParser

from mailer.sanitize import html_to_text

ERROR, WARNING = "error", "warning"
LEFTOVER = re.compile(r"\{\{|\{%|%%[a-z_]+%%|\}\}")


@dataclass(frozen=True)
class Finding:
    """One problem: its level, a short code, a message and the element it concerns."""

    level: str
    code: str
    message: str
    element: str = ""

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lang: str | None = None
        self.images: list[dict[str, str | None]] = []
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        attributes = dict(attrs)
        if tag == "html":
            self.lang = attributes.get("lang")
        elif tag == "img":
            self.images.append(attributes)
        elif tag == "a" and attributes.get("href") is not None:
            self.links.append(attributes["href"] or "")


def lint_message(html: str, text: str, *, preheader: str, unsubscribe_url: str,
                 preferences_url: str, budget_kb: int) -> list[Finding]:
    """Every problem found in one personalised message (HTML and text part)."""
    page = _Collector()
    page.feed(html)
    findings: list[Finding] = []
    size_kb = len(html.encode("utf-8")) / 1024
    if size_kb > budget_kb:
        findings.append(Finding(ERROR, "size", f"HTML is {size_kb:.1f} KB, over the budget of "
                                f"{budget_kb} KB (Gmail clips at about 102 KB)"))
    if (page.lang or "").lower() != "nl":
        findings.append(Finding(ERROR, "lang", f"<html lang> is {page.lang!r}, expected 'nl'",
                                "<html>"))
    for image in page.images:
        if image.get("alt") is None:
            findings.append(Finding(ERROR, "alt", "image without alt attribute",
                                    f"<img src=\"{image.get('src')}\">"))
    for href in page.links:
        if not href.startswith(("https://", "mailto:")):
            findings.append(Finding(ERROR, "link", "link is not absolute https or mailto",
                                    f"<a href=\"{href}\">"))
    for part, body in (("HTML", html), ("text", text)):
        if match := LEFTOVER.search(body):
            context = body[max(match.start() - 30, 0):match.end() + 30]
            findings.append(Finding(ERROR, "template",
                                    f"unrendered template syntax in the {part} part", context))
    visible = html_to_text(html, one_line=True)
    if not preheader.strip():
        findings.append(Finding(ERROR, "preheader", "the issue has no preheader"))
    elif " ".join(preheader.split()) not in visible:
        findings.append(Finding(ERROR, "preheader", "preheader text not found in the HTML"))
    for name, url in (("unsubscribe", unsubscribe_url), ("preferences", preferences_url)):
        if url not in page.links:
            findings.append(Finding(ERROR, name, f"no {name} link in the HTML part"))
        if url not in text:
            findings.append(Finding(ERROR, name, f"no {name} link in the text part"))
    return findings


def has_errors(findings: list[Finding]) -> bool:
    """Whether any finding is an error (which blocks sending)."""
    return any(f.level == ERROR for f in findings)
