"""One issue rendered once per segment (preference set): HTML and text with personal markers."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from types import SimpleNamespace
from typing import NamedTuple

import jinja2
import mjml
from markupsafe import Markup
from premailer import Premailer

from mailer import dutch
from mailer.compose import derive_preheader, derive_subject, news_in
from mailer.links import Links
from mailer.models import EVENT_TYPES, Issue, ItemStatus, Preferences, StoredItem
from mailer.render.personalize import PERSONAL_KEYS, PersonalTemplate, greeting, marker
from mailer.sanitize import html_to_text
from mailer.settings import Settings

HTML_TEMPLATE = "newsletter.mjml.j2"
TEXT_TEMPLATE = "newsletter.txt.j2"
DOCTYPE = "<!doctype html>"

# premailer logs every CSS property it does not know (mso-*, -webkit-*): noise, not news.
logging.getLogger("cssutils").setLevel(logging.CRITICAL)


@dataclass(frozen=True)
class RenderedSegment:
    """An issue as one segment sees it: subject, preheader, HTML and text (%%markers%% left in)."""

    segment_key: str
    subject: str
    preheader: str
    html: str
    text: str
    item_count: int
    new_count: int  # of those, the ones no earlier issue carried (see compose.news_in)

    @cached_property
    def html_template(self) -> PersonalTemplate:
        return PersonalTemplate.parse(self.html, escape_html=True)

    @cached_property
    def text_template(self) -> PersonalTemplate:
        return PersonalTemplate.parse(self.text, escape_html=False)


def template_env(templates_dir: Path, *, html: bool) -> jinja2.Environment:
    """The Jinja environment for the HTML (autoescaped) or text templates."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir),
        autoescape=html,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )


class NewsletterRenderer:
    """Renders issues for segments; the Jinja environments are built once and reused."""

    def __init__(self, settings: Settings, links: Links):
        self.settings = settings
        self.links = links
        folder = settings.path(settings.templates_dir)
        self.html_env = template_env(folder, html=True)
        self.text_env = template_env(folder, html=False)
        # Content (a feed's title, an editor's intro) may hold "%%word%%" itself, which in
        # a body reads as a personal marker: a send would fill in the reader's link there,
        # or fail for every recipient on an unknown key. So the context carries stand-ins
        # no content can hold, and `_with_markers` turns them into markers after the "%%"
        # of the content is broken up.
        self._stand_in = f"m{secrets.token_hex(8)}"

    def render(self, issue: Issue, preferences: Preferences) -> RenderedSegment:
        """Render the issue as a subscriber with these preferences receives it."""
        magazine, agenda = select_for(issue, preferences)
        counts = counted(issue, magazine, agenda)
        issue = segment_texts(issue, magazine, agenda, self.settings.list_name)
        context = self.context(issue, magazine, agenda, preferences)
        html = self._with_markers(self._html(context))
        text = self._with_markers(self.text_env.get_template(TEXT_TEMPLATE).render(context))
        return RenderedSegment(
            segment_key=preferences.key(), subject=issue.subject, html=html, text=text,
            item_count=counts.item_count, new_count=counts.new_count, preheader=issue.preheader,
        )

    def web_html(self, issue: Issue) -> str:
        """The public web version of an issue: every section, as a web page for anyone.

        Rendered with `web=True`: no personal marker is in the context, so no value of a
        subscriber can be filled in, and a template that asks for one fails (StrictUndefined).
        """
        everything = Preferences()
        magazine, agenda = select_for(issue, everything)
        issue = segment_texts(issue, magazine, agenda, self.settings.list_name)
        return self._html(self.context(issue, magazine, agenda, everything, web=True))

    def _marker(self, key: str) -> str:
        """The stand-in for a personal marker while rendering (see __init__)."""
        return f"{self._stand_in}{key}{self._stand_in}"

    def _with_markers(self, body: str) -> str:
        """A rendered body whose only markers are the renderer's own: any "%%" the content
        brought gets a zero-width space in between, then the stand-ins become markers."""
        body = body.replace("%%", "%\u200b%")
        for key in PERSONAL_KEYS:
            body = body.replace(self._marker(key), marker(key))
        return body

    def _html(self, context: dict) -> str:
        mjml_source = self.html_env.get_template(HTML_TEMPLATE).render(context)
        return inline_css(compile_mjml(mjml_source))

    def context(
        self, issue: Issue, magazine: list[StoredItem], agenda: list[StoredItem],
        preferences: Preferences, *, web: bool = False,
    ) -> dict:
        """The template context, as documented at the top of templates/newsletter.mjml.j2."""
        s = self.settings
        return dict(
            issue=SimpleNamespace(
                number=issue.number, date_long=dutch.long_date(issue.issue_date),
                subject=issue.subject, preheader=issue.preheader,
                intro_html=Markup(issue.intro) if issue.intro else None,
                intro_text=html_to_text(issue.intro) if issue.intro else None,
            ),
            list_name=s.list_name,
            magazine=[self._article(i) for i in magazine],
            agenda=[self._event(i) for i in agenda],
            show_magazine="magazine" in preferences.sections,
            show_agenda="agenda" in preferences.sections,
            sender=SimpleNamespace(
                name=s.from_name, organisation=s.organisation, postal_address=s.postal_address,
                email=s.reply_to, website=s.website,
            ),
            links=self._links(issue, web),
            greeting=greeting("") if web else self._marker("greeting"),
            web=web,
        )

    def _links(self, issue: Issue, web: bool) -> SimpleNamespace:
        """The mail's links: personal markers; the web version's: subscribe instead."""
        common = dict(archive=self.links.url("archief"), privacy=self.settings.privacy_url)
        if web:
            return SimpleNamespace(subscribe=self.links.url("aanmelden"), **common)
        return SimpleNamespace(
            web_version=self.links.web_version_url(issue.period),
            preferences=self._marker("preferences_url"),
            unsubscribe=self._marker("unsubscribe_url"),
            **common,
        )

    def _article(self, stored: StoredItem) -> SimpleNamespace:
        item = stored.item
        return SimpleNamespace(
            title=item.title, url=item.url, summary_html=Markup(item.summary),
            summary_text=html_to_text(item.summary), image=item.image_url,
            image_alt=item.image_alt or "",
            published_long=dutch.long_date(item.published_at) if item.published_at else "",
            topics=[self.settings.themes.get(t, t) for t in item.topics],
        )

    def _event(self, stored: StoredItem) -> SimpleNamespace:
        item = stored.item
        starts = dutch.local(item.starts_at)
        return SimpleNamespace(
            title=item.title, url=item.url,
            when=dutch.event_when(item.starts_at, item.ends_at, item.all_day),
            day=str(starts.day), month_short=dutch.MONTHS_SHORT[starts.month - 1],
            event_type_label=EVENT_TYPES.get(item.event_type or "", "Bijeenkomst"),
            location=item.location, online=item.online,
            summary_html=Markup(item.summary), summary_text=html_to_text(item.summary),
            cancelled=item.status is ItemStatus.CANCELLED,
            image=item.image_url, image_alt=item.image_alt or "",
        )


