"""E-mail addresses as they come in (forms, imports, settings, the CLI): validated and
normalised once, the same way everywhere."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email


class InvalidAddress(ValueError):
    """An e-mail address that is not valid syntax; the message says why."""


class UnmailableAddress(InvalidAddress):
    """A valid address we cannot mail: its local part is not ASCII."""


def normalize_email(address: str) -> str:
    """Validated, normalised address: IDNA/lower-cased domain, local part kept as typed.

    A non-ASCII local part (jörg@...) is refused: it needs SMTPUTF8 at every hop, which our
    mails do not use, so the address would be stored and never reached."""
    if not address.strip():
        raise InvalidAddress("The email address is empty.")
    try:
        result = validate_email(address.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidAddress(str(exc)) from None
    local, _, domain = result.normalized.rpartition("@")
    if not local.isascii():
        raise UnmailableAddress("The part before the @-sign has characters other than ASCII "
                                "(accents, other scripts); such addresses cannot be mailed.")
    return f"{local}@{(result.ascii_domain or domain).lower()}"
