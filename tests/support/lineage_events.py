"""Validate OpenLineage events against the spec's JSON schemas (vendored in openlineage_spec/),
and a real HTTP receiver on 127.0.0.1 that records the events posted to it.
"""

from __future__ import annotations

import json
import threading
from datetime import datetime
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

SPEC = Path(__file__).parent / "openlineage_spec"
CORE_ID = "https://openlineage.io/spec/2-0-2/OpenLineage.json"


@cache
def _schemas() -> dict[str, dict[str, Any]]:
    """Every vendored schema by file name."""
    files = [SPEC / "OpenLineage.json", *sorted((SPEC / "facets").glob("*.json"))]
    return {path.name: json.loads(path.read_text(encoding="utf-8")) for path in files}


@cache
def _registry() -> Registry:
    resources = [(s["$id"], Resource.from_contents(s)) for s in _schemas().values()]
    return Registry().with_resources(resources)


def _validate(instance: Any, schema_id: str, fragment: str) -> None:
    validator = Draft202012Validator({"$ref": f"{schema_id}#{fragment}"}, registry=_registry())
    validator.validate(instance)


def _facets(event: dict[str, Any]) -> list[dict[str, Any]]:
    found = list((event["run"].get("facets") or {}).values())
    found += list((event["job"].get("facets") or {}).values())
    for dataset in [*event.get("inputs", []), *event.get("outputs", [])]:
        for key in ("facets", "inputFacets", "outputFacets"):
            found += list((dataset.get(key) or {}).values())
    return found


def validate_event(event: dict[str, Any]) -> None:
    """Raise unless ``event`` is a valid RunEvent and each facet is valid against its schema."""
    _validate(event, CORE_ID, "/$defs/RunEvent")
    assert event["eventTime"].endswith("Z")
    datetime.fromisoformat(event["eventTime"])
    for facet in _facets(event):
        url, _, fragment = facet["_schemaURL"].partition("#")
        name = url.rsplit("/", 1)[1]
        assert name in _schemas(), f"no vendored schema for facet {name}"
        _validate(facet, _schemas()[name]["$id"], fragment)


class LineageReceiver:
    """An HTTP server on 127.0.0.1 that accepts OpenLineage POSTs and keeps their bodies."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.paths: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                receiver.paths.append(self.path)
                receiver.events.append(json.loads(body))
                self.send_response(201)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                """Quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """The receiver's base URL."""
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
