# evergreen-etl in a container.
#
#   docker build -t evergreen-etl .
#   docker run --rm -v evergreen-data:/data evergreen-etl demo
#   (umask 077 && python3 -c 'import secrets; print(secrets.token_hex(32))' > pseudonym.key)
#   sudo chown 10001:10001 pseudonym.key     # readable by the container's user only
#   docker run --rm -v evergreen-data:/data \
#       -e EVERGREEN_PSEUDONYM_KEY_FILE=/run/secrets/pseudonym_key \
#       -v "$PWD/pseudonym.key:/run/secrets/pseudonym_key:ro" \
#       -e EVERGREEN_DATABASE_URL=postgresql+psycopg://etl@db/warehouse \
#       evergreen-etl run --as-of 2024-06-30
#
# Secrets never enter the image: pass the pseudonym key as EVERGREEN_PSEUDONYM_KEY, or (better)
# mount it as a file and point EVERGREEN_PSEUDONYM_KEY_FILE at it (a Docker/Kubernetes secret at
# /run/secrets/pseudonym_key). Without either, a key is created on first use under /data, so keep
# that volume. A database password belongs in EVERGREEN_DATABASE_URL, set at run time.
#
# There is no Docker engine in this project's CI. The runtime stage's install step is the same
# command that scripts/wheel-smoke.sh runs against the freshly built wheel in a clean virtualenv
# (tests/delivery/test_wheel.py checks the two lines are identical and runs the script), so that
# test is the evidence that this install works.

# --- build: turn the source tree into a wheel --------------------------------------------------
FROM python:3.11-slim AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src
# Only what the wheel is built from (the Alembic scripts are inside the package, under src/).
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip wheel --no-deps --wheel-dir /wheels .

# --- runtime: the wheel and its pinned dependencies on a slim Python -------------------------
FROM python:3.11-slim AS runtime

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

# Same layout and same command as scripts/wheel-smoke.sh: constraints.txt pins every runtime
# dependency to the versions the test suite ran with.
WORKDIR /tmp/install
COPY constraints.txt ./
COPY --from=build /wheels/ ./wheels/
RUN pip install --no-cache-dir --progress-bar off --constraint constraints.txt \
  "$(ls wheels/evergreen_etl-*.whl)[postgres]" \
 && rm -rf /tmp/install

# A fixed, unprivileged uid so a mounted /data can be chowned to it on the host.
RUN groupadd --system --gid 10001 evergreen \
 && useradd --system --uid 10001 --gid evergreen --home-dir /home/evergreen --create-home \
    --shell /usr/sbin/nologin evergreen \
 && mkdir -p /data \
 && chown evergreen:evergreen /data

# raw/ and staged/ files, the default SQLite warehouse and (if none is given) the key file.
ENV EVERGREEN_DATA_DIR=/data
VOLUME /data
WORKDIR /data
USER evergreen:evergreen

ENTRYPOINT ["evergreen-etl"]
CMD ["--help"]
