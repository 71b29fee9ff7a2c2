"""Fetch a source over HTTP(S) into ``DATA_DIR/raw``: conditional GETs, redirects, retries.

Transient failures (connection errors, timeouts, 5xx, 429, truncated bodies) are retried
with backoff (``retry.py``); a 304 to a conditional GET reuses the raw file extract recorded.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from evergreen_etl.datadir.files import CHUNK_SIZE
from evergreen_etl.datadir.manifest import holds_recorded_bytes
from evergreen_etl.errors import ConfigurationError, SourceError
from evergreen_etl.extract.locations import redact_url, split_credentials
from evergreen_etl.extract.retry import TransientError, with_retries
from evergreen_etl.extract.transfer import now, progress_reporter, write_atomically
from evergreen_etl.models import ManifestEntry, SourceName

__all__ = ["MAX_REDIRECTS", "USER_AGENT", "fetch_http"]

USER_AGENT = "evergreen-etl"
MAX_REDIRECTS = 10


def fetch_http(
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
    """Download ``url`` into ``target`` (the entry names ``dest``), retrying transient failures.

    When ``previous`` recorded validators for the same URL and ``dest`` still holds its bytes,
    the request is conditional and a 304 reuses ``dest``.
    """
    shown_url = redact_url(url)
    reusable = (
        previous is not None
        and previous.source == source
        and previous.url == shown_url
        and (previous.etag is not None or previous.last_modified is not None)
        and holds_recorded_bytes(dest, previous)
    )
    conditional = previous if reusable else None
    attempts = retries + 1
    request_url, auth = split_credentials(url)
    with httpx.Client(
        timeout=httpx.Timeout(timeout),
        follow_redirects=True,
        max_redirects=MAX_REDIRECTS,
        headers={"User-Agent": USER_AGENT},
        auth=auth,
        event_hooks={"request": [_refuse_downgrade(source, request_url, shown_url)]},
    ) as client:

        def attempt() -> ManifestEntry:
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
            except httpx.UnsupportedProtocol as exc:
                raise ConfigurationError(f"{source}: cannot fetch {shown_url}: {exc}") from exc
            except httpx.TransportError as exc:
                # Connection refused or reset, DNS failure, connect/read timeout, or the peer
                # closing before the whole body arrived: all may pass on a second try.
                raise TransientError(_describe_transport_error(exc)) from exc
            except httpx.HTTPError as exc:
                raise SourceError(f"{source}: cannot fetch {shown_url}: {exc}") from exc

        def give_up(failure: TransientError) -> SourceError:
            return SourceError(
                f"{source}: could not fetch {shown_url} after {attempts} "
                f"attempt{'s' if attempts > 1 else ''}: {failure}"
            )

        return with_retries(attempt, attempts=attempts, label=source, give_up=give_up)


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
            return conditional.model_copy(update={"fetched_at": now(), "downloaded": False})
        if status == 429 or status >= 500:
            raise TransientError(
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
        with progress_reporter(source, announced, enabled=progress) as advance:
            size, sha256 = write_atomically(
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
            fetched_at=now(),
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


def _check_length(response: httpx.Response, announced: int | None) -> None:
    # Content-Length counts the bytes on the wire, before any Content-Encoding is undone.
    received = response.num_bytes_downloaded
    if announced is not None and received != announced:
        raise TransientError(
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
    return max(0.0, (when - now()).total_seconds())


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
