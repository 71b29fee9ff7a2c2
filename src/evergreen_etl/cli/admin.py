"""The commands that look after the warehouse: db, keys, risk, lookup, status, config and
publish."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from evergreen_etl.cli.common import (
    AsOf,
    DatabaseUrl,
    DataDir,
    Debug,
    Disclosure,
    Format,
    LogFormatOption,
    MinCount,
    _as_of,
    _command,
    _settings,
    app,
)
from evergreen_etl.privacy.disclosure import disclosure_rule
from evergreen_etl.settings import Settings

db_app = typer.Typer(
    help="Create or migrate the warehouse schema (Alembic).",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(db_app, name="db")


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
