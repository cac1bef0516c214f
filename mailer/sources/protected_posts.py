"""Password-protected WordPress posts: how a feed or the REST API gives one away.

Subscribers would meet a password form, so such a post is never offered. The REST API says
so in `content.protected` / `excerpt.protected`; a feed only shows what WordPress writes in
its place: the password form as content (its action is the one structural sign) and, as
description, the excerpt placeholder, in the site's language. A summary-only feed has only
the placeholder; a feed whose content lost its form (a plugin or proxy that strips forms)
keeps only the form's text. Both are recognised by their opening words.
"""

from __future__ import annotations

from mailer.sanitize import html_to_text

PASSWORD_FORM = "wp-login.php?action=postpass"
PROTECTED = "password-protected post; not offered"

# wp-includes/post-template.php: get_the_excerpt() returns "There is no excerpt because
# this is a protected post." and get_the_password_form() opens with "This content is
# password protected. To view it please enter your password below:" (before WordPress 5.x
# "This post is password protected. ..."). Below their WordPress core translations (6.1
# language packs: nl_NL, nl_BE, de_DE, fr_FR, es_ES, es_CL, es_PE), entities decoded, and
# for the form only its first sentence, which informal and formal variants share.
PLACEHOLDER_OPENINGS = (
    "There is no excerpt because this is a protected post.",
    "This content is password protected.",
    "This post is password protected.",
    "Er is geen samenvatting omdat dit bericht is beveiligd.",
    "Er is geen uittreksel omdat dit bericht is beveiligd.",
    "Dit bericht is beveiligd met een wachtwoord.",
    "Es gibt keine Kurzfassung, da dies ein geschützter Beitrag ist.",
    "Dieser Inhalt ist passwortgeschützt.",
    "Il n'y pas d'extrait, car cet article est protégé.",
    "Cet article est protégé par un mot de passe.",
    "No hay extracto porque es una entrada protegida.",
    "No hay extracto porque es un artículo protegido.",
    "Este contenido está protegido por contraseña.",
    "Este contenido está protegido por una contraseña.",
    "Este artículo está protegido.",
)


def _comparable(text: str) -> str:
    """Text as compared: typographic apostrophes plain, case and white space ignored."""
    return " ".join(text.replace("\u2019", "'").casefold().split())


_OPENINGS = tuple(_comparable(text) for text in PLACEHOLDER_OPENINGS)


def is_protected_post(summary: str, content: str = "") -> bool:
    """Whether a WordPress feed entry is a password-protected post: its content holds the
    password form, or its summary or content opens with what WordPress writes instead."""
    if PASSWORD_FORM in content:
        return True
    return any(_opens_with_placeholder(text) for text in (summary, content) if text)


def _opens_with_placeholder(fragment: str) -> bool:
    head = _comparable(html_to_text(fragment[:2000], one_line=True))
    return head.startswith(_OPENINGS)
