"""The library's front door: ``evergreen_etl`` names every stage, imported on first use."""

from __future__ import annotations

import inspect
import subprocess
import sys
from importlib import import_module

import pytest

import evergreen_etl

STAGES = ("extract", "anonymise", "load", "report", "run", "demo")


@pytest.mark.parametrize("name", STAGES)
def test_stage_names_are_the_functions_even_after_their_modules_load(name: str) -> None:
    """`evergreen_etl.load` is the function `load`, though the module of the same name loaded."""
    import_module("evergreen_etl.report.render")  # loads evergreen_etl.report too
    import_module("evergreen_etl.pipeline")  # loads every stage module

    value = getattr(evergreen_etl, name)

    assert inspect.isfunction(value), value
    assert value.__name__ == name


def test_every_exported_name_resolves() -> None:
    """Each name in __all__ is there (and listed by dir())."""
    for name in evergreen_etl.__all__:
        assert getattr(evergreen_etl, name) is not None
    assert set(evergreen_etl.__all__) <= set(dir(evergreen_etl))


def test_an_unknown_name_is_an_attribute_error() -> None:
    """A name the package does not export fails as a missing attribute does."""
    with pytest.raises(AttributeError, match="no_such_stage"):
        evergreen_etl.no_such_stage  # noqa: B018


def test_version_comes_from_the_installed_metadata() -> None:
    """__version__ is the installed distribution's version."""
    from importlib.metadata import version

    assert evergreen_etl.__version__ == version("evergreen-etl")


def test_importing_the_package_or_the_report_command_does_not_import_alembic() -> None:
    """Start-up stays quick: Alembic loads only to migrate, never for `import evergreen_etl`."""
    code = (
        "import sys, evergreen_etl, evergreen_etl.settings, evergreen_etl.report;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('alembic', 'evergreen_etl')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout

    assert "alembic" not in out
    assert "evergreen_etl.anonymise" not in out  # the stage modules load on first use
    assert "evergreen_etl.load" not in out
