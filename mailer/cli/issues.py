"""`mailer issues ...`: look at and steer stored issues."""

from __future__ import annotations

from mailer.cli import main


@main.group()
def issues() -> None:
    """Stored issues: list, status, resume, hold and release."""
