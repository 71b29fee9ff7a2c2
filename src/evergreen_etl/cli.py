"""The ``evergreen-etl`` command: a thin Typer layer over the library API."""

from __future__ import annotations

import logging
import os
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table
from rich.text import Text

from evergreen_etl.cli_history import (
    REVISIONS,
    AsKnownAt,
    Replace,
    Since,
    add_history_commands,
    known_at_option,
    revisions_command,
)
from evergreen_etl.config import set_config_file
from evergreen_etl.errors import ConfigurationError, EvergreenError
from evergreen_etl.logs import LogFormat, bound_run_id, configure_logging, new_run_id
from evergreen_etl.models import RunResult
from evergreen_etl.observe import observing
from evergreen_etl.postcodes import LocationPrecision
from evergreen_etl.privacy.disclosure import DisclosureName, disclosure_rule
from evergreen_etl.redact import redact_text
from evergreen_etl.run_record import RecordOutput, RunRecorder
from evergreen_etl.safe_text import plain
from evergreen_etl.settings import Settings, load_settings
from evergreen_etl.times import parse_as_of

app = typer.Typer(
    help="Pseudonymise Evergreen's customers, keep their address history and count users "
    "by local authority.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help texts are plain text: "[default: ...]" is shown as written
)
db_app = typer.Typer(
    help="Create or migrate the warehouse schema (Alembic).",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(db_app, name="db")

_err = Console(stderr=True)
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


def _print_summary(result: RunResult) -> None:
    """An end-of-run summary on stderr: counts only, never personal data."""
    loaded, anonymised = result.load, result.anonymise
    title = "Run summary (dry run: nothing was changed)" if loaded.dry_run else "Run summary"
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("what")
    table.add_column("count", justify="right")
    rows: list[tuple[str, object]] = [
        ("records read", anonymised.records_read),
        ("rejected (no usable email)", anonymised.rejected),
        ("as of", f"{loaded.as_of:%Y-%m-%d %H:%M:%S} UTC"),
    ]
    if loaded.skipped and loaded.postcodes_loaded is not None:
        rows.append(("load", "snapshot already loaded; the changed lookup was loaded"))
        rows.append(("postcodes loaded", loaded.postcodes_loaded))
    elif loaded.skipped:
        rows.append(("load", "snapshot already loaded: nothing changed"))
    else:
        rows += [
            ("users in snapshot", loaded.users_in_snapshot),
            ("duplicates resolved", loaded.duplicates),
            ("new / returned", f"{loaded.new} / {loaded.returned}"),
            ("moved / left / unchanged", f"{loaded.moved} / {loaded.left} / {loaded.unchanged}"),
            (
                "postcodes loaded",
                loaded.postcodes_loaded if loaded.postcodes_loaded is not None else "unchanged",
            ),
        ]
        if loaded.lookup_version is not None:
            rows.append(("lookup version", loaded.lookup_version))
            rows.append(("users re-located by it", loaded.relocated))
        rows += [
            (f"located: {k.replace('_', ' ')}", v) for k, v in loaded.location.model_dump().items()
        ]
    for label, value in rows:
        table.add_row(label, str(value))
    _err.print(table)


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


@app.command()
def extract(
    data_dir: DataDir = None,
    users_url: UsersUrl = None,
    postcodes_url: PostcodesUrl = None,
    debug: Debug = False,
    quiet: Quiet = False,
    log_format: LogFormatOption = "text",
) -> None:
    """Fetch users.json and postcodes.zip into DATA_DIR/raw with a manifest."""
    from evergreen_etl.extract import extract as extract_sources

    with _command(debug, quiet, log_format):
        settings = _settings(data_dir=data_dir, users_url=users_url, postcodes_url=postcodes_url)
        result = extract_sources(settings, progress=not quiet)
        typer.echo(result.model_dump_json(indent=2))


@app.command()
def anonymise(
    data_dir: DataDir = None,
    max_reject_rate: MaxRejectRate = None,
    debug: Debug = False,
    quiet: Quiet = False,
    log_format: LogFormatOption = "text",
) -> None:
    """Pseudonymise raw users into DATA_DIR/staged (records, rejects, quality summary)."""
    from evergreen_etl.anonymise import anonymise as anonymise_users

    with _command(debug, quiet, log_format):
        settings = _settings(data_dir=data_dir)
        result = anonymise_users(settings, max_reject_rate=max_reject_rate, progress=not quiet)
        typer.echo(result.model_dump_json(indent=2))


@app.command()
def load(
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    as_of: AsOf = None,
    absent: Absent = "close",
    replace: Replace = False,
    min_k: MinK = None,
    k_policy: KPolicy = None,
    location_precision: Precision = None,
    coarsen: Coarsen = False,
    max_left_rate: MaxLeftRate = None,
    allow_future: AllowFuture = False,
    auto_upgrade: AutoUpgrade = False,
    dry_run: DryRun = False,
    fmt: Annotated[
        ReportFormat, typer.Option("--format", help="Output format of --dry-run's counts.")
    ] = "table",
    summary_json: SummaryJson = None,
    metrics_file: MetricsFile = None,
    lineage_url: LineageUrl = None,
    lineage_file: LineageFile = None,
    debug: Debug = False,
    quiet: Quiet = False,
    log_format: LogFormatOption = "text",
) -> None:
    """Merge the staged snapshot and the postcode lookup into the warehouse (SCD type 2); an
    older snapshot goes in its place in time. Prints the result as JSON; with --dry-run, the
    counts of the merge it would do."""
    from evergreen_etl.load import load as load_snapshot
    from evergreen_etl.logs import timed_stage

    recorder = RunRecorder("load", new_run_id())
    output = RecordOutput(recorder, summary_json, False, metrics_file, lineage_url, lineage_file)
    with _command(debug, quiet, log_format, record=output) as run_id:
        settings = _settings(
            data_dir=data_dir,
            database_url=database_url,
            min_k=min_k,
            k_policy=k_policy,
            location_precision=location_precision,
            max_left_rate=max_left_rate,
        )
        output.bind(settings)
        with timed_stage("load", run_id) as out:
            result = load_snapshot(
                settings,
                as_of=_as_of(as_of),
                absent=absent,
                auto_upgrade=auto_upgrade,
                coarsen=coarsen,
                progress=not quiet,
                dry_run=dry_run,
                replace=replace,
                allow_future=allow_future,
            )
            out.append(result)
        if dry_run:
            from evergreen_etl.report.load_counts import load_counts
            from evergreen_etl.report.render import render

            sys.stdout.write(render(load_counts(result), fmt))
        else:
            typer.echo(result.model_dump_json(indent=2))


ReportName = Annotated[
    str | None,
    typer.Argument(
        help="The report to run (default: local-authority, distinct users by authority); "
        "see --list.",
        show_default=False,
    ),
]
ListReports = Annotated[
    bool, typer.Option("--list", help="Name every report with one line each, and exit.")
]
FromTime = Annotated[
    str | None,
    typer.Option("--from", help="movers: start of the period, YYYY-MM-DD or ISO 8601."),
]
ToTime = Annotated[
    str | None,
    typer.Option("--to", help="movers: end of the period (default: --as-of, else now)."),
]
BoundariesOption = Annotated[
    Literal["lookup", "recorded", "current", "supplied"] | None,
    typer.Option(
        "--boundaries",
        help="lookup (the default): every period located with the newest postcode lookup; "
        "recorded: as located when loaded; current: the newest lookup, then today's "
        "authority codes. 'supplied' is the old name of 'lookup'. Reports by place only.",
        show_default=False,
    ),
]
HtmlOut = Annotated[
    Path | None,
    typer.Option(
        "--html", dir_okay=False, help="Also write one self-contained page: table, chart, map."
    ),
]
WithMetadata = Annotated[
    bool,
    typer.Option(
        "--with-metadata",
        help="With --format json: an object with as-of, rule, boundary basis, lookup version, "
        "generated-at and package version around the rows (plain JSON is the list of rows); "
        "with --format csv: the boundary basis and lookup version as extra columns.",
    ),
]
PngOut = Annotated[
    Path | None,
    typer.Option(
        "--png",
        dir_okay=False,
        help="Also write the bar chart as PNG (matplotlib: needs evergreen-etl[charts]).",
    ),
]
SvgOut = Annotated[
    Path | None,
    typer.Option("--svg", dir_okay=False, help="Also write the bar chart as a standalone SVG."),
]


@app.command()
def report(
    name: ReportName = None,
    list_reports: ListReports = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    as_of: AsOf = None,
    from_time: FromTime = None,
    to_time: ToTime = None,
    boundaries: BoundariesOption = None,
    fmt: Format = "table",
    min_count: MinCount = None,
    disclosure: Disclosure = None,
    html: HtmlOut = None,
    png: PngOut = None,
    as_known_at: AsKnownAt = None,
    since: Since = None,
    svg: SvgOut = None,
    with_metadata: WithMetadata = False,
    debug: Debug = False,
    log_format: LogFormatOption = "text",
) -> None:
    """Distinct users by local authority, now or --as-of a past time; other analyses by NAME.

    `report revisions --as-of T --since RUN_ID`: counts at T as known after RUN_ID, and now.
    """
    from evergreen_etl.report import HEADLINE, analysis, write_pictures
    from evergreen_etl.report import list_reports as catalogue
    from evergreen_etl.report.render import render, render_list

    def moment(option: str, value: str | None) -> datetime | None:
        try:
            return parse_as_of(value) if value else None
        except ValueError as exc:
            raise ConfigurationError(f"{option}: {exc}") from None

    with _command(debug, True, log_format):
        if list_reports:
            sys.stdout.write(render_list(catalogue()))
            return
        if with_metadata and fmt == "table":
            raise ConfigurationError("--with-metadata needs --format json or csv")
        if png is not None:
            from evergreen_etl.report.chart_png import require_matplotlib

            require_matplotlib()
        settings = _settings(data_dir=data_dir, database_url=database_url)
        if name == REVISIONS:
            revisions_command(settings, moment("--as-of", as_of), since, fmt)
            return
        if since is not None:
            raise ConfigurationError(f"--since applies to '{REVISIONS}' only")
        rule = disclosure_rule(disclosure, min_count)
        result = analysis(
            settings,
            name or HEADLINE,
            as_of=moment("--as-of", as_of),
            from_time=moment("--from", from_time),
            to_time=moment("--to", to_time),
            boundaries=boundaries,
            disclosure=rule,
            as_known_at=known_at_option("--as-known-at", as_known_at),
        )
        if with_metadata:
            from evergreen_etl.report.metadata import (
                render_csv_with_metadata,
                render_with_metadata,
            )

            metadata = render_with_metadata if fmt == "json" else render_csv_with_metadata
            sys.stdout.write(metadata(result))
        else:
            sys.stdout.write(render(result, fmt))
        pictures = write_pictures(settings, result, html=html, png=png, svg=svg, disclosure=rule)
        for path in pictures:
            _err.print(_message(f"wrote {path}"), highlight=False)


@app.command()
def run(
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    users_url: UsersUrl = None,
    postcodes_url: PostcodesUrl = None,
    as_of: AsOf = None,
    absent: Absent = "close",
    replace: Replace = False,
    min_k: MinK = None,
    k_policy: KPolicy = None,
    location_precision: Precision = None,
    coarsen: Coarsen = False,
    fmt: Format = "table",
    min_count: MinCount = None,
    disclosure: Disclosure = None,
    max_reject_rate: MaxRejectRate = None,
    max_left_rate: MaxLeftRate = None,
    allow_future: AllowFuture = False,
    dry_run: DryRun = False,
    summary_json: SummaryJson = None,
    metrics_file: MetricsFile = None,
    lineage_url: LineageUrl = None,
    lineage_file: LineageFile = None,
    debug: Debug = False,
    quiet: Quiet = False,
    log_format: LogFormatOption = "text",
) -> None:
    """Extract, anonymise, load and report, in order; the report goes to stdout.

    With --dry-run the load is rolled back and its counts go to stdout instead.

    With --format json, stdout is the run record (as --summary-json writes it), the report's
    rows under "report".
    """
    from evergreen_etl.pipeline import run as run_pipeline
    from evergreen_etl.report.render import render

    recorder = RunRecorder("run", new_run_id())
    output = RecordOutput(
        recorder, summary_json, fmt == "json", metrics_file, lineage_url, lineage_file
    )
    with _command(debug, quiet, log_format, record=output):
        settings = _settings(
            data_dir=data_dir,
            database_url=database_url,
            users_url=users_url,
            postcodes_url=postcodes_url,
            min_k=min_k,
            k_policy=k_policy,
            location_precision=location_precision,
            max_left_rate=max_left_rate,
        )
        output.bind(settings)
        result = run_pipeline(
            settings,
            as_of=_as_of(as_of),
            absent=absent,
            disclosure=disclosure_rule(disclosure, min_count),
            max_reject_rate=max_reject_rate,
            coarsen=coarsen,
            progress=not quiet,
            replace=replace,
            dry_run=dry_run,
            allow_future=allow_future,
        )
        if not quiet and log_format == "text":  # JSON logs carry the same counts per stage
            _print_summary(result)
        if fmt == "json":
            return  # the JSON is the run record, written when the command ends
        if result.report is None:
            from evergreen_etl.report.load_counts import load_counts

            sys.stdout.write(render(load_counts(result.load), fmt))
        else:
            sys.stdout.write(render(result.report, fmt))


@app.command()
def demo(
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    users: Annotated[int, typer.Option(min=1, help="People in the first snapshot.")] = 2000,
    postcodes: Annotated[int, typer.Option(min=100, help="Rows in the postcode lookup.")] = 20000,
    snapshots: Annotated[int, typer.Option(min=1, help="Successive snapshots to load.")] = 3,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same data.")] = 42,
    fmt: Format = "table",
    min_count: MinCount = None,
    disclosure: Disclosure = None,
    debug: Debug = False,
    quiet: Quiet = False,
    log_format: LogFormatOption = "text",
) -> None:
    """Generate realistic sample sources (no network) and run the job on each snapshot."""
    from evergreen_etl.pipeline import demo as run_demo
    from evergreen_etl.report.render import render

    with _command(debug, quiet, log_format):
        settings = _settings(data_dir=data_dir, database_url=database_url)
        results = run_demo(
            settings,
            users=users,
            postcodes=postcodes,
            snapshots=snapshots,
            seed=seed,
            disclosure=disclosure_rule(disclosure, min_count),
            progress=not quiet,
        )
        if not quiet and log_format == "text":
            _print_summary(results[-1])
        last = results[-1].report
        if last is not None:  # demo runs are never dry runs
            sys.stdout.write(render(last, fmt))


def _db_command(action: Callable[[Settings], str | None]) -> Callable[..., None]:
    def command(
        data_dir: DataDir = None, database_url: DatabaseUrl = None, debug: Debug = False
    ) -> None:
        with _command(debug):
            message = action(_settings(data_dir=data_dir, database_url=database_url))
            if message:
                typer.echo(message)

    command.__doc__ = action.__doc__
    return command


def _db_upgrade(settings: Settings) -> str:
    """Migrate the warehouse to the newest schema (creating it if empty)."""
    from evergreen_etl.warehouse.migrate import head_revision, upgrade

    upgrade(settings.effective_database_url)
    return f"warehouse at {head_revision()}"


def _db_current(settings: Settings) -> str:
    """Print the warehouse's migration and the newest one this version knows."""
    from evergreen_etl.warehouse.engine import open_warehouse
    from evergreen_etl.warehouse.migrate import current_revision, head_revision

    with open_warehouse(settings, schema="any") as engine:
        current = current_revision(engine)
    return f"current: {current or 'empty'}\nhead: {head_revision()}"


db_app.command("upgrade")(_db_command(_db_upgrade))
db_app.command("current")(_db_command(_db_current))


def _role_command(action: Callable[[Any, str], str]) -> Callable[..., None]:
    def command(
        role: Annotated[str, typer.Argument(help="An existing PostgreSQL role.")],
        data_dir: DataDir = None,
        database_url: DatabaseUrl = None,
        debug: Debug = False,
    ) -> None:
        from evergreen_etl.warehouse.engine import open_warehouse

        with _command(debug):
            settings = _settings(data_dir=data_dir, database_url=database_url)
            with open_warehouse(settings) as engine:
                typer.echo(action(engine, role))

    return command


def _roles() -> Any:
    from evergreen_etl.privacy import roles

    return roles


db_app.command(
    "grant-reader", help="Let ROLE read the published pub_* views and nothing else (PostgreSQL)."
)(_role_command(lambda engine, role: _roles().grant_reader(engine, role)))
db_app.command(
    "grant-loader", help="Let ROLE run the job: read and write tables, no schema changes."
)(_role_command(lambda engine, role: _roles().grant_loader(engine, role)))
db_app.command("revoke", help="Take back every right grant-reader or grant-loader gave ROLE.")(
    _role_command(lambda engine, role: _roles().revoke(engine, role))
)


@db_app.command("downgrade")
def db_downgrade(
    revision: Annotated[str, typer.Argument(help="Target migration, e.g. -1 or base.")],
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    debug: Debug = False,
) -> None:
    """Migrate the warehouse down to REVISION (``base`` drops every table: data is lost)."""
    from evergreen_etl.warehouse.migrate import downgrade

    with _command(debug):
        settings = _settings(data_dir=data_dir, database_url=database_url)
        downgrade(settings.effective_database_url, revision)
        typer.echo(f"warehouse downgraded to {revision}")


keys_app = typer.Typer(
    help="The pseudonym key: identifier and rotation.", no_args_is_help=True, rich_markup_mode=None
)
app.add_typer(keys_app, name="keys")


@keys_app.command("id")
def keys_id(
    data_dir: DataDir = None, database_url: DatabaseUrl = None, debug: Debug = False
) -> None:
    """Print the configured key's identifier and the warehouse's (never the key itself)."""
    from evergreen_etl.privacy.keyfile import key_ids

    with _command(debug):
        configured, warehouse = key_ids(_settings(data_dir=data_dir, database_url=database_url))
        typer.echo(f"configured: {configured}\nwarehouse: {warehouse or 'none yet'}")


@keys_app.command("rotate")
def keys_rotate(
    users: Annotated[
        list[Path],
        typer.Option("--users", help="Raw users file of a loaded snapshot (repeat for each)."),
    ],
    new_key_file: Annotated[
        Path | None,
        typer.Option(help="The new key's file, created if absent [default: replace the key file]."),
    ] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    debug: Debug = False,
) -> None:
    """Re-key every pseudonym in the warehouse with a new key, in one transaction."""
    from evergreen_etl.privacy.keyfile import rotate_key_files

    with _command(debug):
        settings = _settings(data_dir=data_dir, database_url=database_url)
        result = rotate_key_files(settings, users_paths=users, new_key_file=new_key_file)
        typer.echo(result.model_dump_json(indent=2))


@app.command()
def risk(
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    as_of: AsOf = None,
    threshold: Annotated[
        int, typer.Option(min=2, help="Classes smaller than this are at risk.")
    ] = 5,
    max_unique_share: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Recommend the finest location precision whose share of unique users "
            "(place x birth year x sex) is below this.",
        ),
    ] = 0.05,
    fmt: Format = "table",
    debug: Debug = False,
) -> None:
    """Re-identification risk: k-anonymity over quasi-identifier sets (no personal data)."""
    from evergreen_etl.privacy.risk import risk_report
    from evergreen_etl.report.render import render

    with _command(debug, True):
        settings = _settings(data_dir=data_dir, database_url=database_url)
        result = risk_report(
            settings,
            as_of=_as_of(as_of),
            threshold=threshold,
            max_unique_share=max_unique_share,
        )
        sys.stdout.write(render(result, fmt))


