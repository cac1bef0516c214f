from datetime import date, timedelta

import pytest

from mailer.compose import compose_issue, issue_moment, period_of
from mailer.errors import ComposeError
from mailer.models import IssueStatus
from mailer.sending import send_issue, store_issue
from mailer.store import issues as issue_store


def compose(app, on: date):
    with app.engine.connect() as conn:
        return compose_issue(conn, app.settings, issue_moment(app.settings, app.clock, on))


def test_first_issue_takes_the_lookback_window_and_the_horizon(loaded_app):
    issue = compose(loaded_app, date(2026, 12, 3))
    assert issue.period == "2026-W49" and issue.number == 1
    published = [s.item.published_at for s in issue.magazine]
    assert all(p <= issue.moment for p in published)
    assert all(p > issue.moment - timedelta(days=28) for p in published)
    assert published == sorted(published, reverse=True)
    starts = [s.item.starts_at for s in issue.events]
    assert starts and all(issue.moment <= s < issue.moment + timedelta(weeks=8) for s in starts)
    assert issue.subject.startswith("WeerbaarNL nr. 1: ")
    assert issue.intro and "<p>" in issue.intro  # content/issues/2026-12-03.md


def test_an_item_never_appears_in_two_issues(loaded_app):
    first = store_issue(loaded_app, issue_moment(loaded_app.settings, loaded_app.clock,
                                                 date(2026, 12, 3)))
    send_issue(loaded_app, first)
    second = compose(loaded_app, date(2026, 12, 10))
    # No article was published after the first issue; only an event that came within the
    # horizon since then makes the second issue.
    assert second.magazine == ()
    first_events = {s.id for s in first.events}
    new_events = [s for s in second.events if s.id not in first_events]
    assert new_events and all(s.item.starts_at > first.moment + timedelta(weeks=8)
                              for s in new_events)
    assert not {s.id for s in first.magazine} & {s.id for s in second.magazine}


def test_a_later_issue_headlines_what_is_new_not_what_an_earlier_issue_carried(loaded_app):
    from mailer.models import Preferences

    first = store_issue(loaded_app, issue_moment(loaded_app.settings, loaded_app.clock,
                                                 date(2026, 12, 3)))
    send_issue(loaded_app, first)
    # The stored issue, as sending renders it per segment.
    second = store_issue(loaded_app, issue_moment(loaded_app.settings, loaded_app.clock,
                                                  date(2026, 12, 10)))
    carried = {s.id for s in first.events}
    [new] = [s for s in second.events if s.id not in carried]
    assert "Rotterdam" in new.item.title
    # Was "WeerbaarNL nr. 2: Werkatelier … Zwolle", an event issue 1 already carried.
    assert second.subject.startswith("WeerbaarNL nr. 2: Training Gesprekken")
    agenda = loaded_app.renderer.render(second, Preferences(frozenset({"agenda"})))
    assert agenda.subject == second.subject
    # Managers get only events issue 1 announced: none of them headlines.
    managers = loaded_app.renderer.render(
        second, Preferences(frozenset({"agenda"}), frozenset({"bestuurders"})))
    assert managers.subject == "WeerbaarNL nr. 2: de agenda voor de komende weken"


def test_a_derived_subject_fits_what_lint_accepts_and_ends_at_a_word(loaded_app):
    from dataclasses import replace

    from mailer.compose import derive_subject
    from mailer.render.content_checks import check_subject_and_preheader

    issue = compose(loaded_app, date(2026, 12, 3))
    # Was 87 characters (derived subjects could have 90), so lint warned on every issue.
    assert issue.subject == "WeerbaarNL nr. 1: Samenwerking in de keten: wat Apeldoorn…"
    assert not [f for f in check_subject_and_preheader(issue.subject, issue.preheader)
                if f.code == "subject"]
    subject = derive_subject(replace(issue, number=123), "Nieuwsbrief van het Platform JEP")
    assert len(subject) <= 60 and subject.endswith(": Samenwerking in…")


