"""HTML and CSS features checked against the caniemail.com support data.

The data is the `caniemail` npm package's `data/caniemail.json` (installed by `npm ci`
from the repository's package.json); it is read directly, so linting needs no Node.
For each feature the HTML uses, the newest tested version of every target client says
whether it is supported. Unsupported features become findings naming the first element
that uses them; partial support (`a`) is not reported, its notes are on the feature page.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from lxml.html import HtmlElement

from mailer.render.dom import element_label, elements, inline_style
from mailer.render.lint import ERROR, WARNING, Finding

# Features whose absence loses content or layout rather than polish: errors, not warnings.
BREAKING = frozenset({
    "html-svg", "image-svg", "image-webp", "image-avif", "css-display-flex", "css-display-grid",
    "css-position", "css-variables", "css-at-import", "html-form", "html-video", "html-audio",
    "html-object", "html-dialog", "html-select", "html-textarea", "html-input-text",
    "html-input-checkbox", "html-input-radio", "html-input-submit", "html-button-submit",
})
SEMANTIC_TAGS = frozenset({"article", "aside", "details", "figcaption", "figure", "footer",
                           "header", "main", "mark", "nav", "section", "summary", "time"})
VENDOR = re.compile(r"^(-webkit-|-moz-|-ms-|-o-|mso-)")
UNIT = re.compile(r"(?<![\w#.-])\d*\.?\d+(px|em|rem|%|vh|vw|vmin|vmax|pt|pc|cm|mm|in|ch|ex)\b")
FUNCTION = re.compile(r"\b([a-z-]+)\(")
RULE = re.compile(r"([^{}]+)\{([^{}]*)\}")
AT_RULE = re.compile(r"@([a-z-]+)")
MEDIA_FEATURES = ("prefers-color-scheme", "prefers-reduced-motion", "orientation", "hover",
                  "device-pixel-ratio")
PSEUDO = re.compile(r"(::?)([a-z-]+)")
IMAGE_EXT = re.compile(r"\.([a-z0-9]+)(?:[?#].*)?$")


class CanIEmailDataMissing(Exception):
    """The caniemail data file is not where the settings say."""


@dataclass(frozen=True)
class Feature:
    """One caniemail feature: its slug, title, page and per-client support data."""

    slug: str
    title: str
    url: str
    stats: dict


@dataclass(frozen=True)
class SupportData:
    """The caniemail features by slug, and the display names of clients."""

    features: dict[str, Feature]
    families: dict[str, str]
    platforms: dict[str, str]
    updated: str

    def support(self, slug: str, client: str) -> str:
        """'y', 'a' (partial), 'n' or 'u' for the newest tested version of a client."""
        family, _, platform = client.partition(".")
        versions = self.features[slug].stats.get(family, {}).get(platform)
        if not versions:
            return "u"
        return list(versions.values())[-1].strip()[:1] or "u"

    def knows(self, client: str) -> bool:
        """Whether any feature has data for a 'family.platform' client name."""
        family, _, platform = client.partition(".")
        return any(platform in f.stats.get(family, {}) for f in self.features.values())

    def client_name(self, client: str) -> str:
        """'Outlook (Windows)' for 'outlook.windows'."""
        family, _, platform = client.partition(".")
        return f"{self.families.get(family, family)} ({self.platforms.get(platform, platform)})"


@cache
def load_support_data(path: Path) -> SupportData:
    """Read caniemail.json once per process."""
    if not path.is_file():
        raise CanIEmailDataMissing(f"caniemail data not found at {path}; run `npm ci`")
    data = json.loads(path.read_text(encoding="utf-8"))
    features = {f["slug"]: Feature(f["slug"], f["title"], f["url"], f["stats"])
                for f in data["data"]}
    names = data["nicenames"]
    return SupportData(features, names["family"], names["platform"], data["last_update_date"])


def check_support(html: str, root: HtmlElement, data: SupportData,
                  clients: tuple[str, ...]) -> list[Finding]:
    """A finding per used feature that some target client does not support."""
    findings = []
    for slug, where in used_features(html, root, set(data.features)).items():
        missing = [c for c in clients if data.support(slug, c) == "n"]
        if not missing:
            continue
        feature = data.features[slug]
        names = ", ".join(data.client_name(c) for c in missing)
        findings.append(Finding(
            ERROR if slug in BREAKING else WARNING, "caniemail",
            f"{feature.title} is not supported by {names} ({feature.url})", where))
    return findings


def used_features(html: str, root: HtmlElement, known: set[str]) -> dict[str, str]:
    """Every caniemail feature slug the HTML uses, with the first element that uses it."""
    found: dict[str, str] = {}

    def add(slugs: list[str], where: str) -> None:
        for slug in slugs:
            if slug in known and slug not in found:
                found[slug] = where

    if html.lstrip().lower().startswith("<!doctype"):
        add(["html-doctype"], "<!doctype>")
    for el in elements(root):
        label = element_label(el)
        add(element_slugs(el), label)
        add(css_declaration_slugs(inline_style(el)), label)
        if el.tag == "style":
            add(stylesheet_slugs(el.text or ""), "<style>")
    return found


def element_slugs(el: HtmlElement) -> list[str]:
    """Feature slugs for an element's tag and attributes."""
    tag = el.tag.lower()
    slugs = [f"html-{tag}"]
    if re.fullmatch(r"h[1-6]", tag):
        slugs.append("html-h1-h6")
    elif tag in {"ul", "ol", "li", "dl", "dt", "dd"}:
        slugs.append("html-lists")
    elif tag in SEMANTIC_TAGS:
        slugs.append("html-semantics")
    elif tag in {"input", "button"}:
        slugs.append(f"html-{tag}-{(el.get('type') or 'submit' if tag == 'button' else 'text')}")
    elif tag == "a":
        href = el.get("href") or ""
        slugs += ["html-anchor-links"] if href.startswith("#") else []
        slugs += ["html-mailto-links"] if href.startswith("mailto:") else []
    elif tag == "meta" and (el.get("name") or "").lower() == "color-scheme":
        slugs.append("html-meta-color-scheme")
    elif tag == "img":
        slugs += image_slugs(el.get("src") or "")
    for name in el.attrib:
        name = name.lower()
        slugs.append("html-loading-attribute" if name == "loading" else f"html-{name}")
    return slugs


