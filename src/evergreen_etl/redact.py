"""Credentials kept out of what the program prints and records: messages, logs, the manifest.

A source URL may carry a secret in its user-info (``https://user:password@host``) or in its
query string: a presigned S3 URL (``X-Amz-Signature``, ``X-Amz-Credential``,
``X-Amz-Security-Token``), an Azure SAS (``sig``), a ``token`` or ``key`` parameter. Wherever
a URL is shown, the password and the value of every query parameter are replaced by ``***``,
except the parameters in ``ALLOWED_QUERY_PARAMETERS``, which say nothing secret.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

__all__ = ["ALLOWED_QUERY_PARAMETERS", "REDACTED", "redact_text", "redact_url"]

REDACTED = "***"
# Lower-cased. Harmless and useful when something fails: the format asked for, when a
# presigned URL was signed and for how long (an expired URL answers 403), and how a database
# connection is made (libpq's and SQLite's connection options, never a password).
ALLOWED_QUERY_PARAMETERS = frozenset(
    {
        "format",
        "version",
        "download",
        "x-amz-algorithm",
        "x-amz-date",
        "x-amz-expires",
        "x-amz-signedheaders",
        "sslmode",
        "connect_timeout",
        "application_name",
        "target_session_attrs",
        "uri",
        "mode",
    }
)
# A URL inside free text: a scheme, "://", then everything up to a space or a quote.
_URL_IN_TEXT = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>`]+")


def redact_url(url: str) -> str:
    """``url`` with its password and every query value not on the allow-list replaced.

    The rest of the URL is kept exactly as written (``sqlite:////abs/path`` stays so).
    """
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:  # not parseable as a URL (a bad port, say): show nothing of it
        return REDACTED
    shown = url
    if password is not None:
        userinfo = parts.netloc.rpartition("@")[0]
        shown = shown.replace(f"{userinfo}@", f"{parts.username or ''}:{REDACTED}@", 1)
    if parts.query:
        query = "&".join(map(_redact_parameter, parts.query.split("&")))
        shown = shown.replace(f"?{parts.query}", f"?{query}", 1)
    return shown


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
