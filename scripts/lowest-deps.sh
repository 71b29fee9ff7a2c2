#!/usr/bin/env bash
# The lowest-versions job: install the lowest versions pyproject.toml allows for the direct
# dependencies (runtime and every extra) into a separate virtualenv, and run the fast tests
# there. A lower bound that does not really work fails here. Transitive dependencies resolve to
# the newest versions those lowest ones accept (like uv's --resolution lowest-direct).
#
# Usage: scripts/lowest-deps.sh [PYTEST_ARGS...]
#        (the venv: $LOWEST_VENV, default a cached one under ~/.cache; it is reused)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${LOWEST_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/evergreen-etl/lowest-venv}"
python="${PYTHON:-python3}"
export PIP_DISABLE_PIP_VERSION_CHECK=1

[[ -x "$venv/bin/python" ]] || "$python" -m venv "$venv"
pins="$venv/lowest-pins.txt"
"$venv/bin/python" "$repo/scripts/lowest_pins.py" "$repo/pyproject.toml" > "$pins"
echo "lowest direct dependencies:" $(cat "$pins") >&2

# The package at its lowest bounds, with every extra; then the test tools (their own versions
# chosen by pip within those pins: pytest-httpx, for one, follows httpx's version).
"$venv/bin/python" -m pip install --quiet -c "$pins" -e "$repo[postgres,metrics,lineage,charts,parquet]" >&2
"$venv/bin/python" -m pip install --quiet -c "$pins" pytest pytest-httpx hypothesis 'jsonschema>=4.18' scipy >&2
"$venv/bin/python" -m pip check >&2

cd "$repo"
# The fast tests. Deselected: the check that constraints.txt matches the installed versions
# (here they are the lowest ones on purpose).
"$venv/bin/python" -m pytest -q -p no:cacheprovider -m "not postgres and not slow" \
  --deselect tests/delivery/test_wheel.py::test_constraints_match_the_versions_the_tests_run_with \
  "$@"
# And the load on PostgreSQL (psycopg's COPY and the merge), when a server can be had: the
# tests start one, or skip without the server binaries.
exec "$venv/bin/python" -m pytest -q -p no:cacheprovider -m "postgres and not slow" tests/load
