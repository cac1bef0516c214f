"""WordPress shortcodes a site left as text: "[caption ...]" or "[vc_row]" in an excerpt.

WordPress renders the shortcodes a plugin registered and strips them from the excerpts it
makes itself. A page builder that was switched off (WPBakery's [vc_row], Divi's
[et_pb_section], Avada's [fusion_text]) or an excerpt written by hand leaves them in the
text, and the newsletter printed them. Brackets are also ordinary punctuation ("[sic]",
"[the training function]" in the corpus, WordPress's "[…]"), so only what is plainly a
shortcode goes: WordPress core's own names, names with an underscore or with attributes,
and any tag that has its closing tag. A caption is an image's caption, not summary text.
"""

from __future__ import annotations

import re

CAPTION = re.compile(r"\[(caption|wp_caption)\b[^\[\]]*\].*?\[/\1\]", re.DOTALL)
CORE = r"(?:audio|caption|embed|gallery|playlist|video|wp_caption)"
NAME = r"[a-z][a-z0-9]*(?:[_-][a-z0-9]+)*"
# [vc_row ...], [/vc_row], [gallery ids="1,2"], [contact-form-7 id="5"], [embed]...
SHORTCODE_TAG = re.compile(
    rf"\[/?(?:{CORE}\b|[a-z][a-z0-9]*_{NAME}|{NAME}(?=\s+[a-z_-]+=))[^\[\]]*\]")
PAIR = re.compile(rf"\[({NAME})(?:\s[^\[\]]*)?\](.*?)\[/\1\]", re.DOTALL)
GAP = "\x00"  # where a shortcode stood: a space between words, nothing next to a tag
GAPS = re.compile(r"\s*\x00[\s\x00]*")


def drop_shortcodes(text: str) -> str:
    """Text without the shortcode tags a site left unrendered (their content stays)."""
    if "[" not in text:
        return text
    text = CAPTION.sub(GAP, text)
    text = SHORTCODE_TAG.sub(GAP, text)
    while True:
        unpaired = PAIR.sub(rf"{GAP}\2{GAP}", text)
        if unpaired == text:
            break
        text = unpaired
    return GAPS.sub(_gap, text) if GAP in text else text


def _gap(match: re.Match) -> str:
    text, start, end = match.string, match.start(), match.end()
    if start == 0 or end == len(text) or text[start - 1] == ">" or text[end] == "<":
        return ""
    return " "
