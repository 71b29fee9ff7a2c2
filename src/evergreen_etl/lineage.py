"""OpenLineage run events: ``--lineage-url URL``, ``--lineage-file PATH`` or ``$OPENLINEAGE_URL``.

A ``run`` (or ``load``) is a parent run; each stage is a child run with a START and a COMPLETE
or FAIL event naming its input and output datasets: the two sources, the raw copies, the staged
file and the warehouse tables, with schema and row-count facets. The events go through the
official ``openlineage-python`` client (optional extra ``evergreen-etl[lineage]``). A lineage
receiver that is down never fails the run: the first failure is logged and the rest skipped.

Dataset names never carry a URL's query string or credentials (a presigned URL's query is a
credential), and facets carry counts and column names only.
"""

from __future__ import annotations

import logging
import os
import uuid
from datetime import UTC, datetime
from importlib import import_module
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from evergreen_etl.errors import ConfigurationError, EvergreenError
from evergreen_etl.observe import StageEnd, StageStart

if TYPE_CHECKING:
    from pydantic import BaseModel

    from evergreen_etl.run_record import RunRecord
    from evergreen_etl.settings import Settings

log = logging.getLogger("evergreen_etl.lineage")

URL_ENV = "OPENLINEAGE_URL"
NAMESPACE_ENV = "OPENLINEAGE_NAMESPACE"
DEFAULT_NAMESPACE = "evergreen-etl"
PRODUCER = "https://pypi.org/project/evergreen-etl/"
_RUN_NAMESPACE = uuid.UUID("6f1e0a52-6a43-4d0e-9a3b-0e2f5d1c7a11")
# The warehouse tables each stage writes or reads.
LOAD_TABLES = ("dim_postcode", "dim_user", "user_address", "etl_run")
REPORT_TABLES = ("user_address", "dim_user", "dim_local_authority")


def require_openlineage() -> ModuleType:
    """The openlineage client package, or a configuration error saying what to install."""
    try:
        return import_module("openlineage.client")
    except ImportError:
        raise ConfigurationError(
            "lineage needs openlineage-python: pip install 'evergreen-etl[lineage]'"
        ) from None


def lineage_target(url: str | None, file: Path | None) -> tuple[str | None, Path | None]:
    """The receiver URL and/or file in force: the options, else ``$OPENLINEAGE_URL``."""
    if url is None and file is None:
        url = os.environ.get(URL_ENV) or None
    return url, file


def make_transport(url: str | None, file: Path | None) -> Any:
    """An openlineage transport: the file one (JSON lines, appended) or the HTTP one."""
    from openlineage.client.transport.file import FileConfig, FileTransport
    from openlineage.client.transport.http import HttpConfig, HttpTransport

    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        return FileTransport(FileConfig(log_file_path=str(file), append=True))
    params: dict[str, Any] = {
        "url": url,
        "endpoint": os.environ.get("OPENLINEAGE_ENDPOINT", "api/v1/lineage"),
        "timeout": 5.0,
        "retry": {"total": 1, "connect": 1, "read": 1, "backoff_factor": 0.2},
    }
    if os.environ.get("OPENLINEAGE_API_KEY"):
        params["auth"] = {"type": "api_key", "apiKey": os.environ["OPENLINEAGE_API_KEY"]}
    return HttpTransport(HttpConfig.from_dict(params))


def _run_uuid(*parts: str) -> str:
    """A stable UUID for a run id (and stage), so START and its end share it."""
    return str(uuid.uuid5(_RUN_NAMESPACE, ":".join(parts)))


def _now() -> str:
    return datetime.now(UTC).replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def source_dataset(location: str) -> tuple[str, str]:
    """(namespace, name) of a source: ``https://host`` and its path, or ``file`` and a path."""
    parts = urlsplit(location)
    if parts.scheme in ("http", "https"):
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{host}{port}", parts.path or "/"
    if parts.scheme == "file":
        return "file", str(Path(parts.path).resolve())
    return "file", str(Path(location).resolve())


def warehouse_namespace(url: str) -> tuple[str, str]:
    """(namespace, name prefix) of the warehouse's tables, after OpenLineage's naming."""
    parts = urlsplit(url)
    scheme = parts.scheme.split("+")[0]
    if scheme.startswith("postgres"):
        port = parts.port or 5432
        database = parts.path.lstrip("/")
        return f"postgres://{parts.hostname or 'localhost'}:{port}", f"{database}.public."
    path = url.split(":///", 1)[1] if ":///" in url else parts.path
    return f"sqlite://{Path(path).resolve()}", ""