lookup_app = typer.Typer(help="The postcode lookup versions loaded.", no_args_is_help=True)
app.add_typer(lookup_app, name="lookup")


@lookup_app.command("list")
def lookup_list(
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    fmt: Format = "table",
    debug: Debug = False,
) -> None:
    """Every postcode lookup loaded: version, publication month, rows, checksum, source."""
    from evergreen_etl.report.lookups import lookup_versions, render_lookup_versions

    with _command(debug, True):
        settings = _settings(data_dir=data_dir, database_url=database_url)
        sys.stdout.write(render_lookup_versions(lookup_versions(settings), fmt))


@app.command()
def status(
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    fmt: Annotated[
        Literal["table", "json"], typer.Option("--format", help="Output format.")
    ] = "table",
    debug: Debug = False,
) -> None:
    """The warehouse at a glance: URL (password hidden), schema, snapshots, key, last run."""
    from evergreen_etl.status import render_status, warehouse_status

    with _command(debug, True):
        result = warehouse_status(_settings(data_dir=data_dir, database_url=database_url))
        if fmt == "json":
            typer.echo(result.model_dump_json(indent=2))
        else:
            sys.stdout.write(render_status(result))


config_app = typer.Typer(
    help="Settings: options > environment > .env > config file > defaults.", no_args_is_help=True
)
app.add_typer(config_app, name="config")


