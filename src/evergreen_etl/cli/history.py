"""The ``history`` commands and the options of correcting history (README "Correcting history").

No ``from __future__ import annotations`` here: the commands are defined inside
``add_history_commands``, after ``cli.common`` has defined the options they share, and Typer reads
their annotations as objects.
"""

import sys
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer

from evergreen_etl.errors import ConfigurationError
from evergreen_etl.settings import Settings
from evergreen_etl.times import parse_as_of

if TYPE_CHECKING:  # the command imports only what it needs
    from evergreen_etl.report.render import ReportFormat

REVISIONS = "revisions"

Replace = Annotated[
    bool,
    typer.Option(
        "--replace",
        help="Load a different snapshot at a time already loaded, as a correction of it.",
    ),
]
AsKnownAt = Annotated[
    str | None,
    typer.Option(
        "--as-known-at",
        help="Read the warehouse as it was right after run RUN_ID, or after the last run "
        "finished by a TIMESTAMP (see `history list`).",
        metavar="RUN_ID|TIMESTAMP",
    ),
]
Since = Annotated[
    str | None,
    typer.Option(
        "--since",
        help="revisions: the run (RUN_ID or TIMESTAMP) whose figures are compared with now.",
        metavar="RUN_ID|TIMESTAMP",
    ),
]


def known_at_option(option: str, value: str | None) -> int | datetime | None:
    """A run id, or a time (the last run finished by then)."""
    if value is None:
        return None
    if value.strip().isdigit():
        return int(value)
    try:
        return parse_as_of(value)
    except ValueError as exc:
        raise ConfigurationError(f"{option}: expected a run id or a time; {exc}") from None


def revisions_command(
    settings: Settings, as_of: datetime | None, since: str | None, fmt: "ReportFormat"
) -> None:
    """`report revisions`: the counts at --as-of as known after --since, now, and the change."""
    from evergreen_etl.history import render_revisions, revisions

    since_run = known_at_option("--since", since)
    if as_of is None or since_run is None:
        raise ConfigurationError(f"'{REVISIONS}' needs --as-of T and --since RUN_ID")
    sys.stdout.write(render_revisions(revisions(settings, as_of=as_of, since=since_run), fmt))


def add_history_commands(app: typer.Typer) -> None:
    """Add the ``history`` group (list, undo) to ``app``."""
    from evergreen_etl.cli.common import (
        DatabaseUrl,
        DataDir,
        Debug,
        Format,
        Quiet,
        _command,
        _settings,
    )

    history_app = typer.Typer(
        help="Every load the warehouse holds, and undoing one (README: Correcting history).",
        no_args_is_help=True,
    )
    app.add_typer(history_app, name="history")

    @history_app.command("list")
    def history_list(
        data_dir: DataDir = None,
        database_url: DatabaseUrl = None,
        fmt: Format = "table",
        debug: Debug = False,
    ) -> None:
        """Every load and undo: run id, as-of, recorded at, counts, status."""
        from evergreen_etl.history import list_history, render_history

        with _command(debug, True):
            settings = _settings(data_dir=data_dir, database_url=database_url)
            sys.stdout.write(render_history(list_history(settings), fmt))

    @history_app.command("undo")
    def history_undo(
        run_id: Annotated[
            int, typer.Option("--run", help="The load to undo (see `history list`).")
        ],
        data_dir: DataDir = None,
        database_url: DatabaseUrl = None,
        debug: Debug = False,
        quiet: Quiet = False,
    ) -> None:
        """Retire what load RUN recorded and re-derive the later history without it."""
        from evergreen_etl.history import undo

        with _command(debug, quiet):
            settings = _settings(data_dir=data_dir, database_url=database_url)
            typer.echo(undo(settings, run_id).model_dump_json(indent=2))
