"""evergreen-etl: pseudonymise customers, keep their address history, count users by authority.

The stages are plain functions that an Airflow task or a notebook can call::

    from evergreen_etl import load_settings, extract, anonymise, load, report
    settings = load_settings(data_dir="data")
    extract(settings); anonymise(settings); load(settings)
    print(report(settings).rows)
"""

from __future__ import annotations

import sys
from importlib import import_module
from types import ModuleType
from typing import TYPE_CHECKING, Any

# The names below are imported on first use (PEP 562), so that ``evergreen-etl report`` or
# ``import evergreen_etl.settings`` does not pay for importing every stage (and Alembic).
_EXPORTS = {
    "anonymise": "evergreen_etl.anonymise",
    "ConcurrentLoadError": "evergreen_etl.errors",
    "ConfigurationError": "evergreen_etl.errors",
    "DataQualityError": "evergreen_etl.errors",
    "EvergreenError": "evergreen_etl.errors",
    "SchemaOutOfDateError": "evergreen_etl.errors",
    "SnapshotOrderError": "evergreen_etl.errors",
    "SourceError": "evergreen_etl.errors",
    "WarehouseError": "evergreen_etl.errors",
    "extract": "evergreen_etl.extract",
    "load": "evergreen_etl.load",
    "AnonymiseResult": "evergreen_etl.models",
    "ExtractResult": "evergreen_etl.models",
    "LoadResult": "evergreen_etl.models",
    "LocationCounts": "evergreen_etl.models",
    "ManifestEntry": "evergreen_etl.models",
    "Report": "evergreen_etl.models",
    "ReportRow": "evergreen_etl.models",
    "RunResult": "evergreen_etl.models",
    "StagedUser": "evergreen_etl.datadir.staged",
    "demo": "evergreen_etl.pipeline",
    "run": "evergreen_etl.pipeline",
    "report": "evergreen_etl.report",
    "Settings": "evergreen_etl.settings",
    "get_settings": "evergreen_etl.settings",
    "load_settings": "evergreen_etl.settings",
}

if TYPE_CHECKING:
    __version__: str
    from evergreen_etl.anonymise import anonymise
    from evergreen_etl.datadir.staged import StagedUser
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
    )
    from evergreen_etl.pipeline import demo, run
    from evergreen_etl.report import report
    from evergreen_etl.settings import Settings, get_settings, load_settings


class _Package(ModuleType):
    """The package module: its stage functions keep their names when their modules load.

    Importing a submodule binds it on its package: ``evergreen_etl.report`` would become the
    module ``evergreen_etl/report/`` instead of the function ``report`` once anything
    imported the module. The stage functions share their modules' names, so those bindings
    are skipped; the modules stay reachable through ``import`` and ``sys.modules``.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, ModuleType) and _EXPORTS.get(name) == value.__name__:
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("evergreen-etl")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0.0.0"


def __getattr__(name: str) -> Any:
    if name == "__version__":  # read from the installed metadata on first use (25 ms)
        globals()[name] = _version()
        return globals()[name]
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'evergreen_etl' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


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
