"""Reading the subscribe and preferences forms: values, and errors per field in Dutch."""

from __future__ import annotations

from dataclasses import dataclass, field

from werkzeug.datastructures import MultiDict

from mailer.addresses import InvalidAddress, UnmailableAddress, normalize_email
from mailer.models import SECTIONS, Preferences
from mailer.store.subscribers import clean_name

SECTION_LABELS = {
    "magazine": ("Uit het magazine", "artikelen, interviews en achtergronden"),
    "agenda": ("Agenda", "trainingen, werkateliers en bijeenkomsten"),
}
NAME_MAX = 200


@dataclass
class FormInput:
    """What a form said, cleaned, with an error message per field name."""

    email: str = ""
    name: str = ""
    sections: set[str] = field(default_factory=set)
    themes: set[str] = field(default_factory=set)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def preferences(self) -> Preferences:
        """The chosen preferences; no section chosen on the subscribe form means both."""
        return Preferences(frozenset(self.sections or SECTIONS), frozenset(self.themes))


def read_choices(form: MultiDict, themes: dict[str, str], result: FormInput) -> None:
    """Sections and themes from checkboxes; unknown values are ignored, not trusted."""
    result.sections = {s for s in form.getlist("onderdelen") if s in SECTIONS}
    result.themes = {t for t in form.getlist("themas") if t in themes}
    raw_name = form.get("naam", "")
    if len(raw_name) > NAME_MAX:
        result.errors["naam"] = f"Je naam mag hoogstens {NAME_MAX} tekens lang zijn."
    result.name = clean_name(raw_name)


def read_subscribe(form: MultiDict, themes: dict[str, str]) -> FormInput:
    """The subscribe form: e-mail address (required), name, sections, themes."""
    result = FormInput(email=form.get("email", "").strip()[:320])
    read_choices(form, themes, result)
    if not result.email:
        result.errors["email"] = "Vul je e-mailadres in."
    else:
        try:
            result.email = normalize_email(result.email)
        except UnmailableAddress:  # the confirmation mail would never come
            result.errors["email"] = ("Dit e-mailadres kunnen we niet gebruiken: vóór de @ "
                                      "mogen geen letters met accenten of andere bijzondere "
                                      "tekens staan.")
        except InvalidAddress:
            result.errors["email"] = ("Dit is geen geldig e-mailadres. Controleer het, "
                                      "bijvoorbeeld: naam@organisatie.nl")
    return result


def read_preferences(form: MultiDict, themes: dict[str, str]) -> FormInput:
    """The preferences form: at least one section, themes, name."""
    result = FormInput()
    read_choices(form, themes, result)
    if not result.sections:
        result.errors["onderdelen"] = ("Kies minstens één onderdeel. Wil je niets meer "
                                       "ontvangen? Meld je dan af.")
    return result
