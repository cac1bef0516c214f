"""Tracking parameters: what marketing tools add to a link, and links without them."""

from __future__ import annotations

from urllib.parse import parse_qs, unquote, urlsplit

# Parameters that only say where a click came from; removing them never changes the page a
# link opens. The list follows Firefox's query stripping list (privacy.query_stripping,
# remote settings "query-stripping") and the global rules of ClearURLs, with what our feeds
# carry besides: Google Analytics (utm_*), Webtrekk (wt_mc, heise), AT Internet (xtor,
# Le Monde), Google/Microsoft/Yandex/Facebook/Instagram/Twitter ad click ids, Mailchimp,
# HubSpot, Marketo, Olytics, Vero, MailerLite and Adobe (s_cid).
#
# Deliberately NOT here: `ref`, `ref_*` and `mc_*` in general. ClearURLs removes ref/ref_
# only as "referral marketing" and then needs a long list of exceptions (GitHub, GitLab,
# any git.* host, logins, banks) because there `ref` picks a branch or a page; Firefox never
# strips them. A guess from the value (a git ref?) cannot tell `?ref=main` on a Gitea host
# from a referrer, so we keep them, as Firefox does, except where a site is known to use
# them for tracking only (SITE_TRACKING). Keeping one too many only costs a missed
# duplicate; removing one too many sends readers to the wrong page.
TRACKING_NAMES = frozenset({
    "wt_mc", "wt_zmc", "xtor", "_openstat",
    "fbclid", "gclid", "gclsrc", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "twclid",
    "igshid", "igsh", "srsltid",
    "mc_cid", "mc_eid", "mc_tc",
    "_hsenc", "_hsmi", "__hsfp", "__hssc", "__hstc", "hsctatracking",
    "mkt_tok", "oly_anon_id", "oly_enc_id", "vero_id", "vero_conv",
    "ml_subscriber", "ml_subscriber_hash", "s_cid", "rb_clickid", "wickedid",
})
TRACKING_PREFIXES = ("utm_",)
# Per site (the host or a subdomain of it): Twitter's embed and share links carry ref_src
# and ref_url, which Firefox strips for these hosts only ("strip on share" list).
SITE_TRACKING = {
    "twitter.com": frozenset({"ref_src", "ref_url"}),
    "x.com": frozenset({"ref_src", "ref_url"}),
}
GOOGLE_REDIRECT = "https://www.google.com/url?"


def is_tracking(name: str, host: str = "") -> bool:
    """Whether a query parameter's (decoded) name is a tracking parameter on a link to host."""
    lowered = name.lower()
    if lowered in TRACKING_NAMES or lowered.startswith(TRACKING_PREFIXES):
        return True
    return bool(host) and lowered in site_tracking(host)


def site_tracking(host: str) -> frozenset[str]:
    """The parameters a host (or the site it belongs to) uses for tracking only."""
    host = host.lower().rsplit("@", 1)[-1].split(":", 1)[0]
    for site, names in SITE_TRACKING.items():
        if host == site or host.endswith(f".{site}"):
            return names
    return frozenset()


def without_tracking(url: str) -> str:
    """An http(s) URL without its tracking parameters; the other parameters (as written,
    in order) and the fragment stay. Anything else is returned as it is."""
    start = url.find("?")
    if start < 0 or not url.startswith(("http://", "https://")):
        return url
    end = url.find("#", start)
    end = len(url) if end < 0 else end
    host = urlsplit(url[:start]).netloc
    pairs = url[start + 1:end].split("&")
    kept = [p for p in pairs if not is_tracking(unquote(p.split("=", 1)[0]), host)]
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
