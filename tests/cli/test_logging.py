"""Machine-read logs: --log-format json gives one JSON object per stderr line, with timings."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from evergreen_etl.cli import app
from evergreen_etl.sample import SampleResult


def test_json_logs_carry_run_id_stage_counts_and_duration(
    runner: CliRunner, tmp_path: Path, sample: SampleResult, key_env: None
) -> None:
    """Every log line is JSON; each stage logs its duration and counts under one run id."""
    result = runner.invoke(
        app,
        [
            "run",
            "--data-dir",
            str(tmp_path / "d"),
            "--users-url",
            str(sample.users_paths[0]),
            "--postcodes-url",
            str(sample.postcodes_path),
            "--as-of",
            "2024-01-01",
            "--log-format",
            "json",
            "--quiet",
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""  # --quiet: warnings and errors only

    verbose = runner.invoke(
        app,
        [
            "run",
            "--data-dir",
            str(tmp_path / "e"),
            "--users-url",
            str(sample.users_paths[0]),
            "--postcodes-url",
            str(sample.postcodes_path),
            "--as-of",
            "2024-01-01",
            "--log-format",
            "json",
            "--format",
            "json",
        ],
    )
    records = [json.loads(line) for line in verbose.stderr.splitlines()]
    stages = {r["stage"]: r for r in records if "stage" in r}
    assert set(stages) == {"extract", "anonymise", "load", "report"}
    assert len({r["run_id"] for r in stages.values()}) == 1
    assert all(r["duration_s"] >= 0 for r in stages.values())
    assert stages["load"]["counts"]["new"] == stages["load"]["counts"]["users_in_snapshot"]
    assert stages["anonymise"]["counts"]["records_read"] > 0


def test_text_log_lines_hold_no_control_characters() -> None:
    """A logged name with escape codes reaches the terminal without them (text format)."""
    import logging

    from evergreen_etl.logs import TextFormatter

    record = logging.makeLogRecord(
        {"msg": "names: %s skipped", "args": ("\x1b]0;owned\x07x\x1b[2J",), "levelname": "WARNING"}
    )

    assert TextFormatter().format(record).endswith("WARNING names: ]0;ownedx[2J skipped")
