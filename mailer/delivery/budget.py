"""The error budget: stop burning through the list when the first recipients mostly fail."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ErrorBudget:
    """Allows at most `fraction` failures among the first `window` recipients of a run.

    Decided as soon as the outcome is certain: e.g. 26 failures exceed 5 % of 500 even
    before the 500th recipient is known. Not thread-safe; the caller holds a lock.
    """

    fraction: float = 0.05
    window: int = 500
    seen: int = 0
    failed: int = 0

    def count(self, failed: bool) -> None:
        """Record one recipient's outcome (only the first `window` count)."""
        if self.seen < self.window:
            self.seen += 1
            self.failed += failed

    def count_unordered(self, failed: int, delivered: int) -> None:
        """Record outcomes known only by how many failed and how many were delivered (a
        batch part of which another worker took over): failures first, as far as the
        window goes."""
        counted = min(failed, self.room())
        self.seen += counted
        self.failed += counted
        self.seen += min(delivered, self.room())

    def room(self) -> int:
        """How many more recipients count (the rest of the window)."""
        return max(0, self.window - self.seen)

    def exhausted(self) -> str | None:
        """Why the budget is spent, or None while it holds."""
        allowed = self.fraction * self.window
        if self.failed > allowed:
            return (f"paused: {self.failed} of the first {self.seen} recipients failed "
                    f"(budget {self.fraction:.0%} of {self.window}); check the provider and "
                    "settings, then `mailer issues resume N`")
        return None
