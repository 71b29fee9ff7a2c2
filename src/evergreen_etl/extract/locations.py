"""Where a source is: an http(s):// URL, a ``file://`` URL or a local path; and URLs fit to show.

Credentials in a URL are never shown (``redact_url``) nor left in the URL a request is sent
to, where HTTP libraries log them (``split_credentials``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit
from urllib.request import url2pathname

import httpx

from evergreen_etl.errors import ConfigurationError

__all__ = [
    "HttpLocation",
    "LocalLocation",
    "Location",
    "redact_url",
    "resolve_location",
    "split_credentials",
]


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
                f"source URL {text} names a remote host; file:// URLs must be local"
            )
        return LocalLocation(Path(url2pathname(parts.path)))
    # A one-letter "scheme" is a Windows drive letter (C:\data\users.json), not a scheme.
    if not scheme or (len(scheme) == 1 and os.name == "nt"):
        return LocalLocation(Path(text).expanduser().resolve())
    raise ConfigurationError(
        f"unsupported scheme {scheme!r} in source URL {redact_url(text)}; "
        "use http://, https://, file:// or a local path"
    )


def redact_url(url: str) -> str:
    """``url`` with any password in its user-info replaced, for messages and the manifest."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


def split_credentials(url: str) -> tuple[str, httpx.BasicAuth | None]:
    """Move user-info out of the URL into Basic auth.

    httpx logs request URLs at INFO; credentials kept in the URL would land in the logs.
    """
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, None
    host = parts.netloc.rpartition("@")[2]
    auth = httpx.BasicAuth(unquote(parts.username or ""), unquote(parts.password or ""))
    return urlunsplit(parts._replace(netloc=host)), auth