def test_past_events_never_appear(loaded_app):
    issue = compose(loaded_app, date(2027, 1, 20))
    assert issue is not None
    assert all(s.item.starts_at >= issue.moment for s in issue.events)


def test_nothing_new_gives_no_issue(loaded_app):
    assert compose(loaded_app, date(2027, 6, 1)) is None


def test_a_draft_is_recomposed_but_a_sent_issue_is_frozen(loaded_app):
    moment = issue_moment(loaded_app.settings, loaded_app.clock, date(2026, 12, 3))
    draft = store_issue(loaded_app, moment)
    again = store_issue(loaded_app, moment)
    assert again.id == draft.id and again.number == draft.number
    send_issue(loaded_app, again)
    with loaded_app.engine.connect() as conn:
        record = issue_store.issue_by_id(conn, draft.id)
    assert record.status is IssueStatus.SENT
    assert store_issue(loaded_app, moment).magazine == draft.magazine


def test_editorial_file_overrides_subject_and_rejects_line_breaks(loaded_app, tmp_path):
    content = tmp_path / "content"
    (content / "issues").mkdir(parents=True)
    for sub in ("magazine", "events"):
        (content / sub).symlink_to(loaded_app.settings.path(loaded_app.settings.content_dir) / sub)
    (content / "issues" / "2026-12-03.md").write_text(
        '---\nsubject: "Speciale editie"\npreheader: "Alles over de keten"\n---\nHallo.\n')
    from mailer.settings import with_overrides

    loaded_app.settings = with_overrides(loaded_app.settings, content_dir=content)
    issue = compose(loaded_app, date(2026, 12, 3))
    assert (issue.subject, issue.preheader) == ("Speciale editie", "Alles over de keten")
    (content / "issues" / "2026-12-03.md").write_text(
        '---\nsubject: "Speciaal\\r\\nBcc: iedereen@example.org"\n---\n')
    with pytest.raises(ComposeError) as refused:
        compose(loaded_app, date(2026, 12, 3))
    # Editors read this: Dutch, naming the file and the field to fix.
    assert str(refused.value) == (
        f"{content / 'issues' / '2026-12-03.md'}: het veld subject bevat een regeleinde; "
        "zet de tekst op één regel (een regeleinde maakt de kopregels van de mail kapot)")


def test_period_is_the_amsterdam_iso_week(app):
    from datetime import UTC, datetime

    # Sunday 23:30 UTC on 3 January 2027 is already Monday in Amsterdam: week 1.
    assert period_of(datetime(2027, 1, 3, 23, 30, tzinfo=UTC)) == "2027-W01"
    assert period_of(datetime(2027, 1, 3, 22, 30, tzinfo=UTC)) == "2026-W53"


@pytest.mark.parametrize("escaped, code", [("\\L", "2028"), ("\\N", "0085"), ("\\a", "0007"),
                                           ("\\t", "0009")])
def test_editorial_subject_with_other_line_breaks_or_control_characters_is_refused(
        loaded_app, tmp_path, escaped, code):
    # These pass a check for \r and \n, then crash the MJML compiler or the mail header.
    content = tmp_path / "content"
    (content / "issues").mkdir(parents=True)
    for sub in ("magazine", "events"):
        (content / sub).symlink_to(loaded_app.settings.path(loaded_app.settings.content_dir) / sub)
    (content / "issues" / "2026-12-03.md").write_text(
        f'---\nsubject: "Speciaal{escaped}nummer"\n---\n')
    from mailer.settings import with_overrides

    loaded_app.settings = with_overrides(loaded_app.settings, content_dir=content)
    with pytest.raises(ComposeError, match=f"2026-12-03.md: het veld subject bevat het "
                                           f"onzichtbare teken U\\+{code}"):
        compose(loaded_app, date(2026, 12, 3))


