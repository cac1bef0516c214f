from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from mailer.clock import FixedClock
from mailer.models import ItemKind
from mailer.sources import SourceConfig, factory_for
from mailer.store.db import make_engine
from mailer.store.tables import items as items_table
from mailer.sync import sync_source

REPO = Path(__file__).resolve().parent.parent


def fetch(location: Path):
    source = factory_for("markdown")(SourceConfig(name="local", kind="markdown",
                                                  location=str(location)))
    items = list(source.fetch())
    assert source.warnings == [], source.warnings
    return items, source.problems


@pytest.fixture
def engine(db_url):
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


def sync(engine, location: Path):
    """Sync the folder as source 'local'; the report and {source_id: status} of the ledger."""
    source = factory_for("markdown")(SourceConfig(name="local", kind="markdown",
                                                  location=str(location)))
    report = sync_source(engine, "local", source, FixedClock(datetime(2026, 12, 3, tzinfo=UTC)))
    with engine.connect() as conn:
        rows = conn.execute(select(items_table.c.source_id, items_table.c.status))
        return report, {row.source_id: row.status for row in rows}


def test_sample_content_loads_without_problems():
    items, problems = fetch(REPO / "content")
    assert problems == []
    kinds = [i.kind for i in items]
    assert kinds.count(ItemKind.MAGAZINE) >= 8 and kinds.count(ItemKind.EVENT) >= 6
    assert len({i.source_id for i in items}) == len(items)
    assert "magazine-2026-12-09-concept-gesprek-met-ouders" not in {i.source_id for i in items}
    assert {i.event_type for i in items if i.kind is ItemKind.EVENT} >= {
        "training", "werkatelier", "roadshow", "intervisie", "bijeenkomst"}


def test_offsets_are_converted_to_utc_including_summer_time():
    items, _ = fetch(REPO / "content")
    by_id = {i.source_id: i for i in items}
    summer = by_id["magazine-2026-10-20-wat-doet-een-aandachtsfunctionaris-radicalisering"]
    assert summer.published_at.tzinfo is UTC
    assert summer.published_at.utcoffset().total_seconds() == 0


def test_all_day_event_ends_the_next_local_midnight():
    items, _ = fetch(REPO / "content")
    all_day = [i for i in items if i.all_day]
    assert len(all_day) == 1
    event = all_day[0]
    assert event.starts_at == datetime(2027, 1, 20, 23, 0, tzinfo=UTC)
    assert event.ends_at == datetime(2027, 1, 21, 23, 0, tzinfo=UTC)


def test_bad_files_are_named_and_the_rest_still_loads():
    items, problems = fetch(REPO / "tests/fixtures/content_bad")
    assert [i.source_id for i in items] == ["magazine-good"]
    messages = sorted(str(p) for p in problems)
    assert len(messages) == 3
    assert "bad-date.md: invalid date in front matter" in messages[0]
    assert "bad-yaml.md: front matter is not valid YAML (line" in messages[1]
    assert "missing-title.md: missing required field 'title'" in messages[2]


def test_summary_html_is_sanitised(tmp_path):
    folder = tmp_path / "magazine"
    folder.mkdir()
    (folder / "x.md").write_text(
        "---\ntitle: T\nurl: https://example.org/x\npublished: 2026-11-20\n---\n"
        "Hallo <script>alert(1)</script> [link](javascript:alert(1)) **vet**\n")
    items, problems = fetch(tmp_path)
    assert problems == []
    summary = items[0].summary
    assert "<script" not in summary and "javascript:" not in summary
    assert "<strong>vet</strong>" in summary


def write(folder: Path, name: str, data: bytes) -> None:
    (folder / "magazine").mkdir(exist_ok=True)
    (folder / "magazine" / name).write_bytes(data)


