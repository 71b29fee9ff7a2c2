"""The Airflow DAG, in real Apache Airflow: it imports cleanly and a `dag.test()` run completes.

Airflow lives in its own virtualenv (scripts/airflow-venv.sh); these tests run when
EVERGREEN_AIRFLOW_PYTHON names that venv's python, are skipped without it, and fail without it
in CI (CI=true):

    EVERGREEN_AIRFLOW_PYTHON="$(scripts/airflow-venv.sh)/bin/python" \\
        .venv/bin/pytest tests/delivery/test_airflow_dag.py

One subprocess (fresh AIRFLOW_HOME, SQLite metadata database) loads the DAG folder, runs the DAG
twice for the same logical date and prints what it saw as one JSON line; the tests read that.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
from contextlib import closing
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from evergreen_etl.sample import generate_sample
from evergreen_etl.sources.users import UsersReader
from support.keys import TEST_KEY

# Read at import: the suite's autouse fixture clears EVERGREEN_* variables before each test.
AIRFLOW_PYTHON = os.environ.get("EVERGREEN_AIRFLOW_PYTHON", "")
LOGICAL_DATE = "2024-06-30T00:00:00+00:00"
STAGES = ["extract", "anonymise", "load", "report"]
RESULT_MARK = "DAG-TEST-RESULT "

# In CI the DAG must really run: there a missing Airflow fails the tests instead of skipping them.
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not AIRFLOW_PYTHON and not IN_CI,
        reason="set EVERGREEN_AIRFLOW_PYTHON to the python of scripts/airflow-venv.sh's venv",
    ),
]

# Runs inside the Airflow venv: loads the DAG folder, reports the DAG's shape, then runs it RUNS
# times for one logical date. With ZERO_RETRIES=1 failed tasks are not retried (the DAG's retry
# delay would keep dag.test() waiting for minutes); the shape is reported before that change.
RUNNER = """
import json, sqlite3, sys
from contextlib import closing
from datetime import datetime

try:
    from airflow.dag_processing.dagbag import DagBag
except ImportError:  # older Airflow 3 releases
    from airflow.models.dagbag import DagBag

dags_folder, logical_date, warehouse, mark, runs, zero_retries = sys.argv[1:7]
bag = DagBag(dag_folder=dags_folder)
seen = {"import_errors": {str(k): str(v) for k, v in bag.import_errors.items()}}
dag = bag.dags.get("evergreen_etl")
seen["dag_ids"] = sorted(bag.dags)
if dag is not None:
    seen["order"] = [task.task_id for task in dag.topological_sort()]
    seen["upstream"] = {task.task_id: sorted(task.upstream_task_ids) for task in dag.tasks}
    seen["schedule"] = str(dag.schedule)
    seen["catchup"] = dag.catchup
    seen["max_active_runs"] = dag.max_active_runs
    seen["retries"] = {task.task_id: task.retries for task in dag.tasks}
    seen["outlets"] = {t.task_id: sorted(a.uri for a in t.outlets) for t in dag.tasks}
    seen["inlets"] = {t.task_id: sorted(a.uri for a in t.inlets) for t in dag.tasks}
    seen["retry_delay_s"] = {
        task.task_id: task.retry_delay.total_seconds() for task in dag.tasks
    }
    if zero_retries == "1":
        for task in dag.tasks:
            task.retries = 0
    seen["runs"] = []
    for _ in range(int(runs)):
        run = dag.test(logical_date=datetime.fromisoformat(logical_date))
        try:
            with closing(sqlite3.connect(f"file:{warehouse}?mode=ro", uri=True)) as db:
                counts = {
                    table: db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                    for table in ("user_address", "etl_run")
                }
        except sqlite3.OperationalError:  # the run failed before the warehouse was created
            counts = None
        seen["runs"].append({
            "state": str(run.state),
            "tasks": {ti.task_id: str(ti.state) for ti in run.get_task_instances()},
            "tries": {ti.task_id: ti.try_number for ti in run.get_task_instances()},
            "warehouse": counts,
        })
