#!/usr/bin/env bash
# Create (or reuse) a virtualenv with Apache Airflow and evergreen-etl, for the DAG test
# (tests/delivery/test_airflow_dag.py). Prints the venv's directory on stdout and nothing else;
# pip's output goes to stderr. Typical use:
#
#     EVERGREEN_AIRFLOW_PYTHON="$(scripts/airflow-venv.sh)/bin/python" \
#         .venv/bin/pytest tests/delivery/test_airflow_dag.py
#
# Usage: scripts/airflow-venv.sh [DIR]     (default DIR: .airflow-venv at the repository root)
#
# Airflow lives in its own venv so that its few hundred dependencies never slow down or
# constrain the project's .venv. A venv that already has the pinned Airflow is reused: only the
# project is (re)installed into it, in editable mode, so it always runs this checkout's code.
#
# Airflow 3 is required: Airflow 2.x pins SQLAlchemy < 2.0, and evergreen-etl needs 2.x.
# Airflow's official constraint files are not reachable from here, so the project's own
# constraints.txt pins the packages the two share, and pip resolves the rest.
set -euo pipefail

AIRFLOW_VERSION="${AIRFLOW_VERSION:-3.3.2}"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${1:-$repo/.airflow-venv}"
python="${PYTHON:-python3}"

export PIP_DISABLE_PIP_VERSION_CHECK=1

has_airflow() {
  [[ -x "$venv/bin/python" ]] &&
    "$venv/bin/python" - "$AIRFLOW_VERSION" >/dev/null 2>&1 <<'EOF'
import sys
from importlib.metadata import version

sys.exit(version("apache-airflow") != sys.argv[1])
EOF
}

# The runtime part of constraints.txt only: the dev group's pins (test tools, the extras and
# what they pull in) are not the project's to impose on Airflow.
runtime_constraints="$(mktemp)"
trap 'rm -f "$runtime_constraints"' EXIT
sed '/^# The dev group/,$d' "$repo/constraints.txt" > "$runtime_constraints"

started=$SECONDS
if has_airflow; then
  echo "airflow-venv: reusing $venv (apache-airflow $AIRFLOW_VERSION)" >&2
  "$venv/bin/python" -m pip install --quiet --constraint "$runtime_constraints" \
    --editable "$repo" >&2
else
  echo "airflow-venv: creating $venv with apache-airflow $AIRFLOW_VERSION" >&2
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --upgrade pip >&2
  "$venv/bin/python" -m pip install --quiet --constraint "$runtime_constraints" \
    "apache-airflow==$AIRFLOW_VERSION" --editable "$repo" >&2
fi
"$venv/bin/python" -c 'import airflow, evergreen_etl' >&2
echo "airflow-venv: ready in $((SECONDS - started)) s" >&2
printf '%s\n' "$venv"
