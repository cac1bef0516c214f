"""Who owns a claim, and whether that owner is gone: shared by workers and the scheduler."""

from __future__ import annotations

import os
import socket


def local_owner_id() -> str:
    """host:pid, unique among live processes that claim rows or job runs."""
    return f"{socket.gethostname()}:{os.getpid()}"


def owner_is_dead(owner: str) -> bool:
    """Whether an owner id (host:pid) names a process of this host that no longer runs.

    Owners on other machines are never declared dead here: their lease expiring is the sign.
    """
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # it exists, under another user
    return False
