"""Credentials kept out of what the program prints and records: messages, logs, the manifest.

A source URL may carry a secret in its user-info (``https://user:password@host``) or in its
query string: a presigned S3 URL (``X-Amz-Signature``, ``X-Amz-Credential``,
``X-Amz-Security-Token``), an Azure SAS (``sig``), a ``token`` or ``key`` parameter. Wherever
a URL is shown, the password and the value of every query parameter are replaced by ``***``,
except the parameters in ``ALLOWED_QUERY_PARAMETERS``, which say nothing secret.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit, urlunsplit

__all__ = ["ALLOWED_QUERY_PARAMETERS", "REDACTED", "redact_text", "redact_url"]

REDACTED = "***"
# Lower-cased. Harmless and useful when a download fails: the format asked for, and when a
# presigned URL was signed and for how long (an expired URL answers 403).
ALLOWED_QUERY_PARAMETERS = frozenset(
    {
        "format",
        "version",
        "download",
        "x-amz-algorithm",
        "x-amz-date",
        "x-amz-expires",
        "x-amz-signedheaders",
    }
)
# A URL inside free text: a scheme, "://", then everything up to a space or a quote.
_URL_IN_TEXT = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>`]+")


def redact_url(url: str) -> str:
    """``url`` with its password and every query value not on the allow-list replaced."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:  # not parseable as a URL (a bad port, say): show nothing of it
        return REDACTED
    if password is not None:
        host = parts.netloc.rpartition("@")[2]
        parts = parts._replace(netloc=f"{parts.username or ''}:{REDACTED}@{host}")
    if parts.query:
        parts = parts._replace(query="&".join(map(_redact_parameter, parts.query.split("&"))))
    return urlunsplit(parts)


def _redact_parameter(parameter: str) -> str:
    name, equals, _value = parameter.partition("=")
    if unquote(name).lower() in ALLOWED_QUERY_PARAMETERS:
        return parameter
    if not equals:  # a bare "?abc": the text itself may be the secret
        return REDACTED if parameter else parameter
    return f"{name}={REDACTED}"


def redact_text(text: str) -> str:
    """``text`` with every URL in it redacted as ``redact_url`` does."""
    if "://" not in text:
        return text
    return _URL_IN_TEXT.sub(lambda match: redact_url(match.group(0)), text)
