"""Throwaway PostgreSQL servers for the test suite.

Tests that need PostgreSQL get a fresh, empty database on a server that is either

* the one named by ``EVERGREEN_TEST_DATABASE_URL`` (any SQLAlchemy/libpq URL of a role that may
  ``CREATE DATABASE``; per-test databases are created and dropped there), or
* a private server started for the test session by :class:`TemporaryPostgres`: ``initdb`` into a
  temporary directory, ``pg_ctl start`` on a free port of 127.0.0.1 with durability switched off,
  ``pg_ctl -m immediate stop`` and the directory removed at the end. It takes about a second.

The server binaries come from the newest ``/usr/lib/postgresql/*/bin`` (Debian's layout), then
``PATH``; ``EVERGREEN_PG_BIN`` overrides both. ``scripts/ensure-postgres.sh`` installs them.
Without binaries the fixtures skip the tests locally, and fail them when ``CI`` is set.

When the tests run as root (containers, CI), ``initdb`` and ``postgres`` refuse to run, so the
data directory is given to the ``postgres`` system user and the binaries run as that user through
``runuser -u postgres --`` (or ``setpriv``). If there is no ``postgres`` user, a system user
``evergreen-pg`` is created with ``useradd``.

The fixtures ``pg_server`` (one server a session) and ``pg_url`` (a fresh database a test)
are in ``tests/conftest.py``. Dispose of any SQLAlchemy engine made from ``pg_url`` before the
test ends if you can; the drop uses ``WITH (FORCE)`` anyway, so open connections do not block it.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Self

import psycopg
from psycopg import sql
from sqlalchemy.engine import URL, make_url

ENV_URL = "EVERGREEN_TEST_DATABASE_URL"
ENV_PG_BIN = "EVERGREEN_PG_BIN"
SUPERUSER = "evergreen"
DATABASE = "evergreen"
SERVER_USER = "postgres"
FALLBACK_SERVER_USER = "evergreen-pg"

SKIP_REASON = (
    "no PostgreSQL server for the tests: server binaries (initdb, pg_ctl) not found under "
    f"/usr/lib/postgresql/*/bin or on PATH; run scripts/ensure-postgres.sh or set {ENV_URL}"
)

_MAX_IDENTIFIER_BYTES = 63  # PostgreSQL silently truncates longer names
_START_ATTEMPTS = 3  # a free port can be taken by someone else before the server binds it


class PostgresUnavailableError(RuntimeError):
    """No PostgreSQL server can be had for the tests (and skipping is not allowed)."""


class PostgresStartError(RuntimeError):
    """A PostgreSQL command failed while starting or stopping a throwaway server."""


def find_pg_bin() -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl``: newest Debian install, then ``PATH``."""
    candidates: list[Path] = []
    if override := os.environ.get(ENV_PG_BIN):
        candidates.append(Path(override))
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version_key, reverse=True)
    if on_path := shutil.which("initdb"):
        candidates += [Path(on_path).parent, Path(on_path).resolve().parent]
    return next((c for c in candidates if _has_server_binaries(c)), None)


def unique_database_name(hint: str = "test") -> str:
    """A fresh database name from ``hint`` (e.g. a test's name): ``[a-z0-9_]``, <= 53 bytes."""
    stem = re.sub(r"[^a-z0-9]+", "_", hint.lower()).strip("_")[:40] or "test"
    return f"{stem}_{uuid.uuid4().hex[:12]}"