@config_app.command("show")
def config_show(
    data_dir: DataDir = None, database_url: DatabaseUrl = None, debug: Debug = False
) -> None:
    """Print every effective setting with where it came from (secrets hidden)."""
    from evergreen_etl.config import render_settings

    with _command(debug, True):
        sys.stdout.write(render_settings({"data_dir": data_dir, "database_url": database_url}))


@app.command()
def publish(
    out: Annotated[
        Path, typer.Option("--out", file_okay=False, help="Directory of the mart to write.")
    ],
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    as_of: AsOf = None,
    min_count: MinCount = None,
    disclosure: Disclosure = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace OUT even if it is not empty.")
    ] = False,
    debug: Debug = False,
    log_format: LogFormatOption = "text",
) -> None:
    """Write every report as CSV and Parquet, the HTML page and a manifest, under
    disclosure control (default: the NHS rule), atomically."""
    from evergreen_etl.publish import publish as publish_mart

    with _command(debug, True, log_format):
        settings = _settings(data_dir=data_dir, database_url=database_url)
        if disclosure is None and min_count is None:
            disclosure = "nhs"
        result = publish_mart(
            settings,
            out,
            rule=disclosure_rule(disclosure, min_count),
            as_of=_as_of(as_of),
            force=force,
        )
        typer.echo(f"published {len(result.files) + 1} files to {result.out}")


def main() -> None:
    """Console-script entry point (also ``python -m evergreen_etl``, under the same name, so
    that shell completion answers either way)."""
    try:
        app(prog_name="evergreen-etl")
    except SystemExit:
        # Typer's own output (--help, usage errors) meeting a closed pipe exits 1 after
        # swapping stdout for a wrapper that swallows the error: report it as ours do.
        if type(sys.stdout).__name__ == "PacifyFlushWrapper":
            raise SystemExit(BROKEN_PIPE_EXIT) from None
        raise
    except BrokenPipeError:
        _stdout_gone()
        raise SystemExit(BROKEN_PIPE_EXIT) from None


add_history_commands(app)
