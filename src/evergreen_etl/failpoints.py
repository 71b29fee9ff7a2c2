"""Named points where a test can hold a running process, to kill it or observe it there.

``failpoint("load.merged")`` does nothing unless the environment variable
``EVERGREEN_FAILPOINT`` names that point. Then it writes the file named by
``EVERGREEN_FAILPOINT_READY`` (when set), so the test knows the process has arrived, and
holds for up to ``HOLD_SECONDS`` while the test kills it (SIGKILL) or reads the database
from another connection. Deleting the ready file releases the process early: it carries on
as if nothing had happened. When the point is not named, the cost is one environment lookup.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

FAILPOINT_ENV = "EVERGREEN_FAILPOINT"
READY_ENV = "EVERGREEN_FAILPOINT_READY"
HOLD_SECONDS = 60.0
_POLL_SECONDS = 0.02

__all__ = ["FAILPOINT_ENV", "HOLD_SECONDS", "READY_ENV", "failpoint"]


def failpoint(name: str) -> None:
    """Hold the process at ``name`` when ``EVERGREEN_FAILPOINT`` names it; else do nothing."""
    if os.environ.get(FAILPOINT_ENV) != name:
        return
    deadline = time.monotonic() + HOLD_SECONDS
    ready = os.environ.get(READY_ENV)
    if not ready:
        time.sleep(HOLD_SECONDS)
        return
    # Written whole and then renamed, so a watcher never sees a half-written file.
    signal_file = Path(ready)
    partial = signal_file.with_name(f"{signal_file.name}.partial")
    partial.write_text(f"{name} {os.getpid()}\n", encoding="utf-8")
    partial.replace(signal_file)
    while signal_file.exists() and time.monotonic() < deadline:
        time.sleep(_POLL_SECONDS)