def test_a_file_that_is_not_utf8_is_named_as_such(tmp_path):
    write(tmp_path, "latin1.md", "---\ntitle: Café\nurl: https://x.nl/a\npublished: 2026-11-20\n"
                                 "---\nReünie\n".encode("latin-1"))
    items, problems = fetch(tmp_path)
    assert items == []
    assert [str(p) for p in problems] == [
        f"{tmp_path / 'magazine' / 'latin1.md'}: not UTF-8 text; save the file as UTF-8"]


def test_a_single_topic_written_as_text_is_one_topic(tmp_path):
    write(tmp_path, "een.md", b"---\ntitle: T\nurl: https://x.nl/a\npublished: 2026-11-20\n"
                              b"topics: onderwijs\n---\nx\n")
    items, problems = fetch(tmp_path)
    assert problems == [] and items[0].topics == ("onderwijs",)


def test_a_date_that_is_a_number_or_out_of_range_is_a_problem_of_that_file(tmp_path):
    for name, value in (("getal", b"20261120"), ("jaar-1", b"0001-01-01"), ("ja", b"true")):
        write(tmp_path, f"{name}.md", b"---\ntitle: T\nurl: https://x.nl/a\npublished: "
                                      + value + b"\n---\nx\n")
    write(tmp_path, "goed.md", b"---\ntitle: T\nurl: https://x.nl/a\npublished: 2026-11-20\n"
                               b"---\nx\n")
    items, problems = fetch(tmp_path)
    assert [i.source_id for i in items] == ["magazine-goed"]
    assert sorted(str(p).split("/")[-1] for p in problems) == [
        "getal.md: published: not a date or ISO 8601 time: 20261120",
        "ja.md: published: not a date or ISO 8601 time: True",
        "jaar-1.md: published: date out of range: 0001-01-01",
    ]


def test_a_file_saved_with_a_byte_order_mark_keeps_its_front_matter(tmp_path):
    # Windows Notepad (before 2019) saves UTF-8 with a BOM.
    write(tmp_path, "bom.md", "\ufeff---\ntitle: Café\nurl: https://x.nl/a\n"
                              "published: 2026-11-20\n---\nx\n".encode())
    items, problems = fetch(tmp_path)
    assert problems == [] and items[0].title == "Café"


def test_yes_no_fields_take_true_or_false_only(tmp_path):
    (tmp_path / "events").mkdir()
    event = "---\ntitle: T\nurl: https://x.nl/a\nstarts: 2026-12-20T10:00\n{}\n---\nx\n"
    (tmp_path / "events" / "fysiek.md").write_text(event.format("online: false"))
    (tmp_path / "events" / "nee.md").write_text(event.format("online: nee"))
    (tmp_path / "events" / "tekst.md").write_text(event.format('all_day: "false"'))
    items, problems = fetch(tmp_path)
    assert [(i.source_id, i.online, i.all_day) for i in items] == [
        ("event-fysiek", False, False)]
    assert sorted(str(p).split("/")[-1] for p in problems) == [
        "nee.md: online must be true or false, got 'nee'",
        "tekst.md: all_day must be true or false, got 'false'",
    ]


def test_front_matter_that_is_not_fields_says_so(tmp_path):
    # The YAML library reads a list or one line of text fine; the file then has no fields.
    write(tmp_path, "lijst.md", b"---\n- title: T\n- url: https://x.nl/a\n---\nx\n")
    write(tmp_path, "tekst.md", b"---\nTitel van het artikel\n---\nx\n")
    write(tmp_path, "leeg.md", b"---\n---\nx\n")
    items, problems = fetch(tmp_path)
    assert items == []
    assert sorted(str(p).split("/")[-1] for p in problems) == [
        "leeg.md: missing required field 'title'",
        "lijst.md: front matter must be fields ('title: ...' lines), not a list",
        "tekst.md: front matter must be fields ('title: ...' lines), not plain text",
    ]


