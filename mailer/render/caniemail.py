"""HTML and CSS features checked against the caniemail.com support data.

The data is the `caniemail` npm package's `data/caniemail.json` (installed by `npm ci`
from the repository's package.json); it is read directly, so linting needs no Node.
For each feature the HTML uses, the newest tested version of every target client says
whether it is supported. Unsupported features become findings naming the first element
that uses them; partial support (`a`) is not reported, its notes are on the feature page.

What mjml2html itself writes into every message (the doctype, its reset and column
styles, the hidden preview text) is left out unless asked for: neither an editor nor the
template can change it, and warnings nobody can act on teach editors to skip warnings.
So are the progressive enhancements below, in the one form in which they degrade safely.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from lxml.html import HtmlElement

from mailer.render.dom import element_label, elements, inline_style, parse_html
from mailer.render.lint import ERROR, WARNING, Finding

log = logging.getLogger(__name__)

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
# Progressive enhancements our template uses on purpose, recognised by the one form that
# degrades safely; the same feature in any other form is reported as usual.
# - @media on max-width only (a smaller masthead heading on phones): it only ever applies
#   to small screens, and the one target client without @media, Outlook for Windows, is a
#   desktop client, where the desktop styles are what it should show anyway.
# - color-scheme: light (only), asking clients not to darken the mail: a client that
#   ignores it behaves as if it were not there, its own dark mode or none, and every part
#   of the mail sets its own background and text colours.
SMALL_SCREEN_MEDIA = re.compile(
    r"@media\s+(?:only\s+)?(?:screen\s+and\s+)?\(\s*max-width\s*:\s*[\d.]+px\s*\)\s*\{", re.I)
LIGHT_SCHEME = re.compile(
    r"(?<![\w-])color-scheme\s*:\s*(?:only\s+)?light(?:\s+only)?\s*(?:;|(?=\}))", re.I)
IMAGE_EXT = re.compile(r"\.([a-z0-9]+)(?:[?#].*)?$")
# The smallest document that makes mjml2html write what it adds to every message: the
# doctype, the head's reset and column styles, the image styles and the preview <div>.
# A font of our own, so MJML's default web font (an @import a template may avoid) is not.
REFERENCE_MJML = (
    "<mjml><mj-head><mj-preview>x</mj-preview><mj-attributes><mj-all font-family=\"Arial\" />"
    "</mj-attributes></mj-head><mj-body><mj-section><mj-column><mj-text>x</mj-text><mj-image "
    "src=\"https://example.org/x.png\" alt=\"x\" /></mj-column></mj-section></mj-body></mjml>")


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


@dataclass(frozen=True)
class Boilerplate:
    """What mjml2html writes into every message, whatever the template says."""

    styles: frozenset[str]  # its <style> blocks, whitespace collapsed
    inline: frozenset[tuple[str, str, str]]  # (tag, property, value) on its own elements
    preview_style: str  # the style of the <div> that hides the preview text

    def owns_style(self, css: str) -> bool:
        return " ".join(css.split()) in self.styles

    def is_preview(self, el: HtmlElement) -> bool:
        return el.tag == "div" and _squeeze(el.get("style")) == self.preview_style

    def own_declarations(self, el: HtmlElement) -> dict[str, str]:
        """The element's inline declarations, but those MJML writes on such elements too."""
        return {p: v for p, v in inline_style(el).items()
                if (el.tag, p, v.lower()) not in self.inline}


@cache
def mjml_boilerplate() -> Boilerplate:
    """Learn the boilerplate from the installed MJML compiler, through our own pipeline.

    Inline declarations count per tag and value: MJML's reset (img { outline: none }),
    which premailer copies onto every image, or the spacing of the table around an image.
    The preview <div> counts as a whole, so a template's own hidden <div> is still checked.
    """
    from mailer.render.newsletter import compile_mjml, inline_css

    root = parse_html(inline_css(compile_mjml(REFERENCE_MJML)))
    preview = next(el for el in root.iter("div") if "display:none" in _squeeze(el.get("style")))
    return Boilerplate(
        frozenset(" ".join((el.text or "").split()) for el in root.iter("style")),
        frozenset((el.tag, p, v.lower()) for el in elements(root) if el is not preview
                  for p, v in inline_style(el).items()),
        _squeeze(preview.get("style")))


def _squeeze(style: str | None) -> str:
    return "".join((style or "").split()).lower()


def check_support(html: str, root: HtmlElement, data: SupportData, clients: tuple[str, ...],
                  *, show_hidden: bool = False) -> list[Finding]:
    """A finding per used feature that some target client does not support.

    Features only MJML's boilerplate or our progressive enhancements use are logged
    (debug) and left out, unless `show_hidden` asks for them; the others name the first
    element of ours that uses them.
    """
    findings = []
    known = set(data.features)
    ours = used_features(html, root, known, skip=mjml_boilerplate())
    essential = used_features(html, root, known, skip=mjml_boilerplate(), enhancements=False)
    for slug, where in used_features(html, root, known).items():
        missing = [c for c in clients if data.support(slug, c) == "n"]
        if not missing:
            continue
        feature = data.features[slug]
        names = ", ".join(data.client_name(c) for c in missing)
        message = f"{feature.title} is not supported by {names} ({feature.url})"
        if slug not in essential:
            why = ("the template uses it as a progressive enhancement that degrades safely"
                   if slug in ours else "MJML writes this into every message")
            log.debug("caniemail, hidden: %s [%s]; %s", message, where, why)
            if not show_hidden:
                continue
            message += f"; {why}"
        findings.append(Finding(ERROR if slug in BREAKING else WARNING, "caniemail", message,
                                essential.get(slug, ours.get(slug, where))))
    return findings


def used_features(html: str, root: HtmlElement, known: set[str],
                  skip: Boilerplate | None = None, *, enhancements: bool = True
                  ) -> dict[str, str]:
    """Every caniemail feature slug the HTML uses, with the first element that uses it;
    with `skip`, what MJML writes into every message does not count, and without
    `enhancements`, neither do the progressive enhancements in their safe form."""
    found: dict[str, str] = {}

    def add(slugs: list[str], where: str) -> None:
        for slug in slugs:
            if slug in known and slug not in found:
                found[slug] = where

    if html.lstrip().lower().startswith("<!doctype") and skip is None:
        add(["html-doctype"], "<!doctype>")
    for el in elements(root):
        if skip and skip.is_preview(el):
            continue
        label = element_label(el)
        add(element_slugs(el), label)
        add(css_declaration_slugs(skip.own_declarations(el) if skip else inline_style(el)),
            label)
        if el.tag == "style" and not (skip and skip.owns_style(el.text or "")):
            css = el.text or ""
            add(stylesheet_slugs(css if enhancements else without_enhancements(css)),
                "<style>")
    return found


def without_enhancements(css: str) -> str:
    """A stylesheet without the progressive enhancements' safe forms: the rules inside a
    small-screen @media stay (their features still count), the @media itself goes."""
    return LIGHT_SCHEME.sub("", SMALL_SCREEN_MEDIA.sub("", css))


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
