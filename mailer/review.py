"""Every check an editor gets before sending: the foundation's lint plus the deeper ones."""

from __future__ import annotations

from dataclasses import dataclass

from mailer.app import App
from mailer.errors import ConfigError
from mailer.models import Issue
from mailer.preview import Preview, sample_recipient
from mailer.render.caniemail import CanIEmailDataMissing, check_support, load_support_data
from mailer.render.content_checks import (
    check_images,
    check_subject_and_preheader,
    check_text_links,
)
from mailer.render.contrast import check_contrast
from mailer.render.dom import parse_html
from mailer.render.lint import WARNING, Finding


@dataclass(frozen=True)
class ReviewOptions:
    """Which of the slower checks to run."""

    check_links: bool = False  # online: link reachability and image files
    spam: bool = True  # SpamAssassin takes a few seconds
    # Also the caniemail findings hidden by default: those only MJML's own markup or the
    # template's progressive enhancements cause.
    show_hidden: bool = False


def review(app: App, issue: Issue, preview: Preview,
           options: ReviewOptions = ReviewOptions()) -> list[Finding]:
    """All findings for a rendered sample message, errors first."""
    root = parse_html(preview.html)
    findings = list(preview.findings)
    findings += check_subject_and_preheader(preview.segment.subject,
                                            preview.segment.preheader)
    findings += check_images(root)
    findings += check_contrast(root)
    findings += check_text_links(root, preview.text)
    findings += client_support(app, preview.html, root, show_hidden=options.show_hidden)
    if options.spam:
        from mailer.spam import check_spam

        findings += check_spam(preview.eml, app.settings.spamassassin)
    if options.check_links:
        from mailer.linkcheck import check_image_files, check_links

        findings += check_links(root, app.settings.link_timeout, skip=unpublished_urls(app, issue))
        findings += check_image_files(root, app.settings.link_timeout)
    return sorted(findings, key=lambda f: f.level != "error")


def unpublished_urls(app: App, issue: Issue) -> list[str]:
    """Links that cannot work before sending: the sample's personal links, the web version."""
    values = sample_recipient(app).values
    return [values["unsubscribe_url"], values["preferences_url"],
            app.links.web_version_url(issue.period)]


def client_support(app: App, html: str, root, *, show_hidden: bool = False) -> list[Finding]:
    """caniemail findings for the configured clients; a warning when the data is missing."""
    s = app.settings
    try:
        data = load_support_data(s.path(s.caniemail_data).resolve())
    except CanIEmailDataMissing as exc:
        return [Finding(WARNING, "caniemail", f"{exc}; e-mail client support not checked")]
    unknown = [c for c in s.lint_clients if not data.knows(c)]
    if unknown:
        raise ConfigError(f"setting lint_clients: unknown client(s) {', '.join(unknown)}; use "
                          "family.platform names from caniemail.com, e.g. outlook.windows")
    return check_support(html, root, data, tuple(s.lint_clients), show_hidden=show_hidden)
