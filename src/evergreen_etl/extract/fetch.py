"""Fetch one source into ``DATA_DIR/raw``: over HTTP(S), from a ``file://`` URL or a local path.

Every write is atomic (a temporary file in the same directory, fsynced, then ``os.replace``),
so a failed or interrupted fetch leaves the previous raw file as it was and no partial file.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote, urlsplit, urlunsplit
from urllib.request import url2pathname

import httpx
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from evergreen_etl.errors import ConfigurationError, SourceError
from evergreen_etl.file_modes import PRIVATE_FILE
from evergreen_etl.models import ManifestEntry, SourceName
from evergreen_etl.redact import redact_url as redact_url  # re-exported: it lived here

logger = logging.getLogger("evergreen_etl.extract")

CHUNK_SIZE = 1024 * 1024
DEFAULT_MAX_BYTES = 5 * 1024**3
BACKOFF_BASE_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 30.0
RETRY_AFTER_CAP_SECONDS = 60.0
USER_AGENT = "evergreen-etl"
MAX_REDIRECTS = 10

# Module-level so tests can replace it with a recorder and run without waiting.
sleep: Callable[[float], None] = time.sleep


def backoff_delay(attempt: int) -> float:
    """Seconds to wait before retry number ``attempt`` (1-based): exponential, capped, jittered."""
    exponent = min(max(attempt - 1, 0), 16)
    delay = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2.0**exponent)
    # Jitter spreads out clients that failed together, so they do not retry in lockstep.
    return delay * random.uniform(0.5, 1.0)


@dataclass(frozen=True)
class HttpLocation:
    """A source served over HTTP(S)."""

    url: str


@dataclass(frozen=True)
class LocalLocation:
    """A source on the local file system (a plain path or a ``file://`` URL)."""

    path: Path


Location = HttpLocation | LocalLocation


def resolve_location(url: str) -> Location:
    """Classify ``url`` as HTTP(S) or local; any other scheme is a configuration error."""
    text = url.strip()
    if not text:
        raise ConfigurationError(
            "a source URL is empty; give an http(s):// or file:// URL or a path"
        )
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        if not parts.hostname:
            raise ConfigurationError(f"source URL {redact_url(text)} has no host")
        return HttpLocation(text)
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise ConfigurationError(
                f"source URL {redact_url(text)} names a remote host; file:// URLs must be local"
            )
        return LocalLocation(Path(url2pathname(parts.path)))
    # A one-letter "scheme" is a Windows drive letter (C:\data\users.json), not a scheme.
    if not scheme or (len(scheme) == 1 and os.name == "nt"):
        return LocalLocation(Path(text).expanduser().resolve())
    raise ConfigurationError(
        f"unsupported scheme {scheme!r} in source URL {redact_url(text)}; "
        "use http://, https://, file:// or a local path"
    )


def fetch_source(
    source: SourceName,
    url: str,
    dest: Path,
    *,
    previous: ManifestEntry | None = None,
    timeout: float = 30.0,
    retries: int = 4,
    progress: bool = False,
    max_bytes: int = DEFAULT_MAX_BYTES,
    staging: Path | None = None,
) -> ManifestEntry:
    """Fetch ``source`` from ``url`` into ``dest`` and describe the result.

    ``previous`` is the source's entry in the last manifest: when it shows the source is
    unchanged (HTTP 304 to a conditional GET, or a local file with the same size and mtime)
    and ``dest`` still holds the recorded bytes, the file is reused (``downloaded=False``).
    With ``staging``, new bytes are written there instead of ``dest`` (the entry still names
    ``dest``), so the caller can check them and move them into place with other files.

    Redirects are followed to any host (S3 and CDNs redirect across hosts), up to
    ``MAX_REDIRECTS``; credentials given in the URL are not sent to another host, and a
    redirect from https to plain http is refused.

    Raises:
        ConfigurationError: the URL has an unsupported scheme.
        SourceError: the source is missing, refused, larger than ``max_bytes``, redirected
            from https to http, or kept failing (connection errors, timeouts, 5xx, 429,
            truncated bodies) after ``retries`` retries.
    """
    location = resolve_location(url)
    target = staging or dest
    if isinstance(location, HttpLocation):
        entry = _fetch_http(
            source,
            location.url,
            dest,
            target,
            previous=previous,
            timeout=timeout,
            retries=retries,
            progress=progress,
            max_bytes=max_bytes,
        )
    else:
        entry = _copy_local(
            source,
            location.path,
            dest,
            target,
            previous=previous,
            progress=progress,
            max_bytes=max_bytes,
        )
    logger.info(
        "%s: %s bytes, sha256 %s, %s",
        source,
        f"{entry.size:,}",
        entry.sha256[:12],
        "downloaded" if entry.downloaded else "unchanged, reused",
    )
    return entry


# --- HTTP -----------------------------------------------------------------------------------


class _TransientError(Exception):
    """A failure worth retrying; ``retry_after`` is the server's requested wait, if any."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


def _fetch_http(
    source: SourceName,
    url: str,
    dest: Path,
    target: Path,
    *,
    previous: ManifestEntry | None,
    timeout: float,
    retries: int,
    progress: bool,
    max_bytes: int,
) -> ManifestEntry:
    shown_url = redact_url(url)
    reusable = (
        previous is not None
        and previous.source == source
        and previous.url == shown_url
        and (previous.etag is not None or previous.last_modified is not None)
        and _raw_file_matches(dest, previous)
    )
    conditional = previous if reusable else None
    attempts = retries + 1
    request_url, auth = _split_credentials(url)
    with httpx.Client(
        timeout=httpx.Timeout(timeout),
        follow_redirects=True,
        max_redirects=MAX_REDIRECTS,
        headers={"User-Agent": USER_AGENT},
        auth=auth,
        event_hooks={"request": [_refuse_downgrade(source, request_url, shown_url)]},
    ) as client:
        for attempt in range(1, attempts + 1):
            try:
                return _http_attempt(
                    client,
                    source,
                    request_url,
                    dest,
                    target,
                    shown_url=shown_url,
                    conditional=conditional,
                    progress=progress,
                    max_bytes=max_bytes,
                )
            except _TransientError as exc:
                failure: _TransientError = exc
            except httpx.UnsupportedProtocol as exc:
                raise ConfigurationError(f"{source}: cannot fetch {shown_url}: {exc}") from exc
            except httpx.TransportError as exc:
                # Connection refused or reset, DNS failure, connect/read timeout, or the peer
                # closing before the whole body arrived: all may pass on a second try.
                failure = _TransientError(_describe_transport_error(exc))
            except httpx.HTTPError as exc:
                raise SourceError(f"{source}: cannot fetch {shown_url}: {exc}") from exc
            if attempt == attempts:
                raise SourceError(
                    f"{source}: could not fetch {shown_url} after {attempts} "
                    f"attempt{'s' if attempts > 1 else ''}: {failure}"
                ) from failure
            delay = (
                min(failure.retry_after, RETRY_AFTER_CAP_SECONDS)
                if failure.retry_after is not None
                else backoff_delay(attempt)
            )
            logger.warning(
                "%s: %s (attempt %d of %d); retrying in %.1fs",
                source,
                failure,
                attempt,
                attempts,
                delay,
            )
            sleep(delay)
    raise AssertionError("unreachable: the retry loop returns or raises")  # pragma: no cover


def _http_attempt(
    client: httpx.Client,
    source: SourceName,
    url: str,
    dest: Path,
    target: Path,
    *,
    shown_url: str,
    conditional: ManifestEntry | None,
    progress: bool,
    max_bytes: int,
) -> ManifestEntry:
    headers: dict[str, str] = {}
    if conditional is not None:
        if conditional.etag is not None:
            headers["If-None-Match"] = conditional.etag
        if conditional.last_modified is not None:
            headers["If-Modified-Since"] = format_datetime(
                conditional.last_modified.astimezone(UTC), usegmt=True
            )
    with client.stream("GET", url, headers=headers) as response:
        status = response.status_code
        if status == 304 and conditional is not None:
            return conditional.model_copy(update={"fetched_at": _now(), "downloaded": False})
        if status == 429 or status >= 500:
            raise _TransientError(
                f"HTTP {status} {response.reason_phrase}".rstrip(),
                retry_after=_retry_after_seconds(response.headers.get("Retry-After")),
            )
        if status != 200:
            answered = f"HTTP {status} {response.reason_phrase}".rstrip()
            final_url = str(response.url)
            via = "" if final_url == url else f" (redirected to {redact_url(final_url)})"
            raise SourceError(f"{source}: {shown_url}{via} answered {answered}")
        announced = _content_length(response.headers.get("Content-Length"))
        if announced is not None and announced > max_bytes:
            raise SourceError(
                f"{source}: {shown_url} announces {announced:,} bytes, "
                f"over the {max_bytes:,} byte limit"
            )
        with _progress_reporter(source, announced, enabled=progress) as advance:
            size, sha256 = _write_atomically(
                response.iter_bytes(CHUNK_SIZE),
                target,
                limit=max_bytes,
                on_chunk=advance,
                # Checked before os.replace, so a short or long body never replaces the file.
                verify=lambda: _check_length(response, announced),
                too_large=f"{source}: {shown_url} is larger than the {max_bytes:,} byte limit",
            )
        return ManifestEntry(
            source=source,
            url=shown_url,
            path=dest.name,
            etag=response.headers.get("ETag"),
            last_modified=_http_date(response.headers.get("Last-Modified")),
            size=size,
            sha256=sha256,
            fetched_at=_now(),
            downloaded=True,
        )


def _refuse_downgrade(
    source: SourceName, url: str, shown_url: str
) -> Callable[[httpx.Request], None]:
    """A request hook that stops a redirect chain from leaving https for plain http.

    httpx follows such redirects; for health data, a plain-http hop would expose the body
    (and any token in the URL) on the wire.
    """
    secure = urlsplit(url).scheme.lower() == "https"

    def check(request: httpx.Request) -> None:
        if secure and request.url.scheme != "https":
            raise SourceError(
                f"{source}: {shown_url} redirected to {redact_url(str(request.url))}; "
                "refusing to leave https for plain http"
            )

    return check


def _split_credentials(url: str) -> tuple[str, httpx.BasicAuth | None]:
    """Move user-info out of the URL into Basic auth.

    httpx logs request URLs at INFO; credentials kept in the URL would land in the logs.
    """
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, None
    host = parts.netloc.rpartition("@")[2]
    auth = httpx.BasicAuth(unquote(parts.username or ""), unquote(parts.password or ""))
    return urlunsplit(parts._replace(netloc=host)), auth


def _check_length(response: httpx.Response, announced: int | None) -> None:
    # Content-Length counts the bytes on the wire, before any Content-Encoding is undone.
    received = response.num_bytes_downloaded
    if announced is not None and received != announced:
        raise _TransientError(
            f"body of {received:,} bytes, but Content-Length announced {announced:,}"
        )


def _describe_transport_error(exc: httpx.TransportError) -> str:
    detail = str(exc).splitlines()[0] if str(exc) else ""
    name = type(exc).__name__
    return f"{name}: {detail}" if detail else name


def _content_length(value: str | None) -> int | None:
    if value is None or not value.strip().isdigit():
        return None
    return int(value.strip())


def _retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds: either delta-seconds or an HTTP date."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    when = _http_date(text)
    if when is None:
        return None
    return max(0.0, (when - _now()).total_seconds())


def _http_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        # RFC 9110 dates are GMT; a date without a zone is read the same way.
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC)


# --- Local files ----------------------------------------------------------------------------


def _copy_local(
    source: SourceName,
    path: Path,
    dest: Path,
    target: Path,
    *,
    previous: ManifestEntry | None,
    progress: bool,
    max_bytes: int,
) -> ManifestEntry:
    recorded_url = str(path)
    try:
        handle = path.open("rb")
    except FileNotFoundError as exc:
        raise SourceError(f"{source}: source file {path} does not exist") from exc
    except IsADirectoryError as exc:
        raise SourceError(f"{source}: source {path} is a directory, not a file") from exc
    except OSError as exc:
        raise SourceError(f"{source}: cannot read {path}: {exc.strerror or exc}") from exc
    with handle:
        stat = os.fstat(handle.fileno())
        mtime = _mtime_utc(stat.st_mtime_ns)
        if (
            previous is not None
            and previous.source == source
            and previous.url == recorded_url
            and previous.size == stat.st_size
            and previous.last_modified == mtime
            and _raw_file_matches(dest, previous)
        ):
            return previous.model_copy(update={"fetched_at": _now(), "downloaded": False})
        if stat.st_size > max_bytes:
            raise SourceError(
                f"{source}: {path} holds {stat.st_size:,} bytes, over the {max_bytes:,} byte limit"
            )
        try:
            with _progress_reporter(source, stat.st_size, enabled=progress) as advance:
                size, sha256 = _write_atomically(
                    iter(lambda: handle.read(CHUNK_SIZE), b""),
                    target,
                    limit=max_bytes,
                    on_chunk=advance,
                    too_large=f"{source}: {path} is larger than the {max_bytes:,} byte limit",
                )
        except OSError as exc:
            raise SourceError(f"{source}: cannot copy {path} to {dest}: {exc}") from exc
    return ManifestEntry(
        source=source,
        url=recorded_url,
        path=dest.name,
        etag=None,
        last_modified=mtime,
        size=size,
        sha256=sha256,
        fetched_at=_now(),
        downloaded=True,
    )


def _mtime_utc(mtime_ns: int) -> datetime:
    # From integer nanoseconds, so the same mtime always gives the same datetime.
    seconds, nanoseconds = divmod(mtime_ns, 1_000_000_000)
    return datetime.fromtimestamp(seconds, tz=UTC) + timedelta(microseconds=nanoseconds // 1000)


# --- Shared helpers -------------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC)


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of the file at ``path``, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK_SIZE), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _raw_file_matches(dest: Path, previous: ManifestEntry) -> bool:
    """True when ``dest`` still holds exactly the bytes the manifest recorded."""
    try:
        if dest.stat().st_size != previous.size:
            return False
        return file_sha256(dest) == previous.sha256
    except OSError:
        return False


@contextmanager
def atomic_output(dest: Path) -> Iterator[BinaryIO]:
    """Open a temporary file next to ``dest``; on success fsync it and move it onto ``dest``.

    On any exception the temporary file is removed and ``dest`` is left untouched.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    temp = Path(temp_name)
    try:
        os.fchmod(fd, PRIVATE_FILE)  # mkstemp's 0600, unless the umask took more
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, dest)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    fsync_directory(dest.parent)


