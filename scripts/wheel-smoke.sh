#!/usr/bin/env bash
# Install the built wheel into a fresh virtualenv outside the repository and use it: the proof
# that `pip install evergreen_etl-*.whl` alone gives a working tool (migrations and SQL files
# included, no checkout needed).
#
# Usage: scripts/wheel-smoke.sh WHEEL_DIR      (WHEEL_DIR holds one evergreen_etl-*.whl)
#
# The install step is the Dockerfile's runtime stage, line for line: the same `pip install`
# command, run from a directory laid out like the image's /tmp/install (constraints.txt and
# wheels/). tests/delivery/test_wheel.py checks that the two lines stay identical, so this
# script passing is the evidence that the image's install works (there is no Docker engine in
# CI to build the image itself).
set -euo pipefail

if [[ $# -ne 1 || ! -d "$1" ]]; then
  echo "usage: $0 WHEEL_DIR" >&2
  exit 2
fi
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
wheel_dir="$(cd "$1" && pwd)"
python="${PYTHON:-python3}"

shopt -s nullglob
wheels=("$wheel_dir"/evergreen_etl-*.whl)
if [[ ${#wheels[@]} -ne 1 ]]; then
  echo "wheel-smoke: expected one evergreen_etl-*.whl in $wheel_dir, found ${#wheels[@]}" >&2
  exit 2
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/evergreen-wheel-smoke.XXXXXX")"
trap 'rm -rf "$work"' EXIT
step() { printf 'wheel-smoke: %s\n' "$*" >&2; }

step "fresh virtualenv in $work/venv"
"$python" -m venv "$work/venv"
export PATH="$work/venv/bin:$PATH" PIP_DISABLE_PIP_VERSION_CHECK=1
unset PYTHONPATH VIRTUAL_ENV EVERGREEN_DATA_DIR EVERGREEN_DATABASE_URL \
  EVERGREEN_USERS_URL EVERGREEN_POSTCODES_URL EVERGREEN_PSEUDONYM_KEY EVERGREEN_PSEUDONYM_KEY_FILE

step "install ${wheels[0]##*/} with constraints.txt (the Dockerfile's runtime install step)"
mkdir -p "$work/install/wheels"
cp "$repo/constraints.txt" "$work/install/"
cp "${wheels[0]}" "$work/install/wheels/"
cd "$work/install"
# --- same command as the Dockerfile's runtime stage; keep the two identical ---
pip install --no-cache-dir --progress-bar off --constraint constraints.txt \
  "$(ls wheels/evergreen_etl-*.whl)[postgres]"

# Run from an empty directory: nothing may come from the checkout or the current directory.
mkdir "$work/run"
cd "$work/run"
data="$work/run/data"

step "installed package ships its migrations and SQL"
python - <<'EOF'
from importlib.resources import files

package = files("evergreen_etl")
for shipped in ("warehouse/migrations/env.py", "report/sql/users_by_local_authority.sql"):
    assert package.joinpath(shipped).is_file(), f"{shipped} is missing from the installed wheel"
assert "site-packages" in str(package), f"evergreen_etl imported from {package}, not the venv"
EOF

step "evergreen-etl --help"
evergreen-etl --help >/dev/null

step "evergreen-etl db upgrade"
evergreen-etl db upgrade --data-dir "$data"

step "evergreen-etl demo"
evergreen-etl demo --data-dir "$data" --users 300 --postcodes 3000 --snapshots 2 \
  --quiet --format json >"$work/report.json"

python - "$work/report.json" <<'EOF'
import json
import sys

with open(sys.argv[1], encoding="utf-8") as handle:
    rows = json.load(handle)
assert isinstance(rows, list) and rows, "the demo report is empty"
users = sum(row["users"] or 0 for row in rows)
assert users > 0, "the demo report counts no users"
print(f"wheel-smoke: demo report has {len(rows)} rows and {users} users", file=sys.stderr)
EOF

step "ok"
