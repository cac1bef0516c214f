"""Local emulators of the mail providers' HTTP APIs, for tests and benchmarks.

See README.md in this folder for the API; `python -m tests.emulators NAME` serves one.
"""

from tests.emulators.base import Emulator, Fault
from tests.emulators.brevo import BrevoEmulator
from tests.emulators.mailgun import MailgunEmulator
from tests.emulators.postmark import PostmarkEmulator
from tests.emulators.sendgrid import SendGridEmulator

EMULATORS: dict[str, type[Emulator]] = {
    "postmark": PostmarkEmulator,
    "sendgrid": SendGridEmulator,
    "mailgun": MailgunEmulator,
    "brevo": BrevoEmulator,
}

__all__ = ["EMULATORS", "Emulator", "Fault", "BrevoEmulator", "MailgunEmulator",
           "PostmarkEmulator", "SendGridEmulator"]