def fsync_directory(directory: Path) -> None:
    """Make renames in ``directory`` durable (POSIX; a no-op on Windows)."""
    if os.name == "nt":  # pragma: no cover
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomically(
    chunks: Iterable[bytes],
    dest: Path,
    *,
    limit: int,
    on_chunk: Callable[[int], None],
    too_large: str,
    verify: Callable[[], None] | None = None,
) -> tuple[int, str]:
    """Stream ``chunks`` into ``dest`` atomically; return the size and hex SHA-256."""
    digest = hashlib.sha256()
    size = 0
    with atomic_output(dest) as handle:
        for chunk in chunks:
            size += len(chunk)
            if size > limit:
                raise SourceError(too_large)
            digest.update(chunk)
            handle.write(chunk)
            on_chunk(len(chunk))
        if verify is not None:
            verify()
    return size, digest.hexdigest()


@contextmanager
def _progress_reporter(
    source: SourceName, total: int | None, *, enabled: bool
) -> Iterator[Callable[[int], None]]:
    """Yield a callback that advances a progress bar on stderr, or does nothing.

    The bar is shown only when asked for and stderr is a terminal; stdout is never touched,
    because it carries the commands' machine-readable output.
    """
    console = Console(stderr=True) if enabled else None
    if console is None or not console.is_terminal:
        yield lambda _count: None
        return
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(source, total=total)
        yield lambda count: bar.advance(task, count)
