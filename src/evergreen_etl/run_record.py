"""The run record: one JSON document saying what a ``run`` or ``load`` did.

Written with ``--summary-json PATH`` (and printed by ``run --format json``) so that a scheduler
can gate on it: the run id, each stage's start, duration and counts, the sources' checksums,
the snapshot time, whether the warehouse changed, and the exit status. Counts and checksums
only: never a path, a URL (a presigned URL is a credential) or personal data.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from evergreen_etl.logs import result_counts
from evergreen_etl.models import Analysis, ExtractResult, LoadResult, ManifestEntry
from evergreen_etl.observe import StageEnd, StageObserver, StageStart
from evergreen_etl.times import UtcDateTime

if TYPE_CHECKING:
    from evergreen_etl.lineage import LineageEmitter
    from evergreen_etl.settings import Settings

log = logging.getLogger("evergreen_etl.run_record")

RECORD_FORMAT = 1
Outcome = Literal["succeeded", "failed"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class StageRecord(_Frozen):
    """One stage of the run: when it started, how long it took, what it counted."""

    stage: str
    status: Outcome
    started_at: UtcDateTime
    duration_s: float
    counts: dict[str, Any] = Field(default_factory=dict)


class SourceRecord(_Frozen):
    """What a source was when the run read it."""

    sha256: str
    size: int
    last_modified: UtcDateTime | None
    downloaded: bool = Field(description="False when the copy from an earlier run was reused")


class RunRecord(_Frozen):
    """What one invocation did, for schedulers and audit logs."""

    format: int = RECORD_FORMAT
    run_id: str = Field(description="The run id on every log line of the invocation")
    command: str
    package_version: str
    started_at: UtcDateTime
    finished_at: UtcDateTime
    duration_s: float
    status: Outcome
    exit_status: int
    error: str | None = Field(None, description="The one-line error message of a failed run")
    as_of: UtcDateTime | None = Field(None, description="Time of the snapshot loaded")
    changed: bool = Field(
        description="True when the warehouse changed (a new snapshot merged, not a dry run)"
    )
    warehouse_run: int | None = Field(None, description="The load's row in the etl_run table")
    stages: list[StageRecord]
    sources: dict[str, SourceRecord] = Field(default_factory=dict)
    report: list[dict[str, Any]] | None = Field(
        None, description="run: the report's rows, as `report --format json` prints them"
    )


class RunRecorder:
    """A stage observer that gathers a :class:`RunRecord` for one invocation."""

    def __init__(self, command: str, run_id: str, raw_dir: Path | None = None) -> None:
        self.command = command
        self.run_id = run_id
        self.raw_dir = raw_dir
        self.started_at = datetime.now(UTC)
        self.stages: list[StageRecord] = []
        self.results: dict[str, BaseModel] = {}

    def stage_started(self, event: StageStart) -> None:
        """Nothing to note until the stage ends."""

    def stage_finished(self, event: StageEnd) -> None:
        """Note the stage's outcome, timing and counts."""
        counts = result_counts(event.result) if event.result is not None else {}
        self.stages.append(
            StageRecord(
                stage=event.stage,
                status="succeeded" if event.succeeded else "failed",
                started_at=event.started_at,
                duration_s=event.duration_s,
                counts=counts,
            )
        )
        if event.result is not None:
            self.results[event.stage] = event.result

    def record(self, exit_status: int, error: str | None = None) -> RunRecord:
        """The record of the invocation, ending now with ``exit_status``."""
        finished = datetime.now(UTC)
        loaded = self.results.get("load")
        load_result = loaded if isinstance(loaded, LoadResult) else None
        reported = self.results.get("report")
        return RunRecord(
            run_id=self.run_id,
            command=self.command,
            package_version=_package_version(),
            started_at=self.started_at,
            finished_at=finished,
            duration_s=round((finished - self.started_at).total_seconds(), 3),
            status="succeeded" if exit_status == 0 else "failed",
            exit_status=exit_status,
            error=error,
            as_of=load_result.as_of if load_result is not None else None,
            changed=exit_status == 0
            and load_result is not None
            and not (load_result.skipped or load_result.dry_run),
            warehouse_run=load_result.run_id if load_result is not None else None,
            stages=self.stages,
            sources=self._sources(),
            report=report_rows(reported) if isinstance(reported, Analysis) else None,
        )

    def _sources(self) -> dict[str, SourceRecord]:
        extracted = self.results.get("extract")
        entries: dict[str, ManifestEntry] = {}
        if isinstance(extracted, ExtractResult):
            entries = {"users": extracted.users, "postcodes": extracted.postcodes}
        elif self.raw_dir is not None:
            from evergreen_etl.datadir.manifest import manifest_path, read_manifest

            if manifest_path(self.raw_dir).exists():
                try:
                    entries = dict(read_manifest(self.raw_dir))
                except Exception as exc:  # the record is still written without checksums
                    log.warning("run record without source checksums: %s", type(exc).__name__)
        return {
            name: SourceRecord(
                sha256=entry.sha256,
                size=entry.size,
                last_modified=entry.last_modified,
                downloaded=entry.downloaded,
            )
            for name, entry in sorted(entries.items())
        }


