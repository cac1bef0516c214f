"""Complete RFC 5322 messages and the list headers every newsletter message carries."""

from __future__ import annotations

from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr

ONE_CLICK = "List-Unsubscribe=One-Click"
# Headers are written unfolded up to RFC 5322's hard limit of 998 characters. Python's
# folding at 78 drops the space where it splits encoded words ("van  ééngezamenlijke")
# and turns a long List-Unsubscribe into encoded words, which no client reads as a URL.
# Only the headers: the bodies keep SMTP's 76-character quoted-printable lines.
HEADERS_UNFOLDED = SMTP.clone(max_line_length=998)


def list_headers(list_id: str, list_name: str, unsubscribe_url: str, mailto: str) -> dict[str, str]:
    """RFC 2369/2919/8058 headers: one https one-click URI first, then mailto."""
    return {"List-Id": f"{list_name} <{list_id}>", **unsubscribe_headers(unsubscribe_url, mailto)}


def unsubscribe_headers(unsubscribe_url: str, mailto: str) -> dict[str, str]:
    """The personal part of `list_headers`: RFC 2369 List-Unsubscribe and RFC 8058's
    List-Unsubscribe-Post."""
    return {
        "List-Unsubscribe": f"<{unsubscribe_url}>, <mailto:{mailto}?subject=afmelden>",
        "List-Unsubscribe-Post": ONE_CLICK,
    }


def build_message(
    *, sender: str, reply_to: str, to_name: str, to_email: str, subject: str, html: str,
    text: str, message_id: str, date: datetime, headers: dict[str, str],
) -> EmailMessage:
    """A multipart/alternative message; raises ValueError on header injection attempts."""
    message = EmailMessage(policy=SMTP)
    message["From"] = sender
    message["To"] = formataddr((to_name, to_email)) if to_name else to_email
    message["Subject"] = subject
    message["Date"] = format_datetime(date)
    message["Message-ID"] = message_id
    message["Reply-To"] = reply_to
    for name, value in headers.items():
        message[name] = value
    message.set_content(text, subtype="plain", charset="utf-8", cte="quoted-printable")
    message.add_alternative(html, subtype="html", charset="utf-8", cte="quoted-printable")
    message.policy = HEADERS_UNFOLDED  # used when the message is written, after the bodies
    return message
