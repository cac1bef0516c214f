"""Checks on what a reader sees: subject and preheader length, images, the text part's links."""

from __future__ import annotations

import re

from lxml.html import HtmlElement

from mailer.compose import SUBJECT_MAX
from mailer.render.dom import element_label, elements, inline_style
from mailer.render.lint import ERROR, WARNING, Finding

# Inboxes show roughly 40-60 subject characters on phones and 70-90 on desktops; derived
# subjects are kept to the same limit.
SUBJECT_WARN = SUBJECT_MAX
# The preheader fills the inbox preview after the subject: Apple Mail and Gmail show up to
# about 140 characters; under 40, the client pads it with body text ("Bekijk deze e-mail…").
PREHEADER_MIN, PREHEADER_MAX = 40, 140
ALT_MAX = 150
FILE_NAME = re.compile(r"\.(png|jpe?g|gif|webp|svg)$|^(img|image|dsc|foto)[_-]?\d+", re.I)
CONTENT_WIDTH = 600


def check_subject_and_preheader(subject: str, preheader: str) -> list[Finding]:
    """Length checks for the inbox view; an empty subject is an error."""
    findings = []
    if not subject.strip():
        findings.append(Finding(ERROR, "subject", "the issue has no subject"))
    elif len(subject) > SUBJECT_WARN:
        findings.append(Finding(WARNING, "subject", f"subject is {len(subject)} characters; "
                                f"phones cut it after about {SUBJECT_WARN}", subject))
    text = preheader.strip()
    if text and len(text) < PREHEADER_MIN:
        findings.append(Finding(WARNING, "preheader", f"preheader is {len(text)} characters; "
                                f"under {PREHEADER_MIN} the inbox fills up with body text", text))
    elif len(text) > PREHEADER_MAX:
        findings.append(Finding(WARNING, "preheader", f"preheader is {len(text)} characters; "
                                f"inboxes show at most about {PREHEADER_MAX}", text))
    if text and text == subject.strip():
        findings.append(Finding(WARNING, "preheader", "preheader repeats the subject", text))
    return findings


def check_images(root: HtmlElement) -> list[Finding]:
    """Alt text quality and declared sizes of every image."""
    findings = []
    for img in (el for el in elements(root) if el.tag == "img"):
        label = element_label(img)
        alt = img.get("alt")
        linked = any(a.tag == "a" for a in img.iterancestors())
        if alt is not None and not alt.strip() and linked:
            findings.append(Finding(ERROR, "alt", "linked image has empty alt text, so the "
                                    "link has no name for screen readers", label))
        elif alt and FILE_NAME.search(alt.strip()):
            findings.append(Finding(WARNING, "alt", f"alt text looks like a file name: {alt!r}",
                                    label))
        elif alt and len(alt) > ALT_MAX:
            findings.append(Finding(WARNING, "alt", f"alt text is {len(alt)} characters; keep it "
                                    f"under {ALT_MAX} and put the rest in the text", label))
        findings += _width_findings(img, label)
    return findings


def _width_findings(img: HtmlElement, label: str) -> list[Finding]:
    width = img.get("width")
    if width is None or not width.strip().isdigit():
        return [Finding(WARNING, "image-size", "image has no pixel width attribute; Outlook "
                        "for Windows then shows it at its natural size", label)]
    if int(width) > CONTENT_WIDTH:
        return [Finding(ERROR, "image-size", f"width=\"{width}\" is wider than the "
                        f"{CONTENT_WIDTH} px content column", label)]
    css = inline_style(img).get("width", "")
    if css.endswith("px") and css[:-2].strip().isdigit() and int(css[:-2]) != int(width):
        return [Finding(WARNING, "image-size", f"width attribute {width} and CSS width {css} "
                        "differ; clients disagree on which wins", label)]
    return []


def check_text_links(root: HtmlElement, text: str) -> list[Finding]:
    """Every link of the HTML part must also be in the plain-text part."""
    findings, seen = [], set()
    for a in (el for el in elements(root) if el.tag == "a" and el.get("href")):
        href = a.get("href").strip()
        target = href.removeprefix("mailto:").split("?")[0] if href.startswith("mailto:") else href
        if href in seen or href.startswith("#"):
            continue
        seen.add(href)
        if target not in text:
            findings.append(Finding(ERROR, "text-links", f"link {href} is missing from the "
                                    "plain-text part", element_label(a)))
    return findings