def test_an_id_too_long_for_the_ledger_is_a_problem_of_that_file(engine, tmp_path):
    write(tmp_path, "lang.md", b"---\nid: " + b"x" * 501 + b"\ntitle: T\nurl: https://x.nl/a\n"
                               b"published: 2026-11-20\n---\nx\n")
    write(tmp_path, "goed.md", b"---\nid: " + b"y" * 500 + b"\ntitle: T\nurl: https://x.nl/b\n"
                               b"published: 2026-11-20\n---\nx\n")
    report, ledger = sync(engine, tmp_path)
    assert report.ok, report.error
    assert ledger == {"y" * 500: "active"}
    assert [p.split("/")[-1] for p in report.problems] == [
        "lang.md: id is 501 characters long; at most 500 fit"]


def article(draft: str = "", title: str = "T", extra: str = "") -> bytes:
    return (f"---\ntitle: {title}\nurl: https://x.nl/{title}\npublished: 2026-11-20\n"
            f"{draft}\n{extra}---\nx\n").encode()


def test_a_draft_is_not_published(tmp_path):
    write(tmp_path, "klaar.md", article("draft: false"))
    write(tmp_path, "concept.md", article("draft: true"))
    # Work in progress: not checked further, so it cannot stop deletions of the rest.
    write(tmp_path, "half.md", b"---\ntitle: Half af\ndraft: true\n---\nx\n")
    write(tmp_path, "ja.md", article("draft: ja"))
    items, problems = fetch(tmp_path)
    assert [i.source_id for i in items] == ["magazine-klaar"]
    assert [str(p).split("/")[-1] for p in problems] == [
        "ja.md: draft must be true or false, got 'ja'"]


def test_a_draft_flipped_to_false_is_published_as_new(engine, tmp_path):
    write(tmp_path, "concept.md", article("draft: true"))
    report, ledger = sync(engine, tmp_path)
    assert (report.new, report.problems, ledger) == (0, [], {})
    write(tmp_path, "concept.md", article("draft: false"))
    report, ledger = sync(engine, tmp_path)
    assert (report.new, ledger) == (1, {"magazine-concept": "active"})
    # Made a draft again: taken back like a removed file.
    write(tmp_path, "concept.md", article("draft: true"))
    report, ledger = sync(engine, tmp_path)
    assert (report.deleted, ledger) == (1, {"magazine-concept": "deleted"})
    write(tmp_path, "concept.md", article("draft: false"))
    report, ledger = sync(engine, tmp_path)
    assert (report.updated, ledger) == (1, {"magazine-concept": "active"})


def event(name: str, status: str = "") -> tuple[str, bytes]:
    return f"{name}.md", (f"---\ntitle: {name}\nurl: https://x.nl/{name}\n"
                          f"starts: 2026-12-20T10:00\n{status}\n---\nx\n").encode()


def write_event(folder: Path, name: str, status: str = "") -> None:
    (folder / "events").mkdir(exist_ok=True)
    filename, data = event(name, status)
    (folder / "events" / filename).write_bytes(data)


def test_status_cancelled_makes_a_cancelled_event(tmp_path):
    write_event(tmp_path, "gaat-door")
    write_event(tmp_path, "actief", "status: active")
    write_event(tmp_path, "afgelast", "status: cancelled")
    write_event(tmp_path, "geannuleerd", "status: Geannuleerd")
    write_event(tmp_path, "onbekend", "status: uitgesteld")
    items, problems = fetch(tmp_path)
    assert {i.source_id: i.status.value for i in items} == {
        "event-actief": "active", "event-afgelast": "cancelled",
        "event-geannuleerd": "cancelled", "event-gaat-door": "active"}
    assert [str(p).split("/")[-1] for p in problems] == [
        "onbekend.md: status 'uitgesteld' unknown; use cancelled (or geannuleerd) for an "
        "event that does not go ahead, or leave status out"]


