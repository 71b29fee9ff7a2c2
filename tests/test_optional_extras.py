"""Without an optional extra, the option that needs it says what to install and runs nothing."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from evergreen_etl.sample import SampleResult, generate_sample
from support.runs import invoke_run


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> SampleResult:
    """Small generated sources."""
    return generate_sample(
        tmp_path_factory.mktemp("sample"), users=50, postcodes=500, snapshots=1, seed=9
    )


@pytest.mark.parametrize(
    ("module", "option", "extra"),
    [
        ("prometheus_client", "--metrics-file", "metrics"),
        ("openlineage.client", "--lineage-file", "lineage"),
    ],
)
def test_missing_extra_exits_2_before_running(
    tmp_path: Path,
    sample: SampleResult,
    monkeypatch: pytest.MonkeyPatch,
    module: str,
    option: str,
    extra: str,
) -> None:
    """The module hidden: exit 2, `pip install 'evergreen-etl[EXTRA]'`, no data dir, no file."""
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    result = invoke_run(tmp_path / "d", sample, option, str(tmp_path / "out"))
    assert result.exit_code == 2
    assert f"pip install 'evergreen-etl[{extra}]'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "d").exists()
    assert not (tmp_path / "out").exists()
