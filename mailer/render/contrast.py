"""Colour contrast of text against its background (WCAG 2.1 AA), from inline styles.

Runs on the final HTML, after premailer has inlined the stylesheet, so each element's
colour is in its own style attribute or an ancestor's. Where no colour is set the mail
client's defaults apply: black text on white.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lxml.html import HtmlElement

from mailer.render.dom import element_label, elements, inline_style, text_snippet
from mailer.render.lint import ERROR, Finding

AA_NORMAL = 4.5
AA_LARGE = 3.0  # text of at least 24 px, or 18.66 px bold (WCAG "large scale")
DEFAULT_TEXT = (0, 0, 0)
DEFAULT_BACKGROUND = (255, 255, 255)
NAMED = {"black": (0, 0, 0), "white": (255, 255, 255), "red": (255, 0, 0),
         "green": (0, 128, 0), "blue": (0, 0, 255), "gray": (128, 128, 128),
         "grey": (128, 128, 128), "silver": (192, 192, 192), "navy": (0, 0, 128),
         "yellow": (255, 255, 0), "orange": (255, 165, 0), "maroon": (128, 0, 0)}
RGB = re.compile(r"rgba?\(\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*(?:,\s*([\d.]+)\s*)?\)")
COLOUR_TOKEN = re.compile(r"#[0-9a-fA-F]{3,6}\b|rgba?\([^)]*\)|[a-z]+")
HIDDEN = re.compile(r"display\s*:\s*none|mso-hide\s*:\s*all|max-height\s*:\s*0")
BOLD_TAGS = {"b", "strong", "h1", "h2", "h3", "h4", "h5", "h6", "th"}
HEADING_PX = {"h1": 32.0, "h2": 24.0, "h3": 18.72}
SKIP_TAGS = {"style", "script", "title", "head", "meta"}
Rgb = tuple[int, int, int]


@dataclass(frozen=True)
class TextColours:
    """The colours and size a piece of text is shown with."""

    foreground: Rgb
    background: Rgb
    size_px: float
    bold: bool

    @property
    def ratio(self) -> float:
        return contrast_ratio(self.foreground, self.background)

    @property
    def required(self) -> float:
        large = self.size_px >= 24 or (self.bold and self.size_px >= 18.66)
        return AA_LARGE if large else AA_NORMAL


def parse_colour(value: str) -> Rgb | None:
    """#rgb, #rrggbb, rgb()/rgba() with alpha 1, or a common name; None for anything else."""
    value = value.strip().lower().replace("!important", "").strip()
    if m := re.fullmatch(r"#([0-9a-f]{3})", value):
        return tuple(int(c * 2, 16) for c in m[1])  # type: ignore[return-value]
    if m := re.fullmatch(r"#([0-9a-f]{6})", value):
        return tuple(int(m[1][i:i + 2], 16) for i in (0, 2, 4))  # type: ignore[return-value]
    if m := RGB.fullmatch(value):
        if m[4] is not None and float(m[4]) < 1:
            return None  # translucent: the result depends on what is behind; not judged
        return int(m[1]), int(m[2]), int(m[3])
    return NAMED.get(value)


def relative_luminance(rgb: Rgb) -> float:
    """WCAG 2.1 relative luminance of an sRGB colour."""
    def channel(c: int) -> float:
        s = c / 255
        return s / 12.92 if s <= 0.04045 else ((s + 0.055) / 1.055) ** 2.4
    r, g, b = (channel(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(a: Rgb, b: Rgb) -> float:
    """(L1 + 0.05) / (L2 + 0.05) with L1 the lighter colour."""
    high, low = sorted((relative_luminance(a), relative_luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def check_contrast(root: HtmlElement) -> list[Finding]:
    """An error per distinct colour pair whose text misses WCAG AA, naming the first element."""
    findings, seen = [], set()
    for el in elements(root):
        if el.tag in SKIP_TAGS or not own_text(el) or is_hidden(el):
            continue
        colours = text_colours(el)
        key = (colours.foreground, colours.background, colours.required)
        if colours.ratio >= colours.required or key in seen:
            continue
        seen.add(key)
        findings.append(Finding(
            ERROR, "contrast",
            f"text {hex_of(colours.foreground)} on {hex_of(colours.background)} has contrast "
            f"{colours.ratio:.2f}:1, WCAG AA needs {colours.required}:1 "
            f"(\"{text_snippet(el)}\")", element_label(el)))
    return findings


def own_text(el: HtmlElement) -> bool:
    """Whether the element itself (not only its children) holds visible text."""
    pieces = [el.text or ""] + [child.tail or "" for child in el]
    return any(p.strip() for p in pieces)


def is_hidden(el: HtmlElement) -> bool:
    """Whether the element or an ancestor is hidden (the preheader, MSO-only blocks)."""
    return any(HIDDEN.search(a.get("style") or "") for a in ancestry(el))


def ancestry(el: HtmlElement) -> list[HtmlElement]:
    """The element and its ancestors, innermost first."""
    chain = []
    node: HtmlElement | None = el
    while node is not None:
        chain.append(node)
        node = node.getparent()
    return chain


def text_colours(el: HtmlElement) -> TextColours:
    """Resolve colour, background, size and weight by walking up the ancestors."""
    foreground = background = None
    size = None
    bold = False
    for node in ancestry(el):
        style = inline_style(node)
        if foreground is None:
            foreground = parse_colour(style.get("color", "") or node.get("color", "") or "")
        if background is None:
            background = parse_colour(background_of(style) or node.get("bgcolor", "") or "")
        if size is None:
            size = font_size(style.get("font-size", "")) or HEADING_PX.get(node.tag)
        bold = bold or node.tag in BOLD_TAGS or style.get("font-weight", "") in {"bold", "700",
                                                                                  "800", "900"}
    return TextColours(foreground or DEFAULT_TEXT, background or DEFAULT_BACKGROUND,
                       size or 16.0, bold)


def background_of(style: dict[str, str]) -> str:
    """The colour part of background-color or the background shorthand."""
    if "background-color" in style:
        return style["background-color"]
    for token in COLOUR_TOKEN.findall(style.get("background", "")):
        if parse_colour(token):
            return token
    return ""


def font_size(value: str) -> float | None:
    """Pixels for px and pt sizes; None for relative sizes."""
    if m := re.fullmatch(r"\s*([\d.]+)\s*(px|pt)\s*(!important)?\s*", value):
        return float(m[1]) * (4 / 3 if m[2] == "pt" else 1)
    return None


def hex_of(rgb: Rgb) -> str:
    """#rrggbb for an RGB triple."""
    return "#" + "".join(f"{c:02x}" for c in rgb)
