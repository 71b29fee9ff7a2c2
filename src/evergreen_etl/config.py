"""Where settings come from, and how to show them without their secrets."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit

REDACTED = "***"
_SECRET_WORDS = ("password", "passwd", "secret", "token", "key")


def redact_url(url: str) -> str:
    """``url`` with its password (and any secret-looking query value) replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password:
        userinfo = f"{parts.username or ''}:{parts.password}@"
        url = url.replace(userinfo, f"{parts.username or ''}:{REDACTED}@", 1)
    if parts.query:
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        query = urlencode(
            [
                (name, REDACTED if any(w in name.lower() for w in _SECRET_WORDS) else value)
                for name, value in pairs
            ],
            safe="*",
        )
        url = url.replace(f"?{parts.query}", f"?{query}", 1)
    return url
