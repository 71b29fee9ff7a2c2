"""The console script pauses the garbage collector for start-up only; a library caller's is
left alone."""

from __future__ import annotations

import gc
import subprocess
import sys

from evergreen_etl.entry import work_begins

# Run `evergreen-etl report --list` through the console script's entry point, printing whether
# the collector is on when the CLI starts and when the command's work begins.
_SPY = """
import gc, sys
import evergreen_etl.cli as cli
import evergreen_etl.cli.common as common

def spy(name, real):
    def wrapper(*args, **kwargs):
        print(name, "collector on" if gc.isenabled() else "collector off", file=sys.stderr)
        return real(*args, **kwargs)
    return wrapper

cli.main = spy("start-up:", cli.main)
common.configure_logging = spy("work:", common.configure_logging)
sys.argv = ["evergreen-etl", "report", "--list"]
from evergreen_etl.entry import main
main()
"""


def test_the_collector_is_paused_for_start_up_and_on_for_the_work() -> None:
    """Start-up runs with the collector paused; the command's work with it on again."""
    process = subprocess.run(
        [sys.executable, "-c", _SPY], capture_output=True, text=True, timeout=60, check=False
    )

    assert process.returncode == 0, process.stderr
    assert "local-authority" in process.stdout
    assert process.stderr.splitlines() == ["start-up: collector off", "work: collector on"]


def test_a_library_caller_keeps_its_collector_state() -> None:
    """Outside the console script, the start of a command's work leaves the collector as it was."""
    gc.disable()
    try:
        work_begins()
        assert not gc.isenabled()
    finally:
        gc.enable()
    work_begins()
    assert gc.isenabled()