print(mark + json.dumps(seen), flush=True)
"""
# A key long enough but made of few characters: the settings refuse it as a placeholder.
PLACEHOLDER_KEY = "abcd" * 16


def _personal_identifiers(users_file: Path) -> set[str]:
    """Every email, name and street in a users export, lower-cased."""
    found: set[str] = set()
    for record in UsersReader(users_file):
        value = record.value
        if not isinstance(value, dict):
            continue
        address = value.get("address")
        street = address.get("street") if isinstance(address, dict) else None
        for item in (value.get("email"), value.get("givenName"), value.get("familyName"), street):
            if isinstance(item, str) and len(item.strip()) >= 4:
                found.add(item.strip().lower())
    return found


def _run_dag(
    repo_root: Path, base: Path, *, key: str, runs: int, zero_retries: bool
) -> dict[str, Any]:
    """Migrate a fresh Airflow metadata database under ``base``, then run the DAG on sample data.

    Returns what the runner saw, plus its output, the files Airflow wrote and the sample's
    personal identifiers (keys starting with ``_``).
    """
    if not Path(AIRFLOW_PYTHON or "/nonexistent").is_file():
        pytest.fail(
            f"EVERGREEN_AIRFLOW_PYTHON={AIRFLOW_PYTHON!r} is not a python; "
            'run: export EVERGREEN_AIRFLOW_PYTHON="$(scripts/airflow-venv.sh)/bin/python"'
        )
    sample = generate_sample(base / "sample", users=300, postcodes=3000)
    data_dir = base / "data"
    env = {name: value for name, value in os.environ.items() if not name.startswith("EVERGREEN_")}
    env.update(
        AIRFLOW_HOME=str(base / "airflow-home"),
        AIRFLOW__CORE__DAGS_FOLDER=str(repo_root / "dags"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{base / 'airflow.db'}",
        EVERGREEN_DATA_DIR=str(data_dir),
        EVERGREEN_USERS_URL=str(sample.users_paths[0]),
        EVERGREEN_POSTCODES_URL=str(sample.postcodes_path),
        EVERGREEN_PSEUDONYM_KEY=key,
    )
    env.pop("VIRTUAL_ENV", None)
    env.pop("PYTHONPATH", None)

    def airflow_python(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [AIRFLOW_PYTHON, *args],
            env=env,
            cwd=base,
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )

    migrated = airflow_python("-m", "airflow", "db", "migrate")
    assert migrated.returncode == 0, migrated.stdout[-3000:] + migrated.stderr[-3000:]
    warehouse = data_dir / "warehouse.db"
    ran = airflow_python(
        "-c",
        RUNNER,
        str(repo_root / "dags"),
        LOGICAL_DATE,
        str(warehouse),
        RESULT_MARK,
        str(runs),
        "1" if zero_retries else "0",
    )
    output = ran.stdout + ran.stderr
    lines = [line for line in ran.stdout.splitlines() if line.startswith(RESULT_MARK)]
    assert ran.returncode == 0, f"the DAG runner failed:\n{output[-8000:]}"
    assert lines, f"the DAG runner printed no result:\n{output[-8000:]}"
    seen: dict[str, Any] = json.loads(lines[-1].removeprefix(RESULT_MARK))
    seen["_output"] = output
    seen["_warehouse"] = warehouse
    seen["_airflow_files"] = [*base.glob("airflow.db*"), *(base / "airflow-home").rglob("*")]
    seen["_identifiers"] = _personal_identifiers(sample.users_paths[0])
    return seen


@pytest.fixture(scope="module")
def dag_run(repo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The DAG run twice for the same logical date on sample data, with a good key."""
    base = tmp_path_factory.mktemp("airflow")
    return _run_dag(repo_root, base, key=TEST_KEY, runs=2, zero_retries=True)


