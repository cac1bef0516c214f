"""Complete RFC 5322 messages and the list headers every newsletter message carries."""

from __future__ import annotations

import base64
import re
from datetime import datetime
from email.header import decode_header, make_header
from email.headerregistry import AddressHeader, UnstructuredHeader
from email.message import EmailMessage
from email.policy import SMTP, EmailPolicy
from email.utils import format_datetime, formataddr, parseaddr
from typing import Any

ONE_CLICK = "List-Unsubscribe=One-Click"
ENCODED_WORD_MAX = 75  # RFC 2047 section 2
_Q_PLAIN = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!*+-/")
# Words that cannot stay literal: non-ASCII ones, ones a decoder would take for an encoded
# word, and in a phrase (a display name) also ones with characters outside RFC 5322's
# atext. A run of them, with the whitespace between, becomes one row of encoded words;
# the other words stay literal, so encoded words are rarely next to each other.
_NON_ASCII = r"[^\x00-\x7f]"
_NOT_ATEXT = r"[^\sA-Za-z0-9!#$%&'*+\-/=?^_`{|}~]"


def _runs_of_words_with(char: str) -> re.Pattern[str]:
    """Runs of words holding `char` or "=?", with the whitespace between them."""
    word = rf"\S*(?:{char}|=\?)\S*"
    return re.compile(rf"{word}(?:\s+{word})*")


_TEXT_RUN = _runs_of_words_with(_NON_ASCII)
_PHRASE_RUN = _runs_of_words_with(_NOT_ATEXT)


def _is_plain(text: str) -> bool:
    """Whether text can stand in a header as it is: ASCII, and no encoded word look-alike."""
    return text.isascii() and "=?" not in text


def _encode_runs(run: re.Pattern[str], text: str) -> str:
    """Each match of `run` in text as encoded words, one space apart."""
    return run.sub(lambda found: " ".join(encoded_words(found.group())), text)


def _q(text: str) -> str:
    """RFC 2047 "Q" encoding, with only the characters allowed in a phrase left plain."""
    return "".join(chr(b) if b in _Q_PLAIN else "_" if b == 32 else f"={b:02X}"
                   for b in text.encode())


def _b(text: str) -> str:
    """RFC 2047 "B" encoding."""
    return base64.b64encode(text.encode()).decode("ascii")


def encoded_words(text: str) -> list[str]:
    """`text` as RFC 2047 encoded words of at most 75 characters, Q or B, whichever is
    shorter. Every space is inside a word, since decoders drop the ones between words;
    a word ends after a space where it can, so a lenient decoder splits no word."""
    code, encode = ("q", _q) if len(_q(text)) <= len(_b(text)) else ("b", _b)
    room = ENCODED_WORD_MAX - len(f"=?utf-8?{code}??=")
    words, start = [], 0
    while start < len(text):
        end = start + 1
        while end < len(text) and len(encode(text[start:end + 1])) <= room:
            end += 1
        after_space = text.rfind(" ", start + 1, end) + 1
        if end < len(text) and after_space > start:
            end = after_space
        words.append(f"=?utf-8?{code}?{encode(text[start:end])}?=")
        start = end
    return words


def encode_text(text: str) -> str:
    """Unstructured header text (a Subject) in ASCII: each run of words that cannot stay
    literal becomes encoded words, one space apart."""
    return _encode_runs(_TEXT_RUN, text)


def encode_phrase(name: str) -> str:
    """A display name in ASCII, unchanged if it is: the words that cannot be atoms as
    encoded words. Python's display-name parser (3.11) keeps the space between two encoded
    words side by side, against RFC 2047 section 6.2, so a run too long for one encoded
    word comes back from it with a space too many; literal words between keep runs short."""
    return name if _is_plain(name) else _encode_runs(_PHRASE_RUN, name)


def format_address(name: str, address: str) -> str:
    """A mailbox as an ASCII header value (a From to keep in settings or send to an API)."""
    if not name or _is_plain(name):
        return formataddr((name, address))
    return f"{encode_phrase(name)} <{address}>"


def sender_parts(sender: str) -> tuple[str, str]:
    """The display name, as text, and the address of a From value such as
    `format_address` writes."""
    name, address = parseaddr(sender)
    return str(make_header(decode_header(name))) if name else "", address


def list_id_value(list_name: str, list_id: str) -> str:
    """The RFC 2919 List-Id header value, in ASCII."""
    return encode_text(f"{list_name} <{list_id}>")


class UnfoldedHeaders(EmailPolicy):
    """Writes headers unfolded up to RFC 5322's hard limit of 998 characters, with
    non-ASCII text as encoded words of at most RFC 2047's 75 characters each.

    Python's folding at 78 drops the space where it splits encoded words ("van
    ééngezamenlijke") and turns a long List-Unsubscribe into encoded words, which no
    client reads as a URL; unfolded, it writes all non-ASCII text as one encoded word,
    however long. Only the headers: the bodies keep SMTP's 76-character quoted-printable
    lines."""

    def fold(self, name: str, value: Any) -> str:
        """The header line, our encoding where it applies, else Python's."""
        return self._encoded_line(name, value) or super().fold(name, value)

    def fold_binary(self, name: str, value: Any) -> bytes:
        """fold, as bytes."""
        line = self._encoded_line(name, value)
        return line.encode("ascii") if line else super().fold_binary(name, value)

    def _encoded_line(self, name: str, value: Any) -> str | None:
        """The line of a non-ASCII Subject, address or other text header, or None."""
        if self.utf8 or _is_plain(str(value)):
            return None
        if isinstance(value, AddressHeader):
            if any(g.display_name is not None for g in value.groups) or not all(
                    a.addr_spec.isascii() for a in value.addresses):
                return None
            text = ", ".join(format_address(a.display_name, a.addr_spec)
                             for a in value.addresses)
        elif isinstance(value, UnstructuredHeader):
            text = encode_text(str(value))
        else:
            return None
        line = f"{name}: {text}"
        return line + self.linesep if len(line) <= self.max_line_length else None


HEADERS_UNFOLDED = UnfoldedHeaders(linesep="\r\n", max_line_length=998)


def list_headers(list_id: str, list_name: str, unsubscribe_url: str, mailto: str) -> dict[str, str]:
    """RFC 2369/2919/8058 headers: one https one-click URI first, then mailto."""
    return {"List-Id": list_id_value(list_name, list_id),
            **unsubscribe_headers(unsubscribe_url, mailto)}


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
    # Parsed as one encoded word: Python adds a space between two (see encode_phrase).
    message["From"] = formataddr(sender_parts(sender)) if "=?" in sender else sender
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
