"""Small helpers over a parsed HTML part: parsing, inline styles, naming an element."""

from __future__ import annotations

import lxml.html
from lxml.html import HtmlElement

LABEL_ATTRS = ("id", "class", "href", "src", "alt", "style")
LABEL_MAX = 120


def parse_html(html: str) -> HtmlElement:
    """The document element of an HTML part (comments, incl. MSO conditionals, stay comments)."""
    return lxml.html.document_fromstring(html.encode("utf-8"))


def elements(root: HtmlElement) -> list[HtmlElement]:
    """Every element below root in document order, skipping comments and processing nodes."""
    return [el for el in root.iter() if isinstance(el.tag, str)]


def inline_style(el: HtmlElement) -> dict[str, str]:
    """The element's style attribute as {property: value}, properties lower-cased."""
    declarations: dict[str, str] = {}
    for part in (el.get("style") or "").split(";"):
        name, sep, value = part.partition(":")
        if sep and name.strip():
            declarations[name.strip().lower()] = value.strip()
    return declarations


def element_label(el: HtmlElement) -> str:
    """A short, recognisable rendering of an element's start tag, e.g. `<img src="…">`."""
    attrs = " ".join(f'{name}="{el.get(name)}"' for name in LABEL_ATTRS if el.get(name) is not None)
    label = f"<{el.tag}{' ' + attrs if attrs else ''}>"
    return label if len(label) <= LABEL_MAX else label[: LABEL_MAX - 2] + "…>"


def text_snippet(el: HtmlElement, limit: int = 60) -> str:
    """The element's visible text, whitespace collapsed and shortened."""
    text = " ".join(el.text_content().split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