@pytest.fixture(scope="module")
def bad_key_run(repo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The DAG run once with a placeholder key, the DAG's own retries left in place."""
    base = tmp_path_factory.mktemp("airflow-bad-key")
    return _run_dag(repo_root, base, key=PLACEHOLDER_KEY, runs=1, zero_retries=False)


def test_dag_declares_the_warehouse_assets(dag_run: dict[str, Any]) -> None:
    """The load task's outlets and the report task's inlets are the warehouse tables' Assets."""
    warehouse = "evergreen-etl://warehouse/"
    assert dag_run["outlets"]["load"] == [
        warehouse + t for t in sorted(("dim_postcode", "dim_user", "user_address", "etl_run"))
    ]
    assert dag_run["inlets"]["report"] == [
        warehouse + t for t in sorted(("user_address", "dim_user", "dim_local_authority"))
    ]
    assert dag_run["outlets"]["extract"] == []


def test_dag_imports_without_errors(dag_run: dict[str, Any]) -> None:
    """The DAG folder parses in Airflow with no import error and defines `evergreen_etl`."""
    assert dag_run["import_errors"] == {}
    assert dag_run["dag_ids"] == ["evergreen_etl"]


def test_dag_has_one_task_per_stage_in_order(dag_run: dict[str, Any]) -> None:
    """extract → anonymise → load → report, each depending on the one before."""
    assert dag_run["order"] == STAGES
    assert dag_run["upstream"] == {
        stage: [STAGES[i - 1]] if i else [] for i, stage in enumerate(STAGES)
    }


def test_dag_runs_daily_one_at_a_time_with_retries(dag_run: dict[str, Any]) -> None:
    """@daily, no catch-up, one active run, and every task retried twice after a delay."""
    assert dag_run["schedule"] == "@daily"
    assert dag_run["catchup"] is False
    assert dag_run["max_active_runs"] == 1
    assert set(dag_run["retries"].values()) == {2}
    assert min(dag_run["retry_delay_s"].values()) > 0


def test_dag_test_run_completes_every_task(dag_run: dict[str, Any]) -> None:
    """A dag.test() run on generated sample data succeeds, every task included."""
    first = dag_run["runs"][0]
    assert first["state"] == "success", dag_run["_output"][-8000:]
    assert first["tasks"] == dict.fromkeys(STAGES, "success")


def test_dag_run_loads_the_snapshot_as_of_the_data_interval_end(dag_run: dict[str, Any]) -> None:
    """The SQLite warehouse holds the users, loaded as of the run's data interval end."""
    with closing(sqlite3.connect(dag_run["_warehouse"])) as db:
        (addresses,) = db.execute("SELECT count(*) FROM user_address").fetchone()
        loads = db.execute("SELECT status, as_of FROM etl_run").fetchall()
        opened = {row[0] for row in db.execute("SELECT DISTINCT valid_from FROM user_address")}
    assert addresses > 0
    logical = datetime.fromisoformat(LOGICAL_DATE).replace(tzinfo=None)
    assert [(status, datetime.fromisoformat(t)) for status, t in loads] == [("succeeded", logical)]
    assert {datetime.fromisoformat(t) for t in opened} == {logical}


def test_rerunning_a_logical_date_changes_nothing(dag_run: dict[str, Any]) -> None:
    """A second run for the same logical date succeeds and leaves the warehouse as it was."""
    first, second = dag_run["runs"]
    assert second["state"] == "success", dag_run["_output"][-8000:]
    assert second["warehouse"] == first["warehouse"]


def test_no_personal_data_reaches_airflow(dag_run: dict[str, Any]) -> None:
    """No email, name or street appears in task logs, XComs or Airflow's database."""
    identifiers = dag_run["_identifiers"]
    assert len(identifiers) > 300
    pattern = re.compile("|".join(re.escape(i) for i in sorted(identifiers, key=len, reverse=True)))
    assert pattern.search(dag_run["_output"].lower()) is None
    scanned = 0
    for path in dag_run["_airflow_files"]:
        if path.is_file():
            text = path.read_bytes().decode("utf-8", errors="replace").lower()
            assert pattern.search(text) is None, f"{path.name} holds personal data"
            scanned += 1
    assert scanned >= 1


def test_a_bad_setting_fails_at_once_without_logging_the_key(
    bad_key_run: dict[str, Any],
) -> None:
    """A placeholder key fails the first task on its first try, and the key is never logged."""
    (run,) = bad_key_run["runs"]
    assert run["state"] == "failed"
    assert run["tasks"]["extract"] == "failed"
    assert run["tries"]["extract"] == 1
    assert "invalid evergreen-etl setting: pseudonym_key" in bad_key_run["_output"]
    assert PLACEHOLDER_KEY not in bad_key_run["_output"]
    for path in bad_key_run["_airflow_files"]:
        if path.is_file():
            assert PLACEHOLDER_KEY.encode() not in path.read_bytes(), f"{path.name} holds the key"
