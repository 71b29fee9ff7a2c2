"""``publish``: the analysts' mart, written in one go under disclosure control.

Every report of the publication at one time (see ``report.publication``) is written as CSV
and, with the ``parquet`` extra (pyarrow), as Parquet; with them the HTML page of the
headline and ``manifest.json``: the as-of time, the rule, the boundary basis, the lookup's
checksum, the loads the figures come from, each table's published totals, and each file's
row count and sha256. The warehouse is row-oriented for the merge; the mart is columnar for
analysis.

The directory is written whole or not at all: everything goes to a temporary directory
beside it, which is renamed onto it at the end; an existing non-empty directory is refused
unless ``force``, and then replaced only once the new one is complete.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Engine

from evergreen_etl.datadir.files import file_sha256, fsync_directory
from evergreen_etl.datadir.layout import MANIFEST_NAME
from evergreen_etl.errors import ConfigurationError
from evergreen_etl.privacy.disclosure import DisclosureRule
from evergreen_etl.report import pictures
from evergreen_etl.report.catalog import HEADLINE, run_sql
from evergreen_etl.report.disclosure import min_count_of
from evergreen_etl.report.html import render_html
from evergreen_etl.report.publication import publish_all
from evergreen_etl.report.render import render_analysis
from evergreen_etl.report.results import Analysis, Boundaries
from evergreen_etl.settings import Settings
from evergreen_etl.times import to_utc_naive, utc_now
from evergreen_etl.warehouse.engine import open_warehouse
from evergreen_etl.warehouse.lookup_versions import LookupVersion, newest_version

log = logging.getLogger("evergreen_etl.publish")

# The publication names its manifest like extract does (one file-name convention).
MANIFEST = MANIFEST_NAME
PAGE = "index.html"
BOUNDARIES: Boundaries = "supplied"


class PublishedFile(BaseModel):
    """One file of the mart."""

    model_config = ConfigDict(frozen=True)

    name: str
    table: str | None
    rows: int | None
    sha256: str
    bytes: int


class PublishResult(BaseModel):
    """What ``publish`` wrote."""

    model_config = ConfigDict(frozen=True)

    out: Path
    as_of: datetime
    disclosure: str
    files: list[PublishedFile]
    parquet: bool


def parquet_available() -> bool:
    """Whether pyarrow (the ``parquet`` extra) is installed."""
    return importlib.util.find_spec("pyarrow") is not None


def publish(
    settings: Settings,
    out: Path,
    *,
    rule: DisclosureRule,
    as_of: datetime | None = None,
    force: bool = False,
    engine: Engine | None = None,
) -> PublishResult:
    """Write every report at ``as_of`` (default now) under ``rule`` into ``out``."""
    out = out.resolve()
    if out.exists() and not out.is_dir():
        raise ConfigurationError(f"{out} is not a directory")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise ConfigurationError(
            f"{out} is not empty; pass --force to replace it", hint="or choose another --out"
        )
    moment = to_utc_naive(as_of) if as_of else utc_now()
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".part"))
    try:
        with open_warehouse(settings, engine) as eng:
            results = publish_all(eng, moment, rule, boundary_sets=(BOUNDARIES,))
            runs = run_sql(eng, "published_runs", {"as_of": moment})
            with eng.connect() as conn:
                version = newest_version(conn)
            headline = next(r for r in results if r.name == HEADLINE)
            bars, users = pictures(settings, headline, disclosure=rule, engine=eng)
        files = _write_tables(staging, results)
        page = staging / PAGE
        page.write_text(render_html(headline, bars, users), encoding="utf-8")
        files.append(_described(page, None, None))
        manifest = _manifest(moment, rule, results, runs, files, version)
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        for path in staging.iterdir():
            _fsync(path)
        _swap(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    log.info("published %d files to %s (%s)", len(files) + 1, out, rule.name)
    return PublishResult(
        out=out, as_of=moment, disclosure=rule.name, files=files, parquet=parquet_available()
    )


def _write_tables(directory: Path, results: list[Analysis[Any]]) -> list[PublishedFile]:
    files = []
    with_parquet = parquet_available()
    if not with_parquet:
        log.warning("pyarrow is not installed: CSV only (pip install 'evergreen-etl[parquet]')")
    for result in results:
        csv_path = directory / f"{result.name}.csv"
        csv_path.write_text(render_analysis(result, "csv"), encoding="utf-8")
        files.append(_described(csv_path, result.name, len(result.rows)))
        if with_parquet:
            parquet_path = directory / f"{result.name}.parquet"
            _write_parquet(parquet_path, result)
            files.append(_described(parquet_path, result.name, len(result.rows)))
    return files


def _write_parquet(path: Path, result: Analysis[Any]) -> None:
    import pyarrow as pa  # type: ignore[import-untyped]
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    columns: dict[str, list[Any]] = {c: [] for c in result.columns}
    for row in result.rows:
        for column in result.columns:
            columns[column].append(getattr(row, column))
    arrays = {
        name: pa.array(values, type=pa.int64()) if name in result.counts else pa.array(values)
        for name, values in columns.items()
    }
    table = pa.table(arrays).replace_schema_metadata(
        {"disclosure": result.disclosure, "title": result.title}
    )
    pq.write_table(table, path)


def _described(path: Path, table: str | None, rows: int | None) -> PublishedFile:
    return PublishedFile(
        name=path.name,
        table=table,
        rows=rows,
        sha256=file_sha256(path),
        bytes=path.stat().st_size,
    )


def _manifest(
    moment: datetime,
    rule: DisclosureRule,
    results: list[Analysis[Any]],
    runs: list[dict[str, Any]],
    files: list[PublishedFile],
    version: LookupVersion | None,
) -> dict[str, Any]:
    from evergreen_etl import __version__

    lookups = [r["postcodes_sha256"] for r in runs if r["postcodes_sha256"]]
    return {
        "as_of": moment.isoformat() + "Z",
        "generated_at": utc_now().isoformat() + "Z",
        "package_version": __version__,
        "disclosure": rule.name,
        "min_count": min_count_of(rule),
        "boundaries": BOUNDARIES,
        "lookup_sha256": lookups[-1] if lookups else None,
        # The lookup version the figures are on ('supplied' is the old name of 'lookup').
        "lookup_version": version.version_id if version is not None else None,
        "lookup_published": version.published if version is not None else None,
        "run_ids": [int(r["run_id"]) for r in runs],
        "tables": {
            r.name: {
                "title": r.title,
                "rows": len(r.rows),
                "counts": list(r.counts),
                "totals": r.totals,
                "disclosure": r.disclosure,
                "note": r.note,
            }
            for r in results
        },
        "files": [f.model_dump() for f in files],
    }


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _swap(staging: Path, out: Path) -> None:
    """Put the complete ``staging`` directory in ``out``'s place (an old ``out`` removed)."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        out.rename(old)
    try:
        staging.rename(out)
    except BaseException:
        if old is not None:
            old.rename(out)
        raise
    fsync_directory(out.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
