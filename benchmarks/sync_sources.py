"""Benchmark: sync 10 sources x 200 entries from a local HTTP server into SQLite.

    python benchmarks/sync_sources.py [--entries 200] [--database-url URL]

The server runs in a separate process, so `time.process_time()` of this process is the CPU
our side spends (HTTP client, parsing, sanitising, database) and excludes waiting for the
network. Prints CPU and wall seconds per source and in total, for a first sync (all new)
and a second one (feeds and calendars answer 304; WordPress APIs are read again).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mailer.app import App  # noqa: E402
from mailer.clock import FixedClock  # noqa: E402
from mailer.settings import load_settings, with_overrides  # noqa: E402
from mailer.store.db import upgrade  # noqa: E402
from mailer.sync import sync_source  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
TEXT = ("Professionals in het jeugddomein zien polarisatie in de klas, op straat en online. "
        "In dit artikel lees je hoe je signalen herkent, het gesprek aangaat en samenwerkt "
        "met partners in de keten, zonder te stigmatiseren. ")


def rss(n: int, source: int) -> bytes:
    items = []
    for i in range(n):
        day = NOW - timedelta(hours=6 * i)
        items.append(
            f"<item><title>Artikel {source}-{i}: weerbaar &amp; wijs – café</title>"
            f"<link>https://site{source}.example.nl/artikel/{i}/?utm_source=rss</link>"
            f'<guid isPermaLink="false">s{source}-{i}</guid>'
            f"<pubDate>{format_datetime(day)}</pubDate>"
            f"<category>Onderwijs</category><category>Jeugdhulp</category>"
            f"<description><![CDATA[<p>{TEXT}</p><p><a href=\"/meer/{i}\">Lees meer</a></p>"
            f"]]></description>"
            f'<enclosure url="https://site{source}.example.nl/img/{i}.jpg" type="image/jpeg" '
            f'length="1000"/></item>')
    return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
            f"<title>Site {source}</title><link>https://site{source}.example.nl/</link>"
            + "".join(items) + "</channel></rss>").encode()


def atom(n: int, source: int) -> bytes:
    entries = []
    for i in range(n):
        day = (NOW - timedelta(hours=6 * i)).isoformat()
        entries.append(
            f"<entry><title>Bericht {source}-{i} over weerbaarheid</title>"
            f'<link href="https://atom{source}.example.nl/bericht/{i}"/>'
            f"<id>tag:atom{source}.example.nl,2026:{i}</id><updated>{day}</updated>"
            f'<category term="Onderwijs"/><summary type="html">&lt;p&gt;{TEXT}&lt;/p&gt;</summary>'
            f"</entry>")
    return (f'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
            f"<title>Atom {source}</title><id>urn:atom{source}</id><updated>{NOW.isoformat()}"
            f"</updated>" + "".join(entries) + "</feed>").encode()


def ics(n: int, source: int) -> bytes:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//bench//NL"]
    series, per_series = 10, 5
    for s in range(series):  # 10 weekly series of 5 occurrences = 50 occurrences
        start = (NOW + timedelta(days=1 + s)).strftime("%Y%m%dT100000")
        lines += ["BEGIN:VEVENT", f"UID:series-{source}-{s}@bench", f"DTSTART;TZID=Europe/"
                  f"Amsterdam:{start}", "DURATION:PT2H", f"RRULE:FREQ=WEEKLY;COUNT={per_series}",
                  f"SUMMARY:Intervisie {s}", "LOCATION:Online",
                  f"URL:https://agenda{source}.example.nl/serie/{s}", "END:VEVENT"]
    for i in range(n - series * per_series):
        day = NOW + timedelta(days=1 + i % 70, hours=i % 8)
        lines += ["BEGIN:VEVENT", f"UID:event-{source}-{i}@bench",
                  f"DTSTART:{day.strftime('%Y%m%dT%H%M%SZ')}",
                  f"DTEND:{(day + timedelta(hours=3)).strftime('%Y%m%dT%H%M%SZ')}",
                  f"SUMMARY:Training {i}: signalen herkennen", "LOCATION:Jaarbeurs\\, Utrecht",
                  f"DESCRIPTION:{TEXT}", f"URL:https://agenda{source}.example.nl/event/{i}",
                  "CATEGORIES:Training", "END:VEVENT"]
    lines.append("END:VCALENDAR")
    return "\r\n".join(lines).encode()


def wp_posts(n: int) -> list[dict]:
    return [{"id": i, "date_gmt": (NOW - timedelta(hours=5 * i)).strftime("%Y-%m-%dT%H:%M:%S"),
             "link": f"https://wp.example.nl/post-{i}/",
             "title": {"rendered": f"Post {i} &#8211; weerbaar"},
             "excerpt": {"rendered": f"<p>{TEXT}</p>", "protected": False},
             "_embedded": {"wp:featuredmedia": [{"source_url": f"https://wp.example.nl/{i}.jpg",
                                                 "alt_text": "Twee professionals",
                                                 "media_details": {"sizes": {}}}],
                           "wp:term": [[{"name": "Onderwijs", "slug": "onderwijs"}]]}}
            for i in range(n)]


def tribe_events(n: int) -> list[dict]:
    out = []
    for i in range(n):
        start = NOW + timedelta(days=1 + i % 60, hours=i % 6)
        out.append({"id": 1000 + i, "url": f"https://wp.example.nl/agenda/{i}/",
                    "title": f"Werkatelier {i}", "all_day": False, "excerpt": f"<p>{TEXT}</p>",
                    "utc_start_date": start.strftime("%Y-%m-%d %H:%M:%S"),
                    "utc_end_date": (start + timedelta(hours=2)).strftime("%Y-%m-%d %H:%M:%S"),
                    "venue": {"venue": "Stadhuis", "city": "Zwolle"},
                    "categories": [{"name": "Werkatelier", "slug": "werkatelier"}],
                    "tags": [], "image": False})
    return out


def serve(entries: int, port_queue) -> None:
    """The server process: static documents with ETags, and paginated WordPress APIs."""
    from werkzeug import Request, Response
    from werkzeug.serving import make_server

    docs = {f"/rss{s}.xml": rss(entries, s) for s in range(4)}
    docs |= {f"/atom{s}.xml": atom(entries, s) for s in range(2)}
    docs |= {f"/cal{s}.ics": ics(entries, s) for s in range(2)}
    posts, events = wp_posts(entries), tribe_events(entries)

    @Request.application
    def app(request: Request) -> Response:
        if request.path in docs:
            body = docs[request.path]
            etag = '"' + hashlib.sha1(body).hexdigest() + '"'
            if request.headers.get("If-None-Match") == etag:
                return Response(status=304, headers={"ETag": etag})
            return Response(body, headers={"ETag": etag}, content_type="application/xml")
        records, key = (posts, None) if request.path.endswith("/posts") else (events, "events")
        page, per = int(request.args.get("page", 1)), int(request.args.get("per_page", 10))
        pages = -(-len(records) // per)
        chunk = records[(page - 1) * per: page * per]
        body = {"events": chunk, "total_pages": pages} if key else chunk
        return Response(json.dumps(body), headers={"X-WP-TotalPages": str(pages)},
                        content_type="application/json")

    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    port_queue.put(server.server_port)
    server.serve_forever()


def sources_toml(port: int) -> str:
    base = f"http://127.0.0.1:{port}"
    blocks = [f'[[sources]]\nname = "rss{s}"\nkind = "feed"\nlocation = "{base}/rss{s}.xml"\n'
              f'[sources.topics]\nonderwijs = "onderwijs"\n' for s in range(4)]
    blocks += [f'[[sources]]\nname = "atom{s}"\nkind = "feed"\nlocation = "{base}/atom{s}.xml"\n'
               for s in range(2)]
    blocks += [f'[[sources]]\nname = "ics{s}"\nkind = "ical"\nlocation = "{base}/cal{s}.ics"\n'
               for s in range(2)]
    blocks.append(f'[[sources]]\nname = "wp"\nkind = "wordpress"\nlocation = "{base}"\n')
    blocks.append(f'[[sources]]\nname = "agenda"\nkind = "wordpress-events"\nlocation = "{base}"\n')
    return "\n".join(blocks)


def run(app: App, label: str) -> float:
    print(f"\n{label}")
    print(f"  {'source':8} {'items':>5} {'new':>5} {'CPU s':>7} {'wall s':>7}")
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for name, source in app.sources():
        c, w = time.process_time(), time.perf_counter()
        report = sync_source(app.engine, name, source, app.clock)
        if not report.ok:
            raise SystemExit(f"{name} failed: {report.error}")
        fetched = "304" if report.not_modified else str(report.fetched)
        print(f"  {name:8} {fetched:>5} {report.new:>5} {time.process_time() - c:7.3f} "
              f"{time.perf_counter() - w:7.3f}")
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    print(f"  {'total':8} {'':>5} {'':>5} {cpu:7.3f} {wall:7.3f}")
    return cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=200)
    parser.add_argument("--database-url", help="default: a new SQLite file in a temp folder")
    args = parser.parse_args()
    queue = multiprocessing.Queue()
    server = multiprocessing.Process(target=serve, args=(args.entries, queue), daemon=True)
    server.start()
    try:
        port = queue.get(timeout=60)
        folder = Path(tempfile.mkdtemp(prefix="bench-sync-"))
        (folder / "sources.toml").write_text(sources_toml(port))
        settings = with_overrides(
            load_settings(REPO / "mailer.toml", environ={}), sources_file=folder / "sources.toml",
            database_url=args.database_url or f"sqlite:///{folder / 'mailer.db'}")
        app = App(settings, FixedClock(NOW))
        upgrade(app.engine)
        # Warm-up outside the measurement: imports, first connection, parser tables.
        app.sources()
        print(f"10 sources x {args.entries} entries from http://127.0.0.1:{port} "
              f"into {settings.database_url.split('://')[0]}")
        first = run(app, "first sync (everything new, cold process: includes lazy imports)")
        second = run(app, "second sync (304 for feeds and calendars, WordPress read again)")
        # A scheduler process imports its parsers once; what each later sync of new
        # entries costs is measured on a fresh database in this now-warm process.
        fresh = App(with_overrides(settings, database_url=f"sqlite:///{folder / 'warm.db'}"),
                    FixedClock(NOW))
        upgrade(fresh.engine)
        warm = run(fresh, "first sync into a new database (warm process)")
        print(f"\nCPU beyond network: first sync {first:.2f} s (cold process), "
              f"{warm:.2f} s (warm process); second sync {second:.2f} s")
    finally:
        server.terminate()
        server.join(5)


if __name__ == "__main__":
    main()
