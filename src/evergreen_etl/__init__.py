"""evergreen-etl: pseudonymise customers, keep their address history, count users by authority.

The stages are plain functions that an Airflow task or a notebook can call::

    from evergreen_etl import load_settings, extract, anonymise, load, report
    settings = load_settings(data_dir="data")
    extract(settings); anonymise(settings); load(settings)
    print(report(settings).rows)
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("evergreen-etl")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

from evergreen_etl.anonymise import anonymise
from evergreen_etl.errors import (
    ConcurrentLoadError,
    ConfigurationError,
    DataQualityError,
    EvergreenError,
    SchemaOutOfDateError,
    SnapshotOrderError,
    SourceError,
    WarehouseError,
)
from evergreen_etl.extract import extract
from evergreen_etl.load import load
from evergreen_etl.models import (
    AnonymiseResult,
    ExtractResult,
    LoadResult,
    LocationCounts,
    ManifestEntry,
    Report,
    ReportRow,
    RunResult,
    StagedUser,
)
from evergreen_etl.pipeline import demo, run
from evergreen_etl.report import report
from evergreen_etl.settings import Settings, get_settings, load_settings

__all__ = [
    "AnonymiseResult",
    "ConcurrentLoadError",
    "ConfigurationError",
    "DataQualityError",
    "EvergreenError",
    "ExtractResult",
    "LoadResult",
    "LocationCounts",
    "ManifestEntry",
    "Report",
    "ReportRow",
    "RunResult",
    "SchemaOutOfDateError",
    "Settings",
    "SnapshotOrderError",
    "SourceError",
    "StagedUser",
    "WarehouseError",
    "__version__",
    "anonymise",
    "demo",
    "extract",
    "get_settings",
    "load",
    "load_settings",
    "report",
    "run",
]
