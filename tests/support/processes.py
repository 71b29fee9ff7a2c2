"""Process checks shared by the tests of worker processes."""

from __future__ import annotations

import os


def is_running(pid: int) -> bool:
    """True while a process with ``pid`` exists (a zombie not yet reaped counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
