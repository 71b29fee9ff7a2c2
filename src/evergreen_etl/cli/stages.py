"""The pipeline's commands: extract, anonymise, load, report, run and demo."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal

import typer

from evergreen_etl.cli.common import (
    Absent,
    AllowFuture,
    AsOf,
    AutoUpgrade,
    Coarsen,
    DatabaseUrl,
    DataDir,
    Debug,
    Disclosure,
    DryRun,
    Format,
    KPolicy,
    LineageFile,
    LineageUrl,
    LogFormatOption,
    MaxLeftRate,
    MaxRejectRate,
    MetricsFile,
    MinCount,
    MinK,
    PostcodesUrl,
    Precision,
    Quiet,
    ReportFormat,
    SummaryJson,
    UsersUrl,
    _as_of,
    _command,
    _err,
    _message,
    _settings,
    app,
)
from evergreen_etl.cli.history import (
    REVISIONS,
    AsKnownAt,
    Replace,
    Since,
    known_at_option,
    revisions_command,
)
from evergreen_etl.errors import ConfigurationError
from evergreen_etl.logs import new_run_id
from evergreen_etl.models import RunResult
from evergreen_etl.privacy.disclosure import disclosure_rule
from evergreen_etl.times import parse_as_of


def _print_summary(result: RunResult) -> None:
    """An end-of-run summary on stderr: counts only, never personal data."""
    from rich.table import Table

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
    from evergreen_etl.run_record import RecordOutput, RunRecorder

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
    from evergreen_etl.run_record import RecordOutput, RunRecorder

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