def test_a_derived_preheader_drops_a_title_rather_than_cut_the_agenda_count(loaded_app):
    from dataclasses import replace

    from mailer.compose import PREHEADER_MAX, derive_preheader

    issue = compose(loaded_app, date(2026, 12, 3))
    lead, *rest = issue.magazine
    longer = tuple(replace(s, item=replace(s.item, title=s.item.title + " in de praktijk"))
                   for s in rest)
    # Two titles do not fit; was "Ook: <title>, <title> en 7 activiteiten in…", the count
    # cut off mid-phrase.
    assert derive_preheader(issue) == (f"Ook in dit nummer: {rest[0].item.title} en nog 6 "
                                       "artikelen. In de agenda: 7 nieuwe activiteiten.")
    # Nor does one: counted, not cut.
    assert derive_preheader(replace(issue, magazine=(lead, *longer))) == (
        "Ook in dit nummer: nog 7 artikelen. In de agenda: 7 nieuwe activiteiten.")
    very_long = replace(rest[0], item=replace(rest[0].item, title="Lang " * 40))
    preheader = derive_preheader(replace(issue, magazine=(lead, very_long)))
    assert preheader == "Ook in dit nummer: nog 1 artikel. In de agenda: 7 nieuwe activiteiten."
    no_agenda = derive_preheader(replace(issue, magazine=(lead, *longer[:2]), events=()))
    assert len(no_agenda) <= PREHEADER_MAX and no_agenda == (
        f"Ook in dit nummer: {longer[0].item.title} en nog 1 artikel.")


def test_derived_preheaders_say_what_comes_with_the_subject_in_dutch(loaded_app):
    from dataclasses import replace

    from mailer.compose import derive_preheader
    from mailer.models import Preferences
    from mailer.render.content_checks import check_subject_and_preheader

    first = store_issue(loaded_app, issue_moment(loaded_app.settings, loaded_app.clock,
                                                 date(2026, 12, 3)))
    # One article, nothing else: its summary, not its title again.
    [lead] = first.magazine[:1]
    alone = derive_preheader(replace(first, magazine=(lead,), events=()))
    assert alone.startswith("In Apeldoorn schuiven gemeente, politie") and alone.endswith("…")
    # One article and the agenda.
    assert derive_preheader(replace(first, magazine=(lead,))) == (
        "Verder in dit nummer: de agenda met 7 nieuwe activiteiten.")
    send_issue(loaded_app, first)
    second = store_issue(loaded_app, issue_moment(loaded_app.settings, loaded_app.clock,
                                                  date(2026, 12, 10)))
    # Agenda only: the subject names the new event; was "Ook: 7 activiteiten in de agenda",
    # counting that event again, and too short for the inbox.
    agenda = loaded_app.renderer.render(second, Preferences(frozenset({"agenda"})))
    assert agenda.preheader == (
        "Donderdag 28 januari 2027, 10.00–16.00 uur, Stadhuis Rotterdam, Coolsingel 40, "
        "Rotterdam. Verder in de agenda: 6 activiteiten.")
    managers = loaded_app.renderer.render(
        second, Preferences(frozenset({"agenda"}), frozenset({"bestuurders"})))
    assert managers.preheader.startswith("In de agenda: ")
    assert managers.preheader.endswith(" januari 2027.")
    for segment in (agenda, managers):
        assert check_subject_and_preheader(segment.subject, segment.preheader) == []
    # An online event: "online", also when its location is the meeting link.
    online = next(e for e in second.events if e.item.online)
    for location in (None, "https://teams.example.org/meet/123"):
        event = replace(online, item=replace(online.item, location=location))
        assert derive_preheader(replace(second, events=(event,), announced=frozenset())) == (
            "Dinsdag 15 december 2026, 15.00–16.30 uur, online. Lees verder voor alle details.")


def test_an_editorial_file_with_a_byte_order_mark_keeps_its_front_matter(tmp_path):
    from mailer.compose import read_editorial

    (tmp_path / "issues").mkdir()
    (tmp_path / "issues" / "2026-12-03.md").write_text(
        "\ufeff---\nsubject: Speciale editie\n---\nHallo lezers\n", encoding="utf-8")
    assert read_editorial(tmp_path, date(2026, 12, 3)) == {
        "subject": "Speciale editie", "intro": "<p>Hallo lezers</p>"}