class PostgresServer:
    """A PostgreSQL server on which tests may create and drop databases.

    ``url`` is the SQLAlchemy URL (``postgresql+psycopg://…``) of the server's main database.
    """

    def __init__(self) -> None:
        self._url: URL | None = None

    @property
    def url(self) -> str:
        return self._sqlalchemy_url().render_as_string(hide_password=False)

    def url_for(self, database: str) -> str:
        """The SQLAlchemy URL of ``database`` on this server."""
        return self._sqlalchemy_url().set(database=database).render_as_string(hide_password=False)

    def create_database(self, name: str) -> str:
        """Create an empty database (from ``template0``, UTF8) and return its SQLAlchemy URL."""
        _check_identifier(name)
        with self._admin_connection() as conn:
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8'").format(
                    sql.Identifier(name)
                )
            )
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        """Drop ``name`` if it exists, disconnecting whoever is still connected to it."""
        _check_identifier(name)
        with self._admin_connection() as conn:
            force = conn.info.server_version >= 130000  # WITH (FORCE) is new in PostgreSQL 13
            statement = "DROP DATABASE IF EXISTS {} WITH (FORCE)" if force else "DROP DATABASE {}"
            conn.execute(sql.SQL(statement).format(sql.Identifier(name)))

    def _sqlalchemy_url(self) -> URL:
        if self._url is None:
            raise RuntimeError(f"{type(self).__name__} is not running")
        return self._url

    def _admin_url(self) -> URL:
        """Where to connect to run CREATE/DROP DATABASE."""
        return self._sqlalchemy_url()

    def _admin_connection(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(_libpq_conninfo(self._admin_url()), autocommit=True)


class ExternalPostgres(PostgresServer):
    """A server someone else runs, e.g. the one in ``EVERGREEN_TEST_DATABASE_URL``."""

    def __init__(self, url: str) -> None:
        super().__init__()
        parsed = make_url(url)
        if parsed.get_backend_name() not in {"postgresql", "postgres"}:
            raise ValueError(f"not a PostgreSQL URL: {parsed!r}")
        self._url = parsed.set(drivername="postgresql+psycopg")


class TemporaryPostgres(PostgresServer):
    """A private PostgreSQL server in a temporary directory, for as long as the ``with`` lasts.

    ``url`` is ``postgresql+psycopg://evergreen@127.0.0.1:PORT/evergreen`` (superuser
    ``evergreen``, trust authentication, TCP on 127.0.0.1 only, the Unix socket in the
    temporary directory). fsync, synchronous_commit and full_page_writes are off: a crash
    loses data, which is the point of a throwaway server.
    """

    def __init__(self, bin_dir: Path | None = None, *, timeout: int = 60) -> None:
        super().__init__()
        found = bin_dir or find_pg_bin()
        if found is None:
            raise PostgresUnavailableError(SKIP_REASON)
        self.bin_dir = found
        self.timeout = timeout
        self.port: int | None = None
        self.base_dir: Path | None = None
        self._run_as: list[str] = []

    @property
    def data_dir(self) -> Path:
        if self.base_dir is None:
            raise RuntimeError("TemporaryPostgres is not running")
        return self.base_dir / "data"

    @property
    def log_file(self) -> Path:
        return self.data_dir.parent / "postgres.log"

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> Self:
        if self.base_dir is not None:
            raise RuntimeError("TemporaryPostgres is already running")
        owner = _server_user() if os.geteuid() == 0 else None
        self.base_dir = Path(tempfile.mkdtemp(prefix="evergreen-pg-", dir=_temp_parent(owner)))
        try:
            if owner is not None:
                os.chown(self.base_dir, owner.pw_uid, owner.pw_gid)
                self._run_as = _run_as_prefix(owner)
            self._initdb()
            self._start_server()
            with psycopg.connect(_libpq_conninfo(self._admin_url()), autocommit=True) as conn:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the server (immediately, no checkpoint) and delete its directory. Idempotent."""
        if self.base_dir is None:
            return
        try:
            pid_file = self.data_dir / "postmaster.pid"
            if pid_file.exists():
                stopped = self._pg(
                    "pg_ctl", "-D", str(self.data_dir), "-m", "immediate", "-w", "stop", check=False
                )
                if stopped.returncode != 0:
                    _kill_postmaster(pid_file)
        finally:
            shutil.rmtree(self.base_dir, ignore_errors=True)
            self.base_dir = None
            self.port = None
            self._url = None

    def _admin_url(self) -> URL:
        return self._sqlalchemy_url().set(database="postgres")

    def _initdb(self) -> None:
        # Pin the locale so ORDER BY and upper()/lower() behave the same on every machine;
        # C.UTF-8 is missing on some systems (macOS), where plain C will do.
        for locale in ("C.UTF-8", "C"):
            result = self._pg(
                "initdb",
                *("-D", str(self.data_dir), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8"),
                *(f"--locale={locale}", "--no-sync"),
                check=locale == "C",
            )
            if result.returncode == 0:
                return
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def _start_server(self) -> None:
        for attempt in range(1, _START_ATTEMPTS + 1):
            port = _free_port()
            options = [
                *("-p", str(port), "-k", str(self.data_dir.parent)),
                *("-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"),
                *("-c", "synchronous_commit=off", "-c", "full_page_writes=off"),
            ]
            result = self._pg(
                "pg_ctl",
                *("-D", str(self.data_dir), "-l", str(self.log_file), "-o", shlex.join(options)),
                *("-w", "-t", str(self.timeout), "start"),
                check=False,
            )
            if result.returncode == 0:
                self.port = port
                self._url = URL.create(
                    "postgresql+psycopg",
                    username=SUPERUSER,
                    host="127.0.0.1",
                    port=port,
                    database=DATABASE,
                )
                return
            log = self._read_log()
            if attempt == _START_ATTEMPTS or "already in use" not in log:
                raise PostgresStartError(_describe_failure(result, log))

    def _pg(self, program: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a PostgreSQL binary (as the server user when we are root)."""
        command = [*self._run_as, str(self.bin_dir / program), *args]
        result = subprocess.run(
            command,
            cwd=self.base_dir,  # the server user may not be allowed into our working directory
            capture_output=True,
            text=True,
            timeout=self.timeout + 30,
            check=False,
        )
        if check and result.returncode != 0:
            raise PostgresStartError(_describe_failure(result, self._read_log()))
        return result

    def _read_log(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")
        except (OSError, RuntimeError):
            return ""


@contextlib.contextmanager
def postgres_url_for_tests() -> Iterator[PostgresServer | None]:
    """The PostgreSQL server for a test session, for a session-scoped fixture.

    ``EVERGREEN_TEST_DATABASE_URL`` if set, else a :class:`TemporaryPostgres` for the duration.
    Without server binaries: ``None`` (the caller skips with :data:`SKIP_REASON`) or, when the
    ``CI`` environment variable is true, :class:`PostgresUnavailableError`. A server that fails
    to start is always an error, never a skip.
    """
    if url := os.environ.get(ENV_URL):
        yield ExternalPostgres(url)
        return
    if find_pg_bin() is None:
        if os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}:
            raise PostgresUnavailableError(SKIP_REASON)
        yield None
        return
    with TemporaryPostgres() as server:
        yield server


def _version_key(bin_dir: Path) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in bin_dir.parent.name.split("."))
    except ValueError:
        return (-1,)