def report_rows(report: Analysis[Any]) -> list[dict[str, Any]]:
    """The report's rows as ``report --format json`` prints them."""
    from evergreen_etl.report.metadata import json_rows

    return json_rows(report)


def record_json(record: RunRecord) -> str:
    """The record as indented JSON with a final newline."""
    return record.model_dump_json(indent=2) + "\n"


def write_record(record: RunRecord, path: Path) -> None:
    """Write the record to ``path`` atomically (a reader never sees half a file)."""
    from evergreen_etl.datadir.files import atomic_output

    with atomic_output(path) as handle:
        handle.write(record_json(record).encode("utf-8"))


def _package_version() -> str:
    from evergreen_etl import __version__

    return __version__


class RecordOutput:
    """Where a command's run record goes: a file (``--summary-json``), stdout, metrics."""

    def __init__(
        self,
        recorder: RunRecorder,
        path: Path | None,
        to_stdout: bool,
        metrics_path: Path | None = None,
        lineage_url: str | None = None,
        lineage_file: Path | None = None,
    ) -> None:
        self.recorder = recorder
        self.path = path
        self.to_stdout = to_stdout
        self.metrics_path = metrics_path
        self.lineage_target = (lineage_url, lineage_file)
        self.lineage: LineageEmitter | None = None
        self._metrics_ready = False

    def prepare(self) -> None:
        """Before the run: check the optional extras needed, and start the lineage run."""
        if self.metrics_path is not None:
            from evergreen_etl.metrics import require_prometheus_client

            require_prometheus_client()
            self._metrics_ready = True
        from evergreen_etl.lineage import lineage_target

        url, file = lineage_target(*self.lineage_target)
        if url is not None or file is not None:
            from evergreen_etl.lineage import LineageEmitter, make_transport, require_openlineage

            require_openlineage()
            self.lineage = LineageEmitter(
                self.recorder.command, self.recorder.run_id, make_transport(url, file)
            )
            self.lineage.start()

    def bind(self, settings: Settings) -> None:
        """The run's settings, once known: where the sources and the warehouse are."""
        self.recorder.raw_dir = settings.raw_dir
        if self.lineage is not None:
            self.lineage.settings = settings

    def observers(self) -> tuple[StageObserver, ...]:
        """Who hears the stages: the recorder, and the lineage emitter when there is one."""
        return (self.recorder,) if self.lineage is None else (self.recorder, self.lineage)

    def emit(self, exit_status: int, error: str | None) -> RunRecord:
        """Write the record of a run that ended with ``exit_status``; OSError if unwritable."""
        record = self.recorder.record(exit_status, error)
        if self.path is not None:
            write_record(record, self.path)
        if self.metrics_path is not None and self._metrics_ready:
            from evergreen_etl.metrics import write_metrics

            write_metrics(record, self.metrics_path)
        if self.lineage is not None:
            self.lineage.finish(record)
        if self.to_stdout:
            sys.stdout.write(record_json(record))
        return record
