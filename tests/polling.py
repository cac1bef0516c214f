"""Waiting in tests for something another thread or process does."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    """Poll a real condition until it holds; fail naming `what` after `timeout` seconds.

    The condition decides, not the clock: the interval only spaces the looks, and the
    deadline is generous, there so that a broken build fails instead of hanging."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
