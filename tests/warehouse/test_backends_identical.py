"""The same snapshots give byte-identical JSON reports on SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from evergreen_etl.anonymise import anonymise
from evergreen_etl.load import load
from evergreen_etl.report import report
from evergreen_etl.report.render import render
from evergreen_etl.sample import SampleResult, generate_sample
from evergreen_etl.settings import Settings
from evergreen_etl.warehouse.engine import make_engine
from evergreen_etl.warehouse.migrate import upgrade
from support.keys import TEST_KEY

SNAPSHOT_TIMES = [datetime(2024, 1, 1), datetime(2024, 4, 1), datetime(2024, 7, 1)]
# Before the first load, on each snapshot time, a second before and after one, between, after.
REPORT_TIMES = [
    datetime(2023, 12, 31),
    *SNAPSHOT_TIMES,
    SNAPSHOT_TIMES[1] - timedelta(seconds=1),
    SNAPSHOT_TIMES[1] + timedelta(seconds=1),
    datetime(2024, 5, 15, 12, 30),
    datetime(2025, 1, 1),
]


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> SampleResult:
    """Generated sources with the real mess: three snapshots of a few hundred people."""
    directory = tmp_path_factory.mktemp("sample")
    return generate_sample(directory, users=400, postcodes=3000, snapshots=3, seed=11)


def _reports(urls: dict[str, str], sample: SampleResult, data_dir: Path) -> dict[str, list[str]]:
    """Load every snapshot into each warehouse; the JSON report at each REPORT_TIMES entry."""
    engines = {}
    for name, url in urls.items():
        upgrade(url)
        engines[name] = make_engine(url)
    try:
        for users, as_of in zip(sample.users_paths, SNAPSHOT_TIMES, strict=True):
            staged = Settings(data_dir=data_dir, pseudonym_key=TEST_KEY, max_reject_rate=1.0)
            anonymise(staged, users_path=users, progress=False)
            for engine in engines.values():
                load(
                    staged,
                    as_of=as_of,
                    postcodes_path=sample.postcodes_path,
                    engine=engine,
                    progress=False,
                )
        return {
            name: [
                render(report(staged, as_of=moment, engine=engine), "json")
                for moment in REPORT_TIMES
            ]
            for name, engine in engines.items()
        }
    finally:
        for engine in engines.values():
            engine.dispose()


def test_json_reports_are_byte_identical_across_backends(
    sample: SampleResult, pg_url: str, tmp_path: Path
) -> None:
    """Three snapshots loaded into SQLite and PostgreSQL report the same bytes at every date."""
    urls = {"sqlite": f"sqlite:///{tmp_path / 'warehouse.db'}", "postgres": pg_url}
    reports = _reports(urls, sample, tmp_path / "data")
    assert reports["sqlite"][0] == "[]\n"  # before the first snapshot
    assert all(text.count("local_authority_code") > 5 for text in reports["sqlite"][1:])
    assert len(set(reports["sqlite"][1:])) > 1  # the history moves, so the dates differ
    for moment, on_sqlite, on_postgres in zip(
        REPORT_TIMES, reports["sqlite"], reports["postgres"], strict=True
    ):
        assert on_sqlite.encode() == on_postgres.encode(), f"reports differ at {moment}"
