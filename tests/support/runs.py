"""`evergreen-etl run` on local sample sources, for the run-record, metrics and lineage tests."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner, Result

from evergreen_etl.cli import app
from evergreen_etl.sample import SampleResult
from support.keys import TEST_KEY


def invoke_run(
    data: Path,
    sample: SampleResult,
    *extra: str,
    users: Path | None = None,
    env: dict[str, str] | None = None,
    quiet: bool = True,
) -> Result:
    """`run` on the sample's first snapshot (or ``users``) as of 2024-01-01, with the test key."""
    return CliRunner().invoke(
        app,
        [
            "run",
            "--data-dir",
            str(data),
            "--users-url",
            str(users or sample.users_paths[0]),
            "--postcodes-url",
            str(sample.postcodes_path),
            "--as-of",
            "2024-01-01",
            *(["-q"] if quiet else []),
            *extra,
        ],
        env={"EVERGREEN_PSEUDONYM_KEY": TEST_KEY, **(env or {})},
    )


def invoke_load(data: Path, *extra: str) -> Result:
    """`load -q` of the staged snapshot in ``data`` as of 2024-01-01, with the test key."""
    return CliRunner().invoke(
        app,
        ["load", "--data-dir", str(data), "--as-of", "2024-01-01", "-q", *extra],
        env={"EVERGREEN_PSEUDONYM_KEY": TEST_KEY},
    )
