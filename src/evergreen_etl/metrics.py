"""``--metrics-file PATH``: the run's figures in Prometheus text format, for node_exporter's
textfile collector (or any scraper of ``.prom`` files).

Written atomically at the end of a ``run`` or ``load``, success or failure, from the run
record: rows and duration per stage, users by change type, rejected records, the outcome,
the last success time (kept from the previous file when this run failed) and the lookup
version. Needs the optional extra ``evergreen-etl[metrics]`` (``prometheus-client``).
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from evergreen_etl.errors import ConfigurationError

if TYPE_CHECKING:
    from evergreen_etl.run_record import RunRecord

PREFIX = "evergreen_etl"
CHANGE_TYPES = ("new", "returned", "moved", "left", "unchanged")
# What a stage's "rows" are: the count in its result that measures the work it did.
STAGE_ROWS = {
    "anonymise": "records_read",
    "load": "users_in_snapshot",
}
LAST_SUCCESS = f"{PREFIX}_last_success_timestamp_seconds"


def require_prometheus_client() -> ModuleType:
    """The prometheus_client module, or a configuration error saying what to install."""
    try:
        return import_module("prometheus_client")
    except ImportError:
        raise ConfigurationError(
            "--metrics-file needs prometheus-client: pip install 'evergreen-etl[metrics]'"
        ) from None


def previous_last_success(path: Path) -> float | None:
    """The last success time in an earlier metrics file at ``path``, if there is one."""
    from prometheus_client.parser import text_string_to_metric_families

    try:
        text = path.read_text(encoding="utf-8")
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == LAST_SUCCESS:
                    return float(sample.value)
    except (OSError, ValueError):
        return None
    return None


def write_metrics(record: RunRecord, path: Path, *, lookup_version: str | None = None) -> None:
    """Write the figures of ``record`` to ``path`` in Prometheus text format, atomically."""
    prometheus = require_prometheus_client()
    registry = prometheus.CollectorRegistry()

    def gauge(name: str, documentation: str, labels: tuple[str, ...] = ()) -> Any:
        return prometheus.Gauge(f"{PREFIX}_{name}", documentation, labels, registry=registry)

    rows = gauge(
        "stage_rows", "Rows a stage handled (records read, users merged, report rows)", ("stage",)
    )
    duration = gauge("stage_duration_seconds", "Duration of a stage", ("stage",))
    succeeded = gauge("stage_success", "1 when the stage succeeded, 0 when it failed", ("stage",))
    for stage in record.stages:
        duration.labels(stage.stage).set(stage.duration_s)
        succeeded.labels(stage.stage).set(1 if stage.status == "succeeded" else 0)
        counted = STAGE_ROWS.get(stage.stage)
        if counted is not None and isinstance(stage.counts.get(counted), int):
            rows.labels(stage.stage).set(stage.counts[counted])
    if record.report is not None:
        rows.labels("report").set(len(record.report))

    counts = {stage.stage: stage.counts for stage in record.stages}
    load = counts.get("load", {})
    users = gauge(
        "users", "Users of the snapshot by change type (0 when nothing changed)", ("change",)
    )
    for change in CHANGE_TYPES:
        value = load.get(change)
        users.labels(change).set(value if isinstance(value, int) else 0)
    rejected = counts.get("anonymise", {}).get("rejected", load.get("rejected"))
    gauge("rejected_records", "Source records rejected (no usable email, malformed)").set(
        rejected if isinstance(rejected, int) else 0
    )
    postcodes = load.get("postcodes_loaded")
    if isinstance(postcodes, int):
        rows.labels("postcode_lookup").set(postcodes)

    gauge("run_success", "1 when the last run succeeded").set(
        1 if record.status == "succeeded" else 0
    )
    gauge("run_changed", "1 when the last run changed the warehouse").set(
        1 if record.changed else 0
    )
    gauge("run_exit_status", "Exit status of the last run").set(record.exit_status)
    gauge("run_duration_seconds", "Duration of the last run").set(record.duration_s)
    gauge("run_timestamp_seconds", "When the last run finished").set(record.finished_at.timestamp())
    last_success = (
        record.finished_at.timestamp()
        if record.status == "succeeded"
        else previous_last_success(path)
    )
    if last_success is not None:
        gauge("last_success_timestamp_seconds", "When a run last succeeded").set(last_success)
    if record.as_of is not None:
        gauge("snapshot_as_of_timestamp_seconds", "Time of the snapshot loaded").set(
            _timestamp(record.as_of)
        )
    gauge("lookup_info", "The postcode lookup version in the warehouse", ("version",)).labels(
        lookup_version or "unknown"
    ).set(1)
    path.parent.mkdir(parents=True, exist_ok=True)
    prometheus.write_to_textfile(str(path), registry)


def _timestamp(moment: Any) -> float:
    from datetime import UTC

    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return float(moment.timestamp())
