"""Why a source could not be read, worded once, in Dutch, for the editors.

Fetching and parsing raise FetchError or ContentError with a `failure` (mailer.errors.Failure)
and the facts its sentence needs; their own message stays the technical English line the
operators read in the log, with the URL actually fetched. The editors' reason names the
location they configured instead (never an API URL with its page and query) and says what
they can do about it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from mailer.errors import Failure
from mailer.sources import SourceConfig

CHECK_URL = "Controleer de URL in sources.toml."
PASSING = "Meestal is dat tijdelijk; blijft het, open {location} dan in je browser."
TELL_THE_SITE = "Blijft het, waarschuw dan de beheerder van de site."
# The position expat and the iCalendar parser prefix to their message ("<unknown>:1:136: ").
POSITION = re.compile(r"^(?:<unknown>|line \d+)(?::\d+)*:\s*")
TAIL_CHARS = 120
EXPECTED = {"feed": "geen geldige feed", "calendar": "geen geldige agenda",
            "json": "geen antwoord van de WordPress-API"}
WANTED = {"posts": ("berichten", "één bericht"), "events": ("evenementen", "één evenement")}
WORDPRESS_KINDS = ("wordpress", "wordpress-events")


def editor_reason(exc: BaseException, config: SourceConfig) -> str:
    """Why the source failed and what to do, in Dutch, naming the configured location."""
    failure = getattr(exc, "failure", None)
    facts: Mapping[str, Any] = getattr(exc, "facts", {})
    words = WORDING.get(failure) if failure else None
    if words is None:
        return (f"onverwachte fout bij het lezen van {config.location}; dit is iets voor de "
                "beheerder (zie het log van de mailer).")
    return words(config, facts)


def database_reason() -> str:
    """The editors' reason when the database refused a source's items."""
    return ("de database kon de stukken van deze bron niet opslaan; dit is iets voor de "
            "beheerder (zie het log van de mailer).")


def _host(config: SourceConfig) -> str:
    return urlsplit(config.location).hostname or config.location


def _seconds(value: Any) -> str:
    return f"{float(value):g}".replace(".", ",")


def _passing(config: SourceConfig) -> str:
    """The advice for a failure that usually passes: wait, else open the location."""
    return PASSING.format(location=config.location)


def _technical(facts: Mapping[str, Any]) -> str:
    """The parser's own words as a short tail, for whoever repairs the file."""
    lines = str(facts.get("parser") or "").strip().splitlines()
    text = POSITION.sub("", lines[0]) if lines else ""
    if not text:
        return ""
    text = text if len(text) <= TAIL_CHARS else text[: TAIL_CHARS - 1] + "…"
    return f" (technisch: {text})"


def _http_status(config: SourceConfig, facts: Mapping[str, Any]) -> str:
    status = int(facts.get("status") or 0)
    at = f"voor {config.location}"
    if status in (404, 410):
        where = ("Heeft de site de WordPress-API"
                 + (" en The Events Calendar" if config.kind == "wordpress-events" else "")
                 + ", en klopt de URL?") if config.kind in WORDPRESS_KINDS else \
            "Controleer de URL; misschien is de pagina verhuisd."
        return f"HTTP {status} (niet gevonden) van de server {at}. {where}"
    if status in (401, 403):
        return (f"HTTP {status} (geen toegang) van de server {at}. De bron is afgeschermd of "
                "de site weert ons; vraag de beheerder van de site.")
    if status == 429:
        return (f"HTTP 429 (te veel verzoeken) van de server {at}. Meestal gaat dat vanzelf "
                f"over. {TELL_THE_SITE}")
    if status >= 500:
        return (f"HTTP {status} (fout op de server) {at}. Het probleem ligt bij de website en "
                f"gaat meestal vanzelf over. {TELL_THE_SITE}")
    return f"HTTP {status} van de server {at}. {CHECK_URL}"


def _html_page(config: SourceConfig, facts: Mapping[str, Any]) -> str:
    expected = EXPECTED.get(str(facts.get("expected")), "geen geldige bron")
    feed = facts.get("feed_url")
    hint = f"; de pagina noemt zelf een feed: {feed}" if feed else ""
    return f"{expected} maar een HTML-pagina op {config.location}. {CHECK_URL[:-1]}{hint}."


