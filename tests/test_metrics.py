"""`--metrics-file`: Prometheus text format, parsed back with prometheus-client's own parser."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from evergreen_etl.sample import SampleResult, generate_sample
from support.runs import invoke_load, invoke_run


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> SampleResult:
    """Small generated sources."""
    return generate_sample(
        tmp_path_factory.mktemp("sample"), users=200, postcodes=2000, snapshots=1, seed=3
    )


def _samples(path: Path) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample in a metrics file, by name and sorted labels."""
    families = text_string_to_metric_families(path.read_text(encoding="utf-8"))
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families for s in f.samples}


def test_run_writes_parseable_metrics(tmp_path: Path, sample: SampleResult) -> None:
    """Rows and duration per stage, users by change, rejects, success time, lookup version."""
    metrics, record = tmp_path / "metrics" / "evergreen.prom", tmp_path / "run.json"
    result = invoke_run(
        tmp_path / "d", sample, "--metrics-file", str(metrics), "--summary-json", str(record)
    )
    assert result.exit_code == 0, result.stderr
    got = _samples(metrics)
    stages = json.loads(record.read_text())["stages"]
    counts = {s["stage"]: s["counts"] for s in stages}
    for stage in ("extract", "anonymise", "load", "report"):
        assert got[("evergreen_etl_stage_duration_seconds", (("stage", stage),))] >= 0
        assert got[("evergreen_etl_stage_success", (("stage", stage),))] == 1
    assert (
        got[("evergreen_etl_stage_rows", (("stage", "load"),))]
        == counts["load"]["users_in_snapshot"]
    )
    assert (
        got[("evergreen_etl_stage_rows", (("stage", "anonymise"),))]
        == counts["anonymise"]["records_read"]
    )
    assert got[("evergreen_etl_users", (("change", "new"),))] == counts["load"]["new"] > 0
    assert got[("evergreen_etl_users", (("change", "moved"),))] == 0
    assert got[("evergreen_etl_rejected_records", ())] == counts["anonymise"]["rejected"]
    assert got[("evergreen_etl_run_success", ())] == 1
    assert got[("evergreen_etl_run_changed", ())] == 1
    assert abs(got[("evergreen_etl_last_success_timestamp_seconds", ())] - time.time()) < 120
    assert got[("evergreen_etl_lookup_info", (("version", "unknown"),))] == 1
    assert sorted(p.name for p in metrics.parent.iterdir()) == ["evergreen.prom"]


def test_failed_run_keeps_the_last_success_time(tmp_path: Path, sample: SampleResult) -> None:
    """A failed run says so and carries the previous success time forward for staleness alerts."""
    metrics = tmp_path / "evergreen.prom"
    assert invoke_run(tmp_path / "d", sample, "--metrics-file", str(metrics)).exit_code == 0
    succeeded_at = _samples(metrics)[("evergreen_etl_last_success_timestamp_seconds", ())]
    failed = invoke_run(
        tmp_path / "d", sample, "--metrics-file", str(metrics), users=tmp_path / "missing.json"
    )
    assert failed.exit_code == 3
    got = _samples(metrics)
    assert got[("evergreen_etl_run_success", ())] == 0
    assert got[("evergreen_etl_run_exit_status", ())] == 3
    assert got[("evergreen_etl_stage_success", (("stage", "extract"),))] == 0
    assert got[("evergreen_etl_last_success_timestamp_seconds", ())] == succeeded_at


def test_load_writes_metrics_too(tmp_path: Path, sample: SampleResult) -> None:
    """`load --metrics-file` writes the load stage's figures (nothing changed on a rerun)."""
    assert invoke_run(tmp_path / "d", sample).exit_code == 0
    metrics = tmp_path / "load.prom"
    result = invoke_load(tmp_path / "d", "--metrics-file", str(metrics))
    assert result.exit_code == 0, result.stderr
    got = _samples(metrics)
    assert got[("evergreen_etl_stage_success", (("stage", "load"),))] == 1
    assert got[("evergreen_etl_run_changed", ())] == 0
