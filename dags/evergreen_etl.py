"""Evergreen ETL, daily: extract → anonymise → load → report, one Airflow task per stage.

Each task calls the evergreen-etl library (never the CLI) and returns the stage's result as a
small JSON dict of counts and checksums, which Airflow keeps as the task's XCom. The stages hand
data to each other through files under the data directory, not through XCom, so no record ever
reaches Airflow's database.

Idempotent per logical date: a run loads its snapshot as of the end of its data interval, so
clearing and rerunning a date loads the same snapshot at the same time, which changes nothing.
``max_active_runs=1`` keeps two runs from sharing the data directory at once.

Configuration, read when a task runs (never when the file is parsed):

* the ``EVERGREEN_*`` environment of the workers (see the README), and
* Airflow Variables that override it: ``evergreen_data_dir``, ``evergreen_database_url``,
  ``evergreen_users_url``, ``evergreen_postcodes_url``, ``evergreen_pseudonym_key_file`` and
  ``evergreen_min_count`` (report disclosure control).

The pseudonym key is a secret: give it to the workers as ``EVERGREEN_PSEUDONYM_KEY`` or, better,
as a mounted file named by ``EVERGREEN_PSEUDONYM_KEY_FILE``. It never belongs in this file or
in a plain Variable. Likewise, keep database passwords out of ``evergreen_database_url`` unless
Variables come from a secrets backend (or use ``PGPASSWORD`` / ``.pgpass``).

The load task declares the warehouse tables it writes as Airflow Assets (outlets) and the
report task the tables it reads (inlets), so Airflow's asset and lineage views show the
warehouse, and other DAGs can be scheduled on ``evergreen_etl.warehouse.user_address``.

Needs Airflow 3 (Airflow 2 pins SQLAlchemy below 2.0, which evergreen-etl cannot use) and
evergreen-etl installed in the workers' environment.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import Asset, Variable, dag, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException

if TYPE_CHECKING:
    from evergreen_etl import Settings

# Settings field -> the Airflow Variable that overrides its EVERGREEN_* environment variable.
SETTING_VARIABLES = {
    "data_dir": "evergreen_data_dir",
    "database_url": "evergreen_database_url",
    "users_url": "evergreen_users_url",
    "postcodes_url": "evergreen_postcodes_url",
    "pseudonym_key_file": "evergreen_pseudonym_key_file",
}
MIN_COUNT_VARIABLE = "evergreen_min_count"


def warehouse_asset(table: str) -> Asset:
    """The Asset for one warehouse table (a logical URI: the database is set when a task runs)."""
    return Asset(
        name=f"evergreen_etl.warehouse.{table}",
        uri=f"evergreen-etl://warehouse/{table}",
        group="evergreen_etl",
    )


# The tables the load writes and the headline report reads (as evergreen_etl.lineage names them).
LOADED_TABLES = ("dim_postcode", "dim_user", "user_address", "etl_run")
REPORTED_TABLES = ("user_address", "dim_user", "dim_local_authority")


def stage_settings() -> Settings:
    """Settings from the workers' environment, overridden by any Airflow Variables that are set."""
    from pydantic import ValidationError

    from evergreen_etl import Settings

    overrides = {
        field: value
        for field, name in SETTING_VARIABLES.items()
        if (value := Variable.get(name, default=None)) is not None
    }
    try:
        # A fresh Settings per task, not the cached get_settings(): Variables change between runs.
        return Settings(**overrides)
    except ValidationError as exc:
        # Where and what only, and `from None`: pydantic's message quotes the rejected input,
        # which may be the pseudonym key, and the task log would keep it.
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise AirflowFailException(f"invalid evergreen-etl setting: {problems}") from None


def snapshot_time() -> datetime:
    """The end of this run's data interval (the run's trigger time for a manual run), in UTC."""
    context = get_current_context()
    moment = context.get("data_interval_end") or context["dag_run"].run_after
    return datetime.fromtimestamp(moment.timestamp(), tz=UTC)


@contextmanager
def fail_without_retry_on_permanent_errors() -> Iterator[None]:
    """Fail at once, without retries, on the errors a retry cannot fix.

    Retried: a source or database that is down, a concurrent load. Not retried: our other
    errors (bad settings or data, the wrong key, an out-of-date schema, an older snapshot).
    """
    from evergreen_etl import ConcurrentLoadError, EvergreenError, SourceError

    try:
        yield
    except (SourceError, ConcurrentLoadError):
        raise
    except EvergreenError as exc:
        # Our messages are one line and free of personal data; the hint says how to fix it.
        hint = f" (hint: {exc.hint})" if exc.hint else ""
        raise AirflowFailException(f"{type(exc).__name__}: {exc}{hint}") from exc


@dag(
    dag_id="evergreen_etl",
    description="Pseudonymise Evergreen's users, keep their address history, count by authority.",
    schedule="@daily",
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args={
        "owner": "data-engineering",
        "retries": 2,
        "retry_delay": timedelta(minutes=5),
        "retry_exponential_backoff": True,
    },
    tags=["evergreen"],
    doc_md=__doc__,
)
def evergreen_etl() -> None:
    """Build the four-stage pipeline."""

    @task
    def extract() -> dict[str, Any]:
        """Fetch users.json and postcodes.zip into DATA_DIR/raw, with a manifest."""
        from evergreen_etl import extract as extract_sources

        with fail_without_retry_on_permanent_errors():
            return extract_sources(stage_settings(), progress=False).model_dump(mode="json")

    @task
    def anonymise() -> dict[str, Any]:
        """Pseudonymise the raw users into DATA_DIR/staged (records, rejects, quality summary)."""
        from evergreen_etl import anonymise as anonymise_users

        with fail_without_retry_on_permanent_errors():
            return anonymise_users(stage_settings(), progress=False).model_dump(mode="json")

    @task(outlets=[warehouse_asset(table) for table in LOADED_TABLES])
    def load() -> dict[str, Any]:
        """Merge the staged snapshot into the warehouse as of the end of the data interval."""
        from evergreen_etl import load as load_snapshot

        with fail_without_retry_on_permanent_errors():
            result = load_snapshot(stage_settings(), as_of=snapshot_time(), progress=False)
            return result.model_dump(mode="json")

    @task(inlets=[warehouse_asset(table) for table in REPORTED_TABLES])
    def report() -> dict[str, Any]:
        """Distinct users by local authority at the end of the data interval."""
        from evergreen_etl import report as build_report
        from evergreen_etl.privacy.disclosure import disclosure_rule

        min_count = Variable.get(MIN_COUNT_VARIABLE, default=None)
        with fail_without_retry_on_permanent_errors():
            result = build_report(
                stage_settings(),
                as_of=snapshot_time(),
                disclosure=disclosure_rule(None, int(min_count) if min_count else None),
            )
            return result.model_dump(mode="json")

    # The stages talk through files in the data directory, so the order is explicit.
    extract() >> anonymise() >> load() >> report()


evergreen_etl()
