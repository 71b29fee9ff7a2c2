"""`publish --out DIR`: every report as CSV and Parquet, the page and a manifest, written
whole or not at all, and nothing in it recoverable by the audit."""

from __future__ import annotations

import csv
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from evergreen_etl.cli import app
from evergreen_etl.datadir.files import file_sha256
from evergreen_etl.errors import ConfigurationError
from evergreen_etl.privacy.disclosure import (
    CellKeyMethod,
    MinCount,
    NhsRule,
    NoDisclosureControl,
)
from evergreen_etl.publish import MANIFEST, publish
from evergreen_etl.report.publication import publish_all
from privacy.audit import Table, audit, hierarchy, narrow, table_of
from report.scenario import Warehouse

AS_OF = datetime(2024, 9, 1)


def write(warehouse: Warehouse, out: Path, rule: Any = None, **options: Any) -> Path:
    """Publish the warehouse at AS_OF into ``out`` (NHS rule unless told)."""
    publish(
        warehouse.settings,
        out,
        rule=rule or NhsRule(),
        as_of=AS_OF,
        engine=warehouse.engine,
        **options,
    )
    return out


def manifest(out: Path) -> dict[str, Any]:
    """The publication's manifest."""
    return json.loads((out / MANIFEST).read_text(encoding="utf-8"))


def csv_rows(path: Path) -> list[dict[str, str]]:
    """A published CSV file's rows."""
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_every_file_is_in_the_manifest_with_its_checksum(
    small_demo: Warehouse, tmp_path: Path
) -> None:
    """The manifest names every other file with its sha256, size and row count, and says
    when, under which rule and from which loads the figures were made."""
    out = write(small_demo, tmp_path / "mart")
    written = manifest(out)
    names = {f["name"] for f in written["files"]}
    assert names == {p.name for p in out.iterdir()} - {MANIFEST}
    assert {"local-authority.csv", "local-authority.parquet", "index.html"} <= names
    for entry in written["files"]:
        path = out / entry["name"]
        assert entry["sha256"] == file_sha256(path)
        assert entry["bytes"] == path.stat().st_size
        if path.suffix == ".csv":
            assert entry["rows"] == len(csv_rows(path))
    assert written["as_of"] == "2024-09-01T00:00:00Z"
    assert written["disclosure"] == "nhs"
    assert written["run_ids"] == [1, 2, 3]
    assert written["boundaries"] == "supplied"
    assert len(written["lookup_sha256"]) == 64
    assert (written["lookup_version"], written["lookup_published"]) == (1, "2023-01")
    assert written["package_version"]


def test_parquet_reads_back_equal_to_the_csv(small_demo: Warehouse, tmp_path: Path) -> None:
    """Each Parquet file holds the CSV's rows: counts as integers, null where suppressed."""
    out = write(small_demo, tmp_path / "mart")
    for parquet in out.glob("*.parquet"):
        table = pq.read_table(parquet).to_pylist()
        rows = csv_rows(parquet.with_suffix(".csv"))
        assert len(table) == len(rows), parquet.name
        for stored, text in zip(table, rows, strict=True):
            for column, value in stored.items():
                shown = text[column]
                if value is None:
                    assert shown in ("suppressed", ""), (parquet.name, column, shown)
                elif isinstance(value, bool):
                    assert shown == str(value)
                elif isinstance(value, datetime):
                    assert shown == value.isoformat()
                else:
                    assert shown == str(value), (parquet.name, column)


def test_a_non_empty_directory_is_refused(small_demo: Warehouse, tmp_path: Path) -> None:
    """An existing non-empty --out is refused, untouched, unless --force replaces it."""
    out = tmp_path / "mart"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    with pytest.raises(ConfigurationError, match="not empty"):
        write(small_demo, out)
    assert [p.name for p in out.iterdir()] == ["mine.txt"]
    write(small_demo, out, force=True)
    assert not (out / "mine.txt").exists()
    assert (out / MANIFEST).exists()


def test_the_cli_refuses_a_non_empty_directory(small_demo: Warehouse, tmp_path: Path) -> None:
    """On the command line the refusal is one line and a non-zero exit."""
    out = tmp_path / "mart"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    result = CliRunner().invoke(
        app,
        [
            "publish",
            "--out",
            str(out),
            "--database-url",
            str(small_demo.engine.url.render_as_string(hide_password=False)),
            "--data-dir",
            str(small_demo.settings.data_dir),
        ],
    )
    assert result.exit_code != 0
    assert "not empty" in result.stderr
    assert "Traceback" not in result.output


def test_a_failure_leaves_no_half_publication(
    small_demo: Warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure while writing leaves the previous publication as it was and nothing beside."""
    out = write(small_demo, tmp_path / "mart")
    before = {p.name: file_sha256(p) for p in out.iterdir()}

    def broken(*args: Any, **kwargs: Any) -> str:
        raise OSError("disk full")

    monkeypatch.setattr("evergreen_etl.publish.render_html", broken)
    with pytest.raises(OSError, match="disk full"):
        write(small_demo, out, rule=MinCount(5), force=True)
    assert {p.name: file_sha256(p) for p in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["mart"]
    with pytest.raises(OSError, match="disk full"):
        write(small_demo, tmp_path / "fresh")
    assert not (tmp_path / "fresh").exists()


def written_tables(out: Path) -> list[Table]:
    """The published tables as an attacker reads them: the CSV files and the manifest."""
    tables = []
    for name, entry in manifest(out)["tables"].items():
        boundaries = (
            "supplied"
            if name
            in {
                "local-authority",
                "region",
                "country",
                "sex-age",
            }
            else None
        )
        tables.append(
            Table(
                name=name,
                boundaries=boundaries,
                rows=csv_rows(out / f"{name}.csv"),
                totals=entry["totals"],
                counts=tuple(entry["counts"]),
            )
        )
    return tables


@pytest.mark.parametrize(
    ("rule", "kind", "width"),
    [(MinCount(5), "min-count", 5), (MinCount(10), "min-count", 10), (NhsRule(), "nhs", 8)],
    ids=["min-count-5", "min-count-10", "nhs"],
)
def test_the_audit_passes_on_what_was_written(
    small_demo: Warehouse, tmp_path: Path, rule: Any, kind: Any, width: int
) -> None:
    """No suppressed cell of the files written can be bounded narrower than K (8 for NHS)."""
    out = write(small_demo, tmp_path / "mart", rule=rule)
    truth = [table_of(r) for r in publish_all(small_demo.engine, AS_OF, NoDisclosureControl())]
    intervals = audit(written_tables(out), truth, hierarchy(small_demo.engine), kind)
    assert intervals
    assert [(i.cell, i.low, i.high) for i in narrow(intervals, width)] == []


def test_a_cell_key_publication_has_no_one_or_two(small_demo: Warehouse, tmp_path: Path) -> None:
    """Under --disclosure ckm no count of the reports at one time is 1 or 2."""
    out = write(small_demo, tmp_path / "mart", rule=CellKeyMethod())
    assert manifest(out)["disclosure"] == "ckm"
    for name in ("local-authority", "region", "country", "sex-age", "postcode-status"):
        counts = {row["users"] for row in csv_rows(out / f"{name}.csv")}
        assert not counts & {"1", "2"}, name
