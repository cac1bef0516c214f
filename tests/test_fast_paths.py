"""Fast paths give what the general code gives: URLs, links, RFC 822 dates, hashes."""

import hashlib
import itertools
import json
import random
import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin

import pytest

from mailer.models import Item, ItemKind, ItemStatus
from mailer.sources.plain_feed import RFC822, Unsure, _rfc822
from mailer.sources.remote import PLAIN_PATH, resolve
from mailer.store.items import PLAIN_URL, _canonical_parsed, _row, canonical_url, content_hash
from tests.source_helpers import CORPORA

SCHEMES = ["https://", "http://", "HTTP://", "ftp://", "mailto:", "", "//", "https:"]
HOSTS = ["example.org", "Example.ORG:8080", "user@host.nl", "[::1]", "ex ample.nl", "é.nl",
         "a.b-c_d.nl", "", "h.nl;x", "h.nl%41"]
PATHS = ["", "/", "//", "/a/", "/a//b", "/./a", "/../a", "/a/..", "/a;b=c", "/a%20b", "/ä",
         "/a b", "/a:b", "/.well-known/x", "/a/.", "/artikel/12/", "/a\tb", "/a@b!$&'()*+,="]
QUERIES = ["", "?", "?a=1", "?utm_source=x&id=3", "?ref=x"]
FRAGMENTS = ["", "#", "#top"]
CHARS = "aZ09/.:;?#@%&=+-_~!$'()*,[] \t\"<>\\é"


def urls() -> list[str]:
    found = ["".join(p) for p in itertools.product(SCHEMES, HOSTS, PATHS, QUERIES, FRAGMENTS)]
    found += [f" {u}\n" for u in found[::7]]
    rng = random.Random(3)
    found += ["https://h.nl/" + "".join(rng.choice(CHARS) for _ in range(rng.randint(0, 12)))
              for _ in range(3000)]
    found += ["/" + "".join(rng.choice(CHARS) for _ in range(rng.randint(0, 12)))
              for _ in range(3000)]
    for path in sorted((CORPORA / "feeds").iterdir()):  # every link-like value in the corpus
        found += re.findall(r"""(?:href|url)=["']([^"']*)""", path.read_text("latin-1"))
    return found


@pytest.fixture(scope="module")
def all_urls() -> list[str]:
    return urls()


def test_canonical_url_equals_the_parsed_way(all_urls):
    assert sum(PLAIN_URL.fullmatch(u.strip()) is not None for u in all_urls) > 1000
    for url in all_urls:
        assert outcome(canonical_url, url) == outcome(_canonical_parsed, url), repr(url)


@pytest.mark.parametrize("base", ["https://www.platformjep.example.nl/feed/",
                                  "http://Host.nl:8080/a/b?x=1#f", "file:///tmp/feed.xml",
                                  "https://h.nl", "//h.nl/x"])
def test_resolve_equals_urljoin(all_urls, base):
    assert sum(PLAIN_PATH.fullmatch(u.strip()) is not None for u in all_urls) > 500
    for url in all_urls:
        stripped = url.strip()
        if stripped.startswith(("http://", "https://")) and " " not in stripped:
            continue  # returned as given, as before
        assert outcome(resolve, base, url) == outcome(urljoin, base, stripped), repr(url)


def outcome(function, *args):
    try:
        return function(*args)
    except ValueError as exc:
        return type(exc)


def rfc822_reference(value: str):
    """The general path as it was: the email parser, then UTC (which may overflow)."""
    try:
        parsed = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return Unsure
    if parsed is None or parsed.tzinfo is None:
        return Unsure
    try:
        return parsed.astimezone(UTC).timetuple()
    except OverflowError:
        return OverflowError


def dates() -> list[str]:
    rng = random.Random(5)
    days = ["Mon", "Tue", "Sun", "Xyz"]
    months = ["Jan", "Feb", "Jun", "Dec", "Foo", "jan"]
    found = [f"{rng.choice(days)}, {rng.choice(['1', '01', '29', '30', '31', '00', '32'])} "
             f"{rng.choice(months)} {rng.choice(['2026', '1999', '0050', '2024', '9999', '26'])} "
             f"{rng.choice(['00', '09', '23', '24'])}:{rng.choice(['00', '59', '60'])}:"
             f"{rng.choice(['00', '59', '60', '61'])} "
             f"{rng.choice(['+0000', '-0000', '+0100', '-0530', '+0099', '+2359', '+9999', 'GMT'])}"
             for _ in range(5000)]
    found += ["Tue, 01 Dec 2026 09:00:00 +0100", "Tue,  01 Dec 2026 09:00:00 +0100",
              "01 Dec 2026 09:00:00 +0100", "Tue, 29 Feb 2026 09:00:00 +0100", " "]
    for path in sorted((CORPORA / "feeds").iterdir()):
        found += re.findall(r"<pubDate>([^<]*)</pubDate>", path.read_text("latin-1"))
    return found


def test_rfc822_dates_equal_the_email_parser():
    values = dates()
    assert sum(RFC822.fullmatch(v.strip()) is not None for v in values) > 1000
    for value in values:
        try:
            fast = _rfc822(value)
        except Unsure:
            fast = Unsure
        except OverflowError:  # e.g. 31 Dec 9999 west of UTC, on both paths
            fast = OverflowError
        assert fast == rfc822_reference(value), value


def test_content_hash_is_the_sha256_of_sorted_json_as_stored_before():
    """Stored hashes stay valid: a different digest would make every item look edited."""
    event = Item(source="s", source_id="e/1", kind=ItemKind.EVENT, title="Café – “x”",
                 url="https://h.nl/e?id=1", starts_at=datetime(2026, 12, 4, 9, tzinfo=UTC),
                 ends_at=None, location="Jaarbeurs, Utrecht", online=False, topics=("a", "b"),
                 status=ItemStatus.CANCELLED)
    article = Item(source="s", source_id="1", kind=ItemKind.MAGAZINE, title="Tïtel",
                   url="https://h.nl/a/", summary="<p>één</p>")
    for item in (event, article):
        fields = {k: v for k, v in _row(item).items() if k not in ("source", "source_id")}
        blob = json.dumps(fields, sort_keys=True, default=str)
        assert content_hash(item) == hashlib.sha256(blob.encode()).hexdigest()
    # computed with the code before HASH_JSON, so the stored ledger's hashes still match
    assert content_hash(article) == \
        "357971e06dc7f1f5df1ba5b0382e15a19589abc0d2bd08a6c753fb28f8563059"