class LineageEmitter:
    """A stage observer that sends OpenLineage events for one ``run`` or ``load``."""

    def __init__(self, command: str, run_id: str, transport: Any) -> None:
        self.ol = require_openlineage()
        from openlineage.client import OpenLineageClient

        self.client = OpenLineageClient(transport=transport)
        self.command = command
        self.run_id = run_id
        self.namespace = os.environ.get(NAMESPACE_ENV) or DEFAULT_NAMESPACE
        self.settings: Settings | None = None
        self._broken = False

    # -- the parent run ------------------------------------------------------------------

    @property
    def parent_job(self) -> str:
        """The parent job's name: ``evergreen_etl.run`` or ``evergreen_etl.load``."""
        return f"evergreen_etl.{self.command}"

    def start(self) -> None:
        """The parent run's START."""
        self._emit(self._event("START", self.parent_job, _run_uuid(self.run_id), parent=False))

    def finish(self, record: RunRecord) -> None:
        """The parent run's COMPLETE or FAIL, from the run record."""
        state = "COMPLETE" if record.status == "succeeded" else "FAIL"
        self._emit(
            self._event(
                state, self.parent_job, _run_uuid(self.run_id), parent=False, error=record.error
            )
        )

    # -- the stages ----------------------------------------------------------------------

    def stage_started(self, event: StageStart) -> None:
        """A stage's START, with the datasets it will read and write."""
        inputs, outputs = self._datasets(event.stage, None)
        self._emit(
            self._event(
                "START", self._job(event.stage), self._stage_run(event.stage), inputs, outputs
            )
        )

    def stage_finished(self, event: StageEnd) -> None:
        """A stage's COMPLETE (with row counts) or FAIL (with the one-line error)."""
        inputs, outputs = self._datasets(event.stage, event.result)
        error = None
        if event.error is not None:
            error = (
                str(event.error)
                if isinstance(event.error, EvergreenError)
                else f"unexpected {type(event.error).__name__}"
            )
        state = "COMPLETE" if event.succeeded else "FAIL"
        self._emit(
            self._event(
                state,
                self._job(event.stage),
                self._stage_run(event.stage),
                inputs,
                outputs,
                error=error,
            )
        )

    def _job(self, stage: str) -> str:
        return f"{self.parent_job}.{stage}"

    def _stage_run(self, stage: str) -> str:
        return _run_uuid(self.run_id, stage)

    # -- building events -----------------------------------------------------------------

    def _event(
        self,
        state: str,
        job_name: str,
        run_uuid: str,
        inputs: list[Any] | None = None,
        outputs: list[Any] | None = None,
        *,
        parent: bool = True,
        error: str | None = None,
    ) -> Any:
        from openlineage.client.event_v2 import Job, Run, RunEvent, RunState
        from openlineage.client.facet_v2 import error_message_run, job_type_job, parent_run

        run_facets: dict[str, Any] = {}
        if parent:
            run_facets["parent"] = parent_run.ParentRunFacet(
                run=parent_run.Run(runId=_run_uuid(self.run_id)),
                job=parent_run.Job(namespace=self.namespace, name=self.parent_job),
            )
        if error is not None:
            run_facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
                message=error, programmingLanguage="python"
            )
        job_facets: dict[str, Any] = {
            "jobType": job_type_job.JobTypeJobFacet(
                processingType="BATCH",
                integration="EVERGREEN_ETL",
                jobType="TASK" if parent else "JOB",
            )
        }
        return RunEvent(
            eventType=getattr(RunState, state),
            eventTime=_now(),
            run=Run(runId=run_uuid, facets=run_facets),
            job=Job(namespace=self.namespace, name=job_name, facets=job_facets),
            producer=PRODUCER,
            inputs=inputs or [],
            outputs=outputs or [],
        )

    def _datasets(self, stage: str, result: BaseModel | None) -> tuple[list[Any], list[Any]]:
        settings = self.settings
        if settings is None:
            return [], []
        raw_users = settings.data.raw_users
        raw_postcodes = settings.data.raw_postcodes
        staged = settings.data.staged_users
        counts = _counts(result)
        if stage == "extract":
            inputs = [
                self._input(*source_dataset(settings.users_url)),
                self._input(*source_dataset(settings.postcodes_url)),
            ]
            outputs = [
                self._output(*source_dataset(str(raw_users)), size=_size(raw_users, result)),
                self._output(
                    *source_dataset(str(raw_postcodes)), size=_size(raw_postcodes, result)
                ),
            ]
            return inputs, outputs
        if stage == "anonymise":
            return [self._input(*source_dataset(str(raw_users)))], [
                self._output(
                    *source_dataset(str(staged)),
                    fields=_staged_fields(),
                    rows=counts.get("users_staged"),
                    size=_size(staged, result),
                )
            ]
        namespace, prefix = warehouse_namespace(settings.effective_database_url)
        if stage == "load":
            inputs = [
                self._input(*source_dataset(str(staged)), fields=_staged_fields()),
                self._input(*source_dataset(str(raw_postcodes))),
            ]
            rows = _load_rows(counts) if result is not None else {}
            outputs = [
                self._output(
                    namespace, prefix + table, fields=_table_fields(table), rows=rows.get(table)
                )
                for table in LOAD_TABLES
            ]
            return inputs, outputs
        if stage == "report":
            return [
                self._input(namespace, prefix + table, fields=_table_fields(table))
                for table in REPORT_TABLES
            ], []
        return [], []

    def _input(
        self, namespace: str, name: str, *, fields: list[tuple[str, str]] | None = None
    ) -> Any:
        from openlineage.client.event_v2 import InputDataset

        return InputDataset(namespace=namespace, name=name, facets=_schema(fields))

    def _output(
        self,
        namespace: str,
        name: str,
        *,
        fields: list[tuple[str, str]] | None = None,
        rows: int | None = None,
        size: int | None = None,
    ) -> Any:
        from openlineage.client.event_v2 import OutputDataset
        from openlineage.client.facet_v2 import output_statistics_output_dataset as stats

        output_facets: dict[str, Any] = {}
        if rows is not None or size is not None:
            output_facets["outputStatistics"] = stats.OutputStatisticsOutputDatasetFacet(
                rowCount=rows, size=size
            )
        return OutputDataset(
            namespace=namespace, name=name, facets=_schema(fields), outputFacets=output_facets
        )

    def _emit(self, event: Any) -> None:
        if self._broken:
            return
        try:
            self.client.emit(event)
        except Exception as exc:  # a receiver that is down must not fail the run
            self._broken = True
            log.warning(
                "lineage events not sent (%s); the run goes on without them", type(exc).__name__
            )


