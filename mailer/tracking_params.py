"""Tracking parameters: what marketing tools add to a link, and links without them."""

from __future__ import annotations

from urllib.parse import parse_qs, unquote

# Parameters that only say where a click came from: Google Analytics (utm_*), Webtrekk
# (wt_mc, heise), AT Internet (xtor, Le Monde), Facebook, Google Ads, Mailchimp, HubSpot
# and Marketo. Removing them never changes the page a link opens.
TRACKING_NAMES = frozenset({"wt_mc", "xtor", "fbclid", "gclid", "mc_cid", "mc_eid",
                            "_hsenc", "_hsmi", "mkt_tok"})
TRACKING_PREFIXES = ("utm_",)
GOOGLE_REDIRECT = "https://www.google.com/url?"


def is_tracking(name: str) -> bool:
    """Whether a query parameter's (decoded) name is a tracking parameter."""
    lowered = name.lower()
    return lowered in TRACKING_NAMES or lowered.startswith(TRACKING_PREFIXES)


def without_tracking(url: str) -> str:
    """An http(s) URL without its tracking parameters; the other parameters (as written,
    in order) and the fragment stay. Anything else is returned as it is."""
    start = url.find("?")
    if start < 0 or not url.startswith(("http://", "https://")):
        return url
    end = url.find("#", start)
    end = len(url) if end < 0 else end
    pairs = url[start + 1:end].split("&")
    kept = [p for p in pairs if not is_tracking(unquote(p.split("=", 1)[0]))]
    if len(kept) == len(pairs):
        return url
    query = "&".join(p for p in kept if p)
    return url[:start] + (f"?{query}" if query else "") + url[end:]


def unwrap_google_redirect(url: str) -> str:
    """The target of Google's click redirect (`https://www.google.com/url?q=<target>&sa=...`,
    as Google Calendar writes every link of a description); any other URL as it is."""
    if not url.startswith(GOOGLE_REDIRECT):
        return url
    query = parse_qs(url[len(GOOGLE_REDIRECT):].split("#", 1)[0])
    targets = query.get("q", [])
    if "sa" not in query or len(targets) != 1:
        return url
    if not targets[0].startswith(("http://", "https://")):
        return url
    return targets[0]
