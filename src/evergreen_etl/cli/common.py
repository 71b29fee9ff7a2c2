"""What the commands share: the root ``app``, the common options, running a command (logging,
run id, errors to a one-line message and an exit status) and the message helpers."""

from __future__ import annotations

import logging
import os
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from pydantic import ValidationError

from evergreen_etl.config import set_config_file
from evergreen_etl.errors import ConfigurationError, EvergreenError
from evergreen_etl.gc_pause import work_begins
from evergreen_etl.logs import LogFormat, bound_run_id, configure_logging
from evergreen_etl.observe import observing
from evergreen_etl.postcodes import LocationPrecision
from evergreen_etl.privacy.disclosure import DisclosureName
from evergreen_etl.redact import redact_text
from evergreen_etl.safe_text import plain
from evergreen_etl.settings import Settings, load_settings
from evergreen_etl.times import parse_as_of

if TYPE_CHECKING:
    from rich.text import Text

    from evergreen_etl.run_record import RecordOutput

app = typer.Typer(
    help="Pseudonymise Evergreen's customers, keep their address history and count users "
    "by local authority.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help texts are plain text: "[default: ...]" is shown as written
)


class _Stderr:
    """Rich's console on stderr, made when something is printed: a command that prints no
    message (a report) starts without importing Rich."""

    def print(self, *objects: Any, **options: Any) -> None:
        from rich.console import Console

        Console(stderr=True).print(*objects, **options)


