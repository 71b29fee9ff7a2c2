#!/usr/bin/env bash
# Make sure PostgreSQL server binaries (initdb, pg_ctl) are installed, then print their bin dir
# (e.g. /usr/lib/postgresql/15/bin) on stdout and nothing else, so callers can do
#     PG_BIN="$(scripts/ensure-postgres.sh)"
#
# Idempotent and quiet when the binaries are already there. Otherwise installs Debian's
# `postgresql` package (apt output goes to stderr). It never starts a server: the test suite
# starts its own throwaway one (tests/support/postgres.py). The Debian package may auto-start
# a cluster on port 5432; the tests do not use it.
set -euo pipefail

find_pg_bin() {
  local dir
  # Newest version first (sort -V copes with both "9.6" and "15").
  while IFS= read -r dir; do
    if [[ -x "$dir/initdb" && -x "$dir/pg_ctl" ]]; then
      printf '%s\n' "$dir"
      return 0
    fi
  done < <(compgen -G '/usr/lib/postgresql/*/bin' | sort -rV)
  return 1
}

if pg_bin="$(find_pg_bin)"; then
  printf '%s\n' "$pg_bin"
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-postgres: no initdb under /usr/lib/postgresql/*/bin and no apt-get to install it" >&2
  exit 1
fi

sudo=()
if [[ "$(id -u)" -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1; then
    sudo=(sudo)
  else
    echo "ensure-postgres: need root (or sudo) to install the postgresql package" >&2
    exit 1
  fi
fi

echo "ensure-postgres: installing the postgresql package" >&2
{
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql
} >&2

if ! pg_bin="$(find_pg_bin)"; then
  echo "ensure-postgres: postgresql installed but no initdb under /usr/lib/postgresql/*/bin" >&2
  exit 1
fi
printf '%s\n' "$pg_bin"