def test_an_announced_event_cancelled_in_its_file_shows_as_cancelled(tmp_path, db_url):
    from datetime import timedelta

    from mailer.app import App
    from mailer.compose import compose_issue
    from mailer.models import IssueStatus, ItemStatus
    from mailer.sending import store_issue
    from mailer.store.issues import set_issue_status
    from tests.conftest import make_settings

    now = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
    content = tmp_path / "content"
    content.mkdir()
    write_event(content, "aangekondigd")
    app = App(make_settings(tmp_path, db_url, content_dir=content), FixedClock(now))
    later = App(app.settings, FixedClock(now + timedelta(days=7)))
    try:
        [(name, source)] = app.sources()
        sync_source(app.engine, name, source, app.clock)
        first = store_issue(app, now)
        with app.engine.begin() as conn:
            set_issue_status(conn, first.id, IssueStatus.SENT, now)
        write_event(content, "aangekondigd", "status: geannuleerd")
        write_event(content, "nooit-aangekondigd", "status: cancelled")
        write_event(content, "nieuw")
        [(name, source)] = later.sources()
        report = sync_source(later.engine, name, source, later.clock)
        assert (report.new, report.updated) == (2, 1)
        with later.engine.connect() as conn:
            second = compose_issue(conn, later.settings, later.clock.now())
    finally:
        app.engine.dispose()
        later.engine.dispose()
    assert {e.item.title: e.item.status for e in second.events} == {
        "aangekondigd": ItemStatus.CANCELLED, "nieuw": ItemStatus.ACTIVE}


def test_unknown_fields_are_named_and_the_item_still_syncs(engine, tmp_path):
    write(tmp_path, "weg.md", article(title="Weg"))
    report, _ = sync(engine, tmp_path)
    (tmp_path / "magazine" / "weg.md").unlink()
    write(tmp_path, "typo.md", article(extra="topcis: [onderwijs]\nTitle: x\nlocation: Zwolle\n"
                                             "kleur: rood\n"))
    # Fields static-site generators use, which a folder shared with a site holds.
    write(tmp_path, "hugo.md", article(title="Hugo", extra="slug: hugo\naliases: [/oud]\n"
                                       "weight: 3\ntags: [a]\ndate: 2026-11-19\n"))
    report, ledger = sync(engine, tmp_path)
    assert report.ok and report.problems == []
    assert (report.new, report.deleted) == (2, 1)  # a warning does not stop deletions
    assert ledger == {"magazine-typo": "active", "magazine-hugo": "active",
                      "magazine-weg": "deleted"}
    assert [w.split("/")[-1] for w in report.warnings] == [
        "typo.md: unknown field 'topcis' ignored; did you mean 'topics'?",
        "typo.md: unknown field 'Title' ignored; did you mean 'title'?",
        "typo.md: field 'location' is for events only; ignored",
        "typo.md: unknown field 'kleur' ignored",
    ]


def test_an_http_url_syncs_with_a_warning_naming_the_file(engine, tmp_path):
    # `mailer lint` flags every link that is not https, so the editor hears it at sync.
    write(tmp_path, "oud.md", article(title="Oud").replace(b"https://", b"http://"))
    write(tmp_path, "goed.md", article(title="Goed"))
    report, ledger = sync(engine, tmp_path)
    assert report.ok and report.problems == []
    assert ledger == {"magazine-oud": "active", "magazine-goed": "active"}
    assert [w.replace(f"{tmp_path}/magazine/", "") for w in report.warnings] == [
        "oud.md: url 'http://x.nl/Oud' is not https; `mailer lint` reports it as an error: "
        "use the https:// address"]


def test_a_misspelt_required_field_gets_a_suggestion_too(tmp_path):
    write(tmp_path, "titel.md", b"---\ntitel: T\nurl: https://x.nl/a\npublished: 2026-11-20\n"
                                b"---\nx\n")
    source = factory_for("markdown")(SourceConfig(name="local", kind="markdown",
                                                  location=str(tmp_path)))
    assert list(source.fetch()) == []
    assert [str(p).split("/")[-1] for p in source.problems + source.warnings] == [
        "titel.md: missing required field 'title'",
        "titel.md: unknown field 'titel' ignored; did you mean 'title'?",
    ]