def image_slugs(src: str) -> list[str]:
    """image-png, image-base64, … for an image source."""
    if src.startswith("data:"):
        return ["image-base64"]
    match = IMAGE_EXT.search(src.lower())
    if not match:
        return []
    ext = {"jpeg": "jpg", "tif": "tiff", "heic": "heif"}.get(match[1], match[1])
    return [f"image-{ext}"]


def css_declaration_slugs(declarations: dict[str, str]) -> list[str]:
    """Feature slugs for CSS declarations: properties, values, units and functions."""
    slugs: list[str] = []
    for prop, value in declarations.items():
        if VENDOR.match(prop):
            continue
        if prop.startswith("--"):
            slugs.append("css-variables")
            continue
        slugs += property_slugs(prop, value.lower())
        slugs += [f"css-unit-{u}".replace("css-unit-%", "css-unit-percent")
                  for u in UNIT.findall(value.lower())]
        slugs += function_slugs(value.lower())
        if "!important" in value:
            slugs.append("css-important")
    return slugs


def property_slugs(prop: str, value: str) -> list[str]:
    """The property's own slug plus the family slug it belongs to."""
    slugs = [f"css-{prop}"]
    if prop == "display" and value.split("!")[0].strip() in {"flex", "inline-flex", "grid",
                                                             "inline-grid", "none"}:
        slugs.append(f"css-display-{value.split('!')[0].strip().removeprefix('inline-')}")
    elif prop in {"top", "right", "bottom", "left"}:
        slugs.append("css-left-right-top-bottom")
    elif prop.startswith("column-") or prop == "columns":
        slugs.append("css-column-layout-properties")
    elif re.fullmatch(r"border-(top|right|bottom|left)-(left|right)-radius|border-.*-radius", prop):
        slugs.append("css-border-radius")
    else:
        family = prop.split("-")[0]
        if family in {"padding", "margin", "border"}:
            slugs.append(f"css-{family}")
    return slugs


def function_slugs(value: str) -> list[str]:
    """Slugs for CSS functions in a value: rgb(), calc(), linear-gradient(), var(), …"""
    names = {"calc": "css-unit-calc", "var": "css-variables", "rgb": "css-rgb", "rgba": "css-rgba",
             "min": "css-function-min", "max": "css-function-max",
             "clamp": "css-function-clamp", "light-dark": "css-function-light-dark"}
    slugs = [names.get(name, f"css-{name}") for name in FUNCTION.findall(value)]
    if re.search(r"(?<![\w-])initial\b", value):
        slugs.append("css-unit-initial")
    return slugs


def stylesheet_slugs(css: str) -> list[str]:
    """Slugs for a <style> block: at-rules, media features, selectors and declarations."""
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    slugs = [f"css-at-{name}" for name in AT_RULE.findall(css)]
    slugs += [f"css-at-media-{f}" for f in MEDIA_FEATURES if f in css]
    for selectors, body in RULE.findall(css):
        if selectors.strip().startswith("@"):
            continue  # @font-face and friends: the at-rule slug covers it
        slugs += selector_slugs(selectors)
        declarations = dict(
            (name.strip().lower(), value.strip())
            for name, sep, value in (d.partition(":") for d in body.split(";")) if sep)
        slugs += css_declaration_slugs(declarations)
    return slugs


def selector_slugs(selectors: str) -> list[str]:
    """Slugs for a selector list: grouping, combinators, class/id/type, pseudo-classes."""
    parts = [s.strip() for s in selectors.split(",") if s.strip()]
    slugs = ["css-selector-grouping"] if len(parts) > 1 else []
    for sel in parts:
        for token, slug in ((".", "css-selector-class"), ("#", "css-selector-id"),
                            (">", "css-selector-child"), ("+", "css-selector-adjacent-sibling"),
                            ("~", "css-selector-general-sibling"), ("[", "css-selector-attribute"),
                            ("*", "css-selector-universal")):
            if token in sel:
                slugs.append(slug)
        compounds = re.split(r"\s*[>+~]\s*|\s+", sel)
        if re.search(r"[\w\]]\s+[\w.#\[*:]", sel):
            slugs.append("css-selector-descendant")
        if any(re.match(r"[a-z]", c) for c in compounds):
            slugs.append("css-selector-type")
        if any(len(re.findall(r"[.#\[]", c)) + bool(re.match(r"[a-z]", c)) > 1 for c in compounds):
            slugs.append("css-selector-chaining")
        for colons, name in PSEUDO.findall(sel):
            kind = "element" if colons == "::" or name in {"before", "after"} else "class"
            slugs.append(f"css-pseudo-{kind}-{name}")
    return slugs
