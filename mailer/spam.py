"""Spam score of a complete message, from SpamAssassin when it is installed.

`spamassassin -L -t` runs the local rules only (no DNS blocklists, no network), so the
score is repeatable and a preview never leaks to a third party.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass

from mailer.render.lint import ERROR, WARNING, Finding

STATUS = re.compile(r"^X-Spam-Status: (Yes|No), score=(-?[\d.]+) required=(-?[\d.]+)"
                    r"\s+tests=(.*?)\s+autolearn", re.M | re.S)
RULE_LINE = re.compile(r"^\s*(-?\d+\.\d+)\s+([A-Z0-9_]+)\s+(.*)$", re.M)
TIMEOUT = 120


@dataclass(frozen=True)
class SpamReport:
    """SpamAssassin's verdict: score, threshold and the rules that added points."""

    score: float
    required: float
    rules: tuple[tuple[float, str, str], ...]  # (points, name, description)


def spam_score(message: bytes, command: str = "spamassassin") -> SpamReport | None:
    """Score a message with SpamAssassin; None when it is not installed."""
    program = shutil.which(command)
    if program is None:
        return None
    run = subprocess.run([program, "-L", "-t"], input=message, capture_output=True,
                         timeout=TIMEOUT, check=False)
    output = run.stdout.decode("utf-8", "replace")
    match = STATUS.search(output)
    if match is None:
        raise RuntimeError(f"could not read SpamAssassin's verdict (exit {run.returncode}): "
                           f"{run.stderr.decode('utf-8', 'replace')[-300:]}")
    report = output.rpartition("Content analysis details:")[2]
    rules = tuple((float(p), name, " ".join(desc.split()))
                  for p, name, desc in RULE_LINE.findall(report))
    return SpamReport(float(match[2]), float(match[3]), rules)


def check_spam(message: bytes, command: str = "spamassassin") -> list[Finding]:
    """An error at or above SpamAssassin's threshold, a warning above half of it."""
    report = spam_score(message, command)
    if report is None:
        return [Finding(WARNING, "spam-score", f"SpamAssassin ({command}) is not installed; "
                        "spam score not checked (apt-get install spamassassin)")]
    scoring = ", ".join(f"{name} {points:+.1f}" for points, name, _ in report.rules if points > 0)
    verdict = f"spam score {report.score:.1f} (threshold {report.required:.1f})" + (
        f": {scoring}" if scoring else "")
    if report.score >= report.required:
        return [Finding(ERROR, "spam-score", verdict)]
    if report.score >= report.required / 2:
        return [Finding(WARNING, "spam-score", verdict)]
    return []