_err = _Stderr()
_UNEXPECTED_EXIT = 70
# What a shell reports for a process killed by SIGPIPE (128 + 13), as `yes | head -1` gives.
BROKEN_PIPE_EXIT = 141

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", envvar="EVERGREEN_DATA_DIR", help="Root of raw/ and staged/ files."),
]
DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar="EVERGREEN_DATABASE_URL",
        help="SQLAlchemy URL of the warehouse [default: sqlite under the data dir].",
    ),
]
UsersUrl = Annotated[
    str | None,
    typer.Option("--users-url", envvar="EVERGREEN_USERS_URL", help="users.json: URL or path."),
]
PostcodesUrl = Annotated[
    str | None,
    typer.Option(
        "--postcodes-url", envvar="EVERGREEN_POSTCODES_URL", help="postcodes.zip: URL or path."
    ),
]
AsOf = Annotated[
    str | None,
    typer.Option("--as-of", help="Snapshot time, YYYY-MM-DD or ISO 8601 (UTC if no zone)."),
]
Absent = Annotated[
    Literal["close", "keep"],
    typer.Option(help="What to do with users missing from a snapshot: close their row or keep it."),
]
MinCount = Annotated[
    int | None,
    typer.Option("--min-count", min=1, help="Suppress counts below K (disclosure control)."),
]
Disclosure = Annotated[
    DisclosureName | None,
    typer.Option(
        "--disclosure",
        help="Disclosure control for published figures: 'nhs' suppresses 1-7 and rounds "
        "other counts to 5 (NHS England's rule); 'min-count' needs --min-count; 'ckm' "
        "perturbs each count by its users' cell key (same users, same figure).",
    ),
]
# The report formats (report.render.ReportFormat), named here so that `--help` does not import
# the report package and SQLAlchemy with it.
ReportFormat = Literal["table", "csv", "json"]
Format = Annotated[ReportFormat, typer.Option("--format", help="Output format.")]
MaxRejectRate = Annotated[
    float | None,
    typer.Option(
        "--max-reject-rate",
        min=0.0,
        max=1.0,
        help="Fail when a larger share of records is rejected.",
    ),
]
MinK = Annotated[
    int | None,
    typer.Option(
        "--min-k",
        envvar="EVERGREEN_MIN_K",
        min=2,
        help="Check k-anonymity after the merge; below K, warn or fail (--k-policy).",
    ),
]
KPolicy = Annotated[
    str | None,
    typer.Option(
        "--k-policy", envvar="EVERGREEN_K_POLICY", help="warn (default) or fail the load."
    ),
]
Precision = Annotated[
    LocationPrecision | None,
    typer.Option(
        "--location-precision",
        envvar="EVERGREEN_LOCATION_PRECISION",
        help="What the warehouse keeps of a postcode: postcode, sector, district or authority.",
    ),
]
Coarsen = Annotated[
    bool,
    typer.Option(
        "--coarsen",
        help="Allow a coarser --location-precision than the warehouse holds: every stored "
        "postcode is rewritten to it first (in the load's transaction).",
    ),
]
MaxLeftRate = Annotated[
    float | None,
    typer.Option(
        "--max-left-rate",
        envvar="EVERGREEN_MAX_LEFT_RATE",
        min=0.0,
        max=1.0,
        help="Refuse a snapshot that would close the address of a larger share of the current "
        "users [default: 0.2]; 1 allows any.",
        show_default=False,
    ),
]
AllowFuture = Annotated[
    bool,
    typer.Option(
        "--allow-future", help="Accept a snapshot time more than a day ahead of this clock."
    ),
]
DryRun = Annotated[
    bool,
    typer.Option(
        "--dry-run",
        help="Compute the whole merge, print its counts (--format), then roll back: the "
        "warehouse is left unchanged.",
    ),
]
AutoUpgrade = Annotated[
    bool, typer.Option("--auto-upgrade", help="Migrate an out-of-date warehouse schema first.")
]
SummaryJson = Annotated[
    Path | None,
    typer.Option(
        "--summary-json",
        dir_okay=False,
        help="Write the run record (run id, stage timings, counts, checksums, as-of, "
        "changed, exit status) to this JSON file, however the command ends.",
    ),
]
MetricsFile = Annotated[
    Path | None,
    typer.Option(
        "--metrics-file",
        dir_okay=False,
        help="Write the run's metrics in Prometheus text format (node_exporter textfile "
        "collector); needs evergreen-etl[metrics].",
    ),
]
LineageUrl = Annotated[
    str | None,
    typer.Option(
        "--lineage-url",
        help="Send OpenLineage events to this receiver (e.g. Marquez) [default: "
        "$OPENLINEAGE_URL]; needs evergreen-etl[lineage].",
        show_default=False,
    ),
]
LineageFile = Annotated[
    Path | None,
    typer.Option(
        "--lineage-file",
        dir_okay=False,
        help="Append OpenLineage events to this file, one JSON per line; needs "
        "evergreen-etl[lineage].",
    ),
]
Debug = Annotated[bool, typer.Option("--debug", help="Show tracebacks and debug logs.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="Only warnings and errors on stderr.")]
LogFormatOption = Annotated[
    LogFormat, typer.Option("--log-format", help="Logs on stderr as text or JSON lines.")
]


@contextmanager
def _command(
    debug: bool = False,
    quiet: bool = False,
    log_format: LogFormat = "text",
    *,
    record: RecordOutput | None = None,
) -> Iterator[str]:
    """Set up logging and a run id; turn our errors into a one-line message and an exit status.

    With ``record``, the run record is written (and/or printed) however the command ends.
    """
    work_begins()
    level = logging.DEBUG if debug else logging.WARNING if quiet else logging.INFO
    configure_logging(level=level, fmt=log_format)
    code, message = 0, None
    with bound_run_id(record.recorder.run_id if record else None) as run_id:
        try:
            if record is not None:
                record.prepare()
            with observing(*(record.observers() if record else ())):
                yield run_id
            sys.stdout.flush()  # a closed pipe shows here, inside the handlers below
        except EvergreenError as exc:
            if debug:
                traceback.print_exc()
            code, message = exc.exit_code, str(exc)
            _error(message)
            if exc.hint:
                _err.print(_message(f"hint: {exc.hint}"), highlight=False, soft_wrap=True)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()
            )
            code, message = ConfigurationError.exit_code, f"invalid setting: {problems}"
            _error(message)
        except KeyboardInterrupt:
            code, message = 130, "interrupted"
            _err.print("interrupted")
        except BrokenPipeError:
            _stdout_gone()
            code, message = BROKEN_PIPE_EXIT, "stdout was closed"
        except Exception as exc:
            if debug:
                traceback.print_exc()
            # The type only: an unexpected exception's text might quote input data.
            code = _UNEXPECTED_EXIT
            message = f"unexpected {type(exc).__name__}; rerun with --debug for details"
            _error(message)
        if record is not None:
            try:
                record.emit(code, message)
            except OSError as exc:
                _error(
                    f"cannot write the run record to {record.path}: "
                    f"{exc.strerror or type(exc).__name__}"
                )
                code = code or 1
    if code:
        raise typer.Exit(code=code)


def _message(text: str) -> Text:
    """A message for the terminal: printed literally, without control codes or URL secrets."""
    return plain(redact_text(text))


def _error(text: str) -> None:
    _err.print(plain("error:", "bold red") + " " + _message(text), highlight=False, soft_wrap=True)


def _stdout_gone() -> None:
    """The reader of stdout has gone (``| head -1``): send what is left nowhere, quietly."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # pragma: no cover - stdout is not a real file
        pass
    finally:
        os.close(devnull)


def _settings(**overrides: Any) -> Settings:
    return load_settings(**overrides)


def _as_of(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_as_of(value)
    except ValueError as exc:
        raise ConfigurationError(f"--as-of: {exc}") from None


def _version(value: bool) -> None:
    if value:
        from evergreen_etl import __version__

        typer.echo(f"evergreen-etl {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            dir_okay=False,
            help="Settings file (TOML) [default: $EVERGREEN_CONFIG, else ./evergreen.toml].",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Pseudonymise customers, keep their address history, count users by authority."""
    set_config_file(config)
