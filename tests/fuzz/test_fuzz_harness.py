"""The fuzz harness catches what it is there to catch: memory, time and unclean errors."""

from __future__ import annotations

import pytest

from evergreen_etl.errors import DataQualityError, SourceError
from fuzz import harness


def test_an_input_needing_more_memory_than_the_limit_fails() -> None:
    """A reader that would need more than MEMORY_LIMIT fails the example (MemoryError)."""
    with pytest.raises(AssertionError, match="MemoryError"):
        harness.exit_status(lambda: bytearray(2 * harness.MEMORY_LIMIT))


def test_an_unexpected_exception_fails() -> None:
    """Any exception but our errors is exit 70: it fails the example."""
    with pytest.raises(AssertionError, match="exit 70"):
        harness.exit_status(lambda: {}["missing"])


def _raise(error: Exception) -> None:
    raise error


def test_clean_errors_pass_with_their_status() -> None:
    """A one-line SourceError is exit 3 and a DataQualityError exit 4: both are clean."""
    assert harness.exit_status(lambda: _raise(SourceError("x: line 1: bad"))) == 3
    assert harness.exit_status(lambda: _raise(DataQualityError("x: empty"))) == 4


def test_slow_inputs_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    """An input that takes longer than EXAMPLE_SECONDS fails the example."""
    import time

    monkeypatch.setattr(harness, "EXAMPLE_SECONDS", 1)
    with pytest.raises(AssertionError, match="ExampleTooSlow"):
        harness.exit_status(lambda: time.sleep(5))
