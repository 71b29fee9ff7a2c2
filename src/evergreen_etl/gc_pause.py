"""Pause Python's cyclic garbage collector while millions of records stream through.

Streaming a million records allocates tens of millions of short-lived objects (rows, tuples,
strings); each 700 allocations the collector scans the young ones for reference cycles, and
at national scale that scanning is 7-40% of a stage's time. The records hold no cycles, so
reference counting frees every one of them as before: memory does not grow while it is paused.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["collector_paused", "pause_for_startup", "work_begins"]

_starting = False


@contextmanager
def collector_paused() -> Iterator[None]:
    """No cyclic garbage collection inside the block; the collector's state is put back after."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def pause_for_startup() -> None:
    """The console script's start-up (``evergreen_etl.entry``): no collection until
    :func:`work_begins`. Importing the libraries makes tens of thousands of long-lived
    objects, none of them garbage, which the collector would scan again and again."""
    global _starting
    _starting = gc.isenabled()
    gc.disable()


def work_begins() -> None:
    """Start-up is over (a command's work begins): keep what it made out of every later
    collection and turn the collector back on. Nothing unless :func:`pause_for_startup`
    paused it (a library caller's setting is left alone)."""
    global _starting
    if _starting:
        _starting = False
        gc.freeze()
        gc.enable()