def _not_a_list(config: SourceConfig, facts: Mapping[str, Any]) -> str:
    many, one = WANTED.get(str(facts.get("wanted")), WANTED["posts"])
    if facts.get("got") == "error":
        return (f"de WordPress-API gaf een foutmelding in plaats van {many} voor "
                f"{config.location}: “{facts.get('message')}”. {CHECK_URL}")
    got = one if facts.get("got") == "one" else "iets anders"
    return (f"verwachtte een lijst {many}, kreeg {got} van {config.location}. Controleer de URL "
            "in sources.toml: die wijst naar de site zelf, niet naar één stuk.")


def _file(config: SourceConfig, facts: Mapping[str, Any]) -> str:
    state = "bestaat niet" if facts.get("missing") else "is niet te lezen"
    return f"het bestand {config.location} {state}. Controleer de locatie in sources.toml."


Wording = Callable[[SourceConfig, Mapping[str, Any]], str]
WORDING: dict[Failure, Wording] = {
    Failure.REFUSED: lambda c, f: (
        f"verbinding geweigerd door {_host(c)} ({c.location}). Controleer de URL en of de "
        "website in de lucht is."),
    Failure.UNKNOWN_HOST: lambda c, f: (
        f"de server {_host(c)} is niet te vinden ({c.location}). Controleer de URL op "
        "tikfouten."),
    Failure.CONNECTION: lambda c, f: f"de verbinding met {_host(c)} mislukte. {_passing(c)}",
    Failure.TIMEOUT: lambda c, f: (
        f"time-out: {_host(c)} gaf binnen {_seconds(f.get('seconds', 0))} seconden geen "
        f"antwoord. {_passing(c)}"),
    Failure.HTTP_STATUS: _http_status,
    Failure.REDIRECTS: lambda c, f: (
        f"{c.location} stuurt door naar een adres dat we niet volgen (steeds verder, of geen "
        "webadres). Open de URL in je browser en zet het adres waar je uitkomt in "
        "sources.toml."),
    Failure.TOO_LARGE: lambda c, f: (
        f"{c.location} is groter dan {int(f.get('limit', 0)) // 1_000_000 or 1} MB, te groot "
        f"voor een bron. {CHECK_URL}"),
    Failure.CUT_OFF: lambda c, f: (
        f"het antwoord van {_host(c)} brak halverwege af. {_passing(c)}"),
    Failure.NOT_ALLOWED: lambda c, f: (
        f"{c.location} is geen webadres (http of https) en geen bestand. {CHECK_URL}"),
    Failure.UNREADABLE_FILE: _file,
    Failure.NO_FOLDER: lambda c, f: (
        f"de map {c.location} bestaat niet. Controleer de locatie in sources.toml."),
    Failure.HTML_PAGE: _html_page,
    Failure.NOT_A_FEED: lambda c, f: f"geen RSS- of Atom-feed op {c.location}. {CHECK_URL}",
    Failure.TRUNCATED_FEED: lambda c, f: (
        f"afgebroken feed: {c.location} houdt halverwege op of is beschadigd{_technical(f)}. "
        f"{_passing(c)}"),
    Failure.NOT_A_CALENDAR: lambda c, f: (
        f"geen agenda (iCalendar, .ics) op {c.location}. {CHECK_URL}"),
    Failure.TRUNCATED_CALENDAR: lambda c, f: (
        f"afgebroken agenda: {c.location} houdt halverwege op. {_passing(c)}"),
    Failure.INVALID_CALENDAR: lambda c, f: (
        f"ongeldige agenda: {c.location} bevat fouten die we niet kunnen lezen. Waarschuw de "
        f"beheerder van de agenda{_technical(f)}."),
    Failure.INVALID_JSON: lambda c, f: (
        f"geen geldig antwoord van de WordPress-API voor {c.location} (kapotte JSON). "
        f"{_passing(c)}"),
    Failure.NOT_A_LIST: _not_a_list,
}
