"""Progress on stderr: a bar with an estimated total for the lookup, a spinner for the merge."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from evergreen_etl.progress import Progress, Spinner
from evergreen_etl.sample.geography import write_postcode_lookup
from evergreen_etl.sources.nspl import PostcodeLookupReader


class _Terminal(io.StringIO):
    """A stderr that says it is a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("postcodes", [300, 20_000], ids=["under-the-sample", "over-the-sample"])
def test_estimated_rows_is_close_to_the_rows_read(tmp_path: Path, postcodes: int) -> None:
    """The lookup's estimated row count is within 5% of the rows it holds (exact when small)."""
    path = tmp_path / "postcodes.zip"
    write_postcode_lookup(path, postcodes=postcodes, seed=7)
    reader = PostcodeLookupReader(path)
    rows = sum(len(batch) for batch in reader.batches(parallel=False))
    estimate = reader.estimated_rows()
    if reader.data_bytes < (1 << 20):
        assert estimate == rows
    else:
        assert abs(estimate - rows) <= 0.05 * rows


def test_spinner_shows_its_description_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a terminal the spinner shows what runs, literally (no markup)."""
    screen = _Terminal()
    monkeypatch.setattr(sys, "stderr", screen)
    with Spinner("merging [bold]1,000[/] users"):
        pass
    assert "merging [bold]1,000[/] users" in screen.getvalue()


def test_spinner_and_bar_are_silent_when_stderr_is_not_a_terminal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Logs redirected to a file get no spinner and no bar."""
    file = io.StringIO()
    monkeypatch.setattr(sys, "stderr", file)
    with Spinner("merging"), Progress("postcodes", unit="rows", total=10) as bar:
        bar.advance(10)
    assert file.getvalue() == ""
    assert bar.done == 10