def _schema(fields: list[tuple[str, str]] | None) -> dict[str, Any]:
    if not fields:
        return {}
    from openlineage.client.facet_v2 import schema_dataset

    return {
        "schema": schema_dataset.SchemaDatasetFacet(
            fields=[
                schema_dataset.SchemaDatasetFacetFields(name=name, type=kind)
                for name, kind in fields
            ]
        )
    }


def _staged_fields() -> list[tuple[str, str]]:
    """The staged file's columns and their SQL types (the staged-file contract's)."""
    from evergreen_etl.datadir.staged import StagedUser

    fields = []
    for name, info in StagedUser.model_fields.items():
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        fields.append((name, str(extra.get("sql", "")).split(" ")[0] or "VARCHAR"))
    return fields


def _table_fields(table: str) -> list[tuple[str, str]]:
    from evergreen_etl.warehouse.schema import metadata

    return [(column.name, str(column.type)) for column in metadata.tables[table].columns]


def _counts(result: BaseModel | None) -> dict[str, Any]:
    if result is None:
        return {}
    from evergreen_etl.logs import result_counts

    return result_counts(result)


def _load_rows(counts: dict[str, Any]) -> dict[str, int]:
    """Rows each warehouse table gained in a load (0 everywhere when it was skipped)."""
    if counts.get("skipped"):
        return dict.fromkeys(LOAD_TABLES, 0)
    opened = sum(int(counts.get(k, 0)) for k in ("new", "returned", "moved"))
    return {
        "dim_postcode": int(counts.get("postcodes_loaded") or 0),
        "dim_user": int(counts.get("new", 0)),
        "user_address": opened,
        "etl_run": 1,
    }


def _size(path: Path, result: BaseModel | None) -> int | None:
    if result is None:
        return None
    try:
        return path.stat().st_size
    except OSError:
        return None
