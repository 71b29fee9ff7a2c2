"""An HTTP server on 127.0.0.1 that misbehaves on cue: stalls, lies about sizes, never ends.

``support.http_server.SourceServer`` plays a well-behaved S3; this one plays a bad network.
Each path serves fixed bytes; ``script`` queues faults that are used once each, in order,
before the path is served normally again.
"""

from __future__ import annotations

import threading
from collections import defaultdict, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Literal, Self, cast
from urllib.parse import urlsplit

__all__ = ["Fault", "FaultServer"]

FaultKind = Literal[
    "status", "stall_before_headers", "stall_mid_body", "drop", "announce", "endless"
]


@dataclass(frozen=True)
class Fault:
    """One misbehaviour.

    * ``status``: answer ``status`` with ``headers`` and a short body.
    * ``stall_before_headers``: accept the request, then say nothing for ``seconds``.
    * ``stall_mid_body``: send the headers and the first ``after`` bytes, then nothing.
    * ``drop``: send the headers and the first ``after`` bytes, then close the connection.
    * ``announce``: send ``Content-Length: length`` and the real body, then close.
    * ``endless``: a chunked body of ``x`` that never ends (until the client hangs up).
    """

    kind: FaultKind
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    seconds: float = 5.0
    after: int = 10
    length: int = 0


class FaultServer:
    """A threaded HTTP/1.1 server serving ``files`` (path → bytes) with scripted faults."""

    def __init__(self, files: Mapping[str, bytes]) -> None:
        self.files = {"/" + name.lstrip("/"): body for name, body in files.items()}
        self._scripts: defaultdict[str, deque[Fault]] = defaultdict(deque)
        self._lock = threading.Lock()
        self.paths: list[str] = []
        self.stopping = threading.Event()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Self:
        httpd = _Server(("127.0.0.1", 0), _Handler)
        httpd.owner = self
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stopping.set()  # wakes every stalled handler
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def url(self, name: str) -> str:
        """The URL of ``/name``."""
        assert self._httpd is not None
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/{name.lstrip('/')}"

    def script(self, name: str, *faults: Fault) -> None:
        """Queue ``faults`` for ``/name``, each used once, in order."""
        with self._lock:
            self._scripts["/" + name.lstrip("/")].extend(faults)

    def requests_for(self, name: str) -> int:
        """How many requests ``/name`` received."""
        with self._lock:
            return self.paths.count("/" + name.lstrip("/"))

    def _next(self, path: str) -> Fault | None:
        with self._lock:
            self.paths.append(path)
            queue = self._scripts.get(path)
            return queue.popleft() if queue else None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: FaultServer

    def handle_error(self, request: object, client_address: object) -> None:
        """A client hanging up on a stalled or endless answer is the point of the exercise."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        """Stay quiet."""

    def do_GET(self) -> None:
        owner = cast(_Server, self.server).owner
        path = urlsplit(self.path).path
        fault = owner._next(path)
        body = owner.files.get(path)
        if body is None:
            self._plain(404, b"not found\n")
            return
        if fault is None:
            self._plain(200, body)
            return
        if fault.kind == "status":
            self._plain(fault.status, b"scripted failure\n", fault.headers)
            return
        if fault.kind == "stall_before_headers":
            owner.stopping.wait(fault.seconds)
            self.close_connection = True
            return
        if fault.kind == "endless":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            chunk = b"x" * 65536
            while not owner.stopping.is_set():
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            return
        self.send_response(200)
        length = fault.length if fault.kind == "announce" else len(body)
        self.send_header("Content-Length", str(length))
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        if fault.kind == "announce":
            self.wfile.write(body)
            return
        self.wfile.write(body[: fault.after])
        self.wfile.flush()
        if fault.kind == "stall_mid_body":
            owner.stopping.wait(fault.seconds)

    def _plain(self, status: int, body: bytes, headers: Mapping[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)