def select_for(issue: Issue, preferences: Preferences) -> tuple[list[StoredItem], list[StoredItem]]:
    """The articles and events a preference set receives: its sections, matching themes.

    An item without topics is for everyone; empty themes in the preferences mean all.
    """
    def wanted(stored: StoredItem) -> bool:
        topics = set(stored.item.topics)
        return not preferences.themes or not topics or bool(topics & preferences.themes)

    sections = preferences.sections
    magazine = [i for i in issue.magazine if wanted(i)] if "magazine" in sections else []
    agenda = [i for i in issue.events if wanted(i)] if "agenda" in sections else []
    if not any(e.item.status is ItemStatus.ACTIVE for e in agenda) and not magazine:
        agenda = []  # only cancellations left: nothing worth a mail
    return magazine, agenda


class SegmentCounts(NamedTuple):
    """How many items of an issue a segment gets, and how many of them are news."""

    item_count: int
    new_count: int


def segment_counts(issue: Issue, preferences: Preferences) -> SegmentCounts:
    """What a preference set gets of an issue, counted: all its items and the new ones.

    Cheap (no rendering): a send decides with it which segments have nothing new for
    them, and the rendering stores the same counts.
    """
    return counted(issue, *select_for(issue, preferences))


def counted(issue: Issue, magazine: list[StoredItem], agenda: list[StoredItem]
            ) -> SegmentCounts:
    """The counts of a segment's selected items: all of them and the new ones."""
    return SegmentCounts(len(magazine) + len(agenda), len(news_in(issue, magazine + agenda)))


def segment_texts(issue: Issue, magazine: list[StoredItem], agenda: list[StoredItem],
                  list_name: str) -> Issue:
    """The issue with a subject and preheader that name only what this segment gets.

    Derived texts name the lead article and count the agenda of the whole issue, which an
    agenda-only or one-theme reader does not get; they are derived again from the
    segment's items. An editor's own subject or preheader (content/issues/) is kept.
    """
    if not magazine and not agenda:
        return issue  # an empty segment is not sent
    part = replace(issue, magazine=tuple(magazine), events=tuple(agenda))
    subject = (derive_subject(part, list_name)
               if issue.subject == derive_subject(issue, list_name) else issue.subject)
    preheader = (derive_preheader(part)
                 if issue.preheader == derive_preheader(issue) else issue.preheader)
    return replace(issue, subject=subject, preheader=preheader)


def compile_mjml(source: str) -> str:
    """MJML to responsive HTML."""
    # MJML describes the body to screen readers in English; read in a Dutch voice, "email"
    # is the word for enamel.
    return mjml.mjml2html(source).replace('aria-roledescription="email"',
                                          'aria-roledescription="e-mail"', 1)


def inline_css(html: str) -> str:
    """Inline the CSS rules into style attributes; media queries stay in a style block."""
    inlined = Premailer(
        html,
        keep_style_tags=True,
        remove_classes=False,
        strip_important=False,
        disable_validation=True,
        allow_network=False,
        cssutils_logging_level=logging.CRITICAL,
        # MJML writes width="552" plus style="width:100%"; premailer would copy the 100%
        # into the attribute, and Outlook for Windows only honours pixel attributes.
        disable_basic_attributes=["width", "height"],
    ).transform()
    # lxml drops the doctype; without it the web version renders in quirks mode.
    return inlined if inlined.lstrip().lower().startswith("<!doctype") else DOCTYPE + inlined