def test_cli_sync_and_check_print_warnings(tmp_path, sqlite_url):
    from click.testing import CliRunner

    from mailer.cli import main
    from tests.conftest import REPO as ROOT

    write(tmp_path, "typo.md", article(extra="topcis: onderwijs\n"))
    env = {"MAILER_DATABASE_URL": sqlite_url, "MAILER_CONTENT_DIR": str(tmp_path),
           "MAILER_NOW": "2026-12-03T09:00", "MAILER_SECRET_KEY": "k" * 32}
    warning = (f"  warning: {tmp_path / 'magazine' / 'typo.md'}: unknown field 'topcis' "
               "ignored; did you mean 'topics'?")
    for command in ("check local", "sync"):
        result = CliRunner().invoke(main, ["--config", str(ROOT / "mailer.toml"), "content",
                                           *command.split()], env=env, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        assert warning in result.stdout.splitlines(), result.stdout


def test_two_files_with_one_id_are_a_problem_not_a_lost_article(tmp_path):
    # A file copied to start a new article keeps the original's id.
    write(tmp_path, "a.md", article(title="Eerste", extra="id: artikel-1\n"))
    write(tmp_path, "b.md", article(title="Kopie", extra="id: artikel-1\n"))
    write_event(tmp_path, "x")
    write(tmp_path, "c.md", article(title="Zelfde", extra="id: event-x\n"))
    items, problems = fetch(tmp_path)
    assert [i.title for i in items] == ["Eerste", "Zelfde"]
    assert [str(p).replace(str(tmp_path) + "/", "") for p in problems] == [
        "magazine/b.md: id 'artikel-1' is already the id of magazine/a.md; "
        "give each file its own id",
        "events/x.md: id 'event-x' is already the id of magazine/c.md; "
        "give each file its own id",
    ]


def test_an_image_that_is_not_an_absolute_link_is_a_problem(tmp_path):
    # A mail has no site to resolve '/images/x.jpg' against: it would show a broken image.
    for name, image in (("pad", "/images/x.jpg"), ("bestand", "x.jpg"),
                        ("goed", "https://x.nl/images/x.jpg")):
        write(tmp_path, f"{name}.md", article(title=name, extra=f"image: {image}\n"
                                                                "image_alt: Een foto\n"))
    items, problems = fetch(tmp_path)
    assert [(i.source_id, i.image_url) for i in items] == [
        ("magazine-goed", "https://x.nl/images/x.jpg")]
    assert [str(p).split("/magazine/")[-1] for p in problems] == [
        "bestand.md: image must be an absolute http(s) link, got 'x.jpg'",
        "pad.md: image must be an absolute http(s) link, got '/images/x.jpg'",
    ]


def test_a_topic_that_is_not_a_theme_is_a_problem_of_that_file(tmp_path, sqlite_url):
    # Readers who chose themes would never get an article filed under a misspelt one.
    from mailer.app import App
    from tests.conftest import make_settings

    write(tmp_path, "typo.md", article(title="typo", extra="topics: [onderwjis, jeugdhulp]\n"))
    write(tmp_path, "label.md", article(title="label", extra="topics: Onderwijs\n"))
    write(tmp_path, "goed.md", article(title="goed", extra="topics: [onderwijs]\n"))
    app = App(make_settings(tmp_path, sqlite_url, content_dir=tmp_path),
              FixedClock(datetime(2026, 12, 3, tzinfo=UTC)))
    try:
        [(_, source)] = app.sources()
        items = list(source.fetch())
    finally:
        app.engine.dispose()
    assert [i.source_id for i in items] == ["magazine-goed"]
    assert [str(p).split("/magazine/")[-1] for p in source.problems] == [
        "label.md: topic 'Onderwijs' is not a theme of the list; did you mean 'onderwijs'?",
        "typo.md: topic 'onderwjis' is not a theme of the list; did you mean 'onderwijs'?",
    ]
