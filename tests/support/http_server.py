"""A real HTTP server on 127.0.0.1 for tests: serves files from a directory, like S3 would.

    with SourceServer(tmp_path / "www") as server:
        extract(settings, users_url=server.url("users.json"), ...)
        assert server.requests_for("users.json")[-1].is_conditional

Each file is served with ``ETag`` (from its SHA-256), ``Last-Modified`` (its mtime) and
``Content-Length``, and a conditional GET (``If-None-Match`` / ``If-Modified-Since``) for an
unchanged file gets ``304 Not Modified``. Every request's method, path and headers are
recorded. ``script`` queues one-off answers for a path (an error status, a redirect, a body
cut short) that are served before the file, so tests can drive retries over a real socket.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import threading
from collections import defaultdict, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import formatdate, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Self, cast
from urllib.parse import unquote, urlsplit

__all__ = ["RecordedRequest", "ScriptedResponse", "SourceServer"]


@dataclass(frozen=True)
class RecordedRequest:
    """One request the server received; header names are lower-cased."""

    method: str
    path: str
    headers: Mapping[str, str]

    @property
    def is_conditional(self) -> bool:
        """True when the request carried If-None-Match or If-Modified-Since."""
        return "if-none-match" in self.headers or "if-modified-since" in self.headers


@dataclass(frozen=True)
class ScriptedResponse:
    """A one-off answer for a path, served instead of the file.

    ``body=None`` with status 200 serves the file itself (with its validators); with
    ``truncate_after`` set, only that many bytes of the body are sent before the connection
    is dropped, while ``Content-Length`` still announces the full size.
    """

    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | None = None
    truncate_after: int | None = None


class SourceServer:
    """A threaded HTTP server on an ephemeral port serving the files under ``root``.

    Args:
        root: directory whose files are served (``/name`` → ``root / name``).
        etag: send an ``ETag`` header and honour ``If-None-Match``.
        last_modified: send ``Last-Modified`` and honour ``If-Modified-Since``.
        conditional: answer ``304`` to a matching conditional GET (``False`` always sends
            the full file, like a server that ignores validators).
    """

    def __init__(
        self,
        root: Path,
        *,
        etag: bool = True,
        last_modified: bool = True,
        conditional: bool = True,
    ) -> None:
        self.root = root.resolve()
        self.etag = etag
        self.last_modified = last_modified
        self.conditional = conditional
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._scripts: defaultdict[str, deque[ScriptedResponse]] = defaultdict(deque)
        self._errors: list[BaseException] = []
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> Self:
        """Bind to 127.0.0.1 on a free port and serve in a daemon thread."""
        if self._httpd is not None:
            raise RuntimeError("the server is already running")
        httpd = _Server(("127.0.0.1", 0), _Handler)
        httpd.owner = self
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # --- addresses ----------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The port the server listens on."""
        if self._httpd is None:
            raise RuntimeError("the server is not running")
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>`` with no trailing slash."""
        return f"http://127.0.0.1:{self.port}"

    def url(self, name: str) -> str:
        """The URL that serves ``root / name``."""
        return f"{self.base_url}/{name.lstrip('/')}"

    # --- scripting and inspection -------------------------------------------------------

    def script(self, name: str, *responses: ScriptedResponse) -> None:
        """Queue ``responses`` for ``/name``; each is used once, in order, before the file."""
        with self._lock:
            self._scripts["/" + name.lstrip("/")].extend(responses)

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def requests_for(self, name: str) -> list[RecordedRequest]:
        """The requests received for ``/name``, oldest first."""
        path = "/" + name.lstrip("/")
        return [request for request in self.requests if request.path == path]

    @property
    def errors(self) -> list[BaseException]:
        """Exceptions raised while handling requests (dropped connections excepted)."""
        with self._lock:
            return list(self._errors)

    def clear_requests(self) -> None:
        """Forget the requests recorded so far."""
        with self._lock:
            self._requests.clear()

    # --- used by the handler ------------------------------------------------------------

    def _record(self, request: RecordedRequest) -> ScriptedResponse | None:
        with self._lock:
            self._requests.append(request)
            queue = self._scripts.get(request.path)
            return queue.popleft() if queue else None

    def _record_error(self, error: BaseException) -> None:
        with self._lock:
            self._errors.append(error)

    def _file_for(self, path: str) -> Path | None:
        candidate = (self.root / path.lstrip("/")).resolve()
        if not candidate.is_relative_to(self.root) or not candidate.is_file():
            return None
        return candidate


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: SourceServer

    def handle_error(self, request: object, client_address: object) -> None:
        error = sys.exc_info()[1]
        # A client dropping a kept-alive connection (httpx closing its pool) is routine.
        if isinstance(error, ConnectionResetError | BrokenPipeError | ConnectionAbortedError):
            return
        if error is not None:
            self.owner._record_error(error)
        super().handle_error(request, client_address)  # type: ignore[arg-type]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._respond(send_body=True)

    def do_HEAD(self) -> None:
        self._respond(send_body=False)

    def log_message(self, format: str, *args: object) -> None:
        """Stay quiet: test output is for test failures."""

    def _respond(self, *, send_body: bool) -> None:
        owner = cast(_Server, self.server).owner
        path = unquote(urlsplit(self.path).path)
        headers = {name.lower(): value for name, value in self.headers.items()}
        scripted = owner._record(RecordedRequest(self.command, path, headers))
        file = owner._file_for(path)

        if scripted is not None and (scripted.body is not None or scripted.status != 200):
            self._send_bytes(scripted.status, scripted.body or b"", scripted.headers, send_body)
            return
        if file is None:
            self._send_bytes(404, b"not found\n", {}, send_body)
            return

        stat = file.stat()
        validators: dict[str, str] = {}
        if owner.etag:
            validators["ETag"] = _etag(file)
        if owner.last_modified:
            validators["Last-Modified"] = formatdate(stat.st_mtime, usegmt=True)
        if scripted is None and owner.conditional and _not_modified(headers, validators, stat):
            self.send_response(304)
            for name, value in validators.items():
                self.send_header(name, value)
            self.end_headers()
            return

        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(stat.st_size))
        for name, value in {**validators, **(scripted.headers if scripted else {})}.items():
            self.send_header(name, value)
        truncate_after = scripted.truncate_after if scripted else None
        if truncate_after is not None:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if not send_body:
            return
        with file.open("rb") as handle:
            if truncate_after is None:
                shutil.copyfileobj(handle, self.wfile)
            else:
                self.wfile.write(handle.read(truncate_after))
                self.wfile.flush()

    def _send_bytes(
        self, status: int, body: bytes, headers: Mapping[str, str], send_body: bool
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if send_body:
            self.wfile.write(body)


def _etag(file: Path) -> str:
    digest = hashlib.sha256()
    with file.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(chunk)
    return f'"{digest.hexdigest()[:32]}"'


def _not_modified(
    headers: Mapping[str, str], validators: Mapping[str, str], stat: os.stat_result
) -> bool:
    """RFC 9110 §13.2.2: If-None-Match decides when present, else If-Modified-Since."""
    if_none_match = headers.get("if-none-match")
    if if_none_match is not None:
        current = validators.get("ETag")
        if current is None:
            return False
        tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
        return "*" in tags or current in tags
    if_modified_since = headers.get("if-modified-since")
    if if_modified_since is None or "Last-Modified" not in validators:
        return False
    try:
        since = parsedate_to_datetime(if_modified_since).timestamp()
    except (TypeError, ValueError):
        return False
    # Last-Modified has whole seconds, so compare at that resolution.
    return int(stat.st_mtime) <= since