def _has_server_binaries(bin_dir: Path) -> bool:
    return all(os.access(bin_dir / name, os.X_OK) for name in ("initdb", "pg_ctl"))


def _check_identifier(name: str) -> None:
    if not name or len(name.encode()) > _MAX_IDENTIFIER_BYTES:
        raise ValueError(f"database name must be 1-{_MAX_IDENTIFIER_BYTES} bytes: {name!r}")


def _libpq_conninfo(url: URL) -> str:
    """``postgresql+psycopg://…`` (SQLAlchemy) to ``postgresql://…`` (libpq)."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _server_user() -> pwd.struct_passwd:
    """The user to run PostgreSQL as when we are root: ``postgres``, created if need be."""
    for name in (SERVER_USER, FALLBACK_SERVER_USER):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    useradd = [
        *("useradd", "--system", "--no-create-home", "--user-group"),
        *("--shell", "/usr/sbin/nologin", FALLBACK_SERVER_USER),
    ]
    result = subprocess.run(useradd, capture_output=True, text=True, check=False)
    try:
        return pwd.getpwnam(FALLBACK_SERVER_USER)  # a parallel worker may have won the race
    except KeyError:
        raise PostgresUnavailableError(
            f"running as root, there is no {SERVER_USER!r} user to run PostgreSQL as, and "
            f"{shlex.join(useradd)} failed: {result.stderr.strip()}"
        ) from None


def _run_as_prefix(user: pwd.struct_passwd) -> list[str]:
    if runuser := shutil.which("runuser"):
        return [runuser, "-u", user.pw_name, "--"]
    if setpriv := shutil.which("setpriv"):
        return [
            *(setpriv, f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}"),
            *("--init-groups", "--"),
        ]
    raise PostgresUnavailableError(
        f"running as root and neither runuser nor setpriv is available to run PostgreSQL as "
        f"{user.pw_name!r}; run the tests as an ordinary user or set {ENV_URL}"
    )


def _temp_parent(owner: pwd.struct_passwd | None) -> str | None:
    """Where to make the server's directory: the usual temp dir, unless ``owner`` can't reach it."""
    if owner is None:
        return None
    parent = Path(tempfile.gettempdir()).resolve()
    reachable = all(os.stat(directory).st_mode & 0o001 for directory in (parent, *parent.parents))
    return str(parent) if reachable else "/tmp"


def _kill_postmaster(pid_file: Path) -> None:
    """Last resort when ``pg_ctl stop`` fails: SIGQUIT is PostgreSQL's immediate shutdown."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        os.kill(int(pid_file.read_text().splitlines()[0]), signal.SIGQUIT)


def _describe_failure(result: subprocess.CompletedProcess[str], log: str) -> str:
    lines = [f"{shlex.join(result.args)} exited with {result.returncode}"]
    lines += [text.rstrip() for text in (result.stdout, result.stderr) if text.strip()]
    if log.strip():
        lines += ["server log (last lines):", *log.rstrip().splitlines()[-20:]]
    return "\n".join(lines)
