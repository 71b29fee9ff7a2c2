"""URL credentials are redacted wherever a URL is shown; harmless parameters stay readable."""

from __future__ import annotations

import pytest

from evergreen_etl.redact import redact_text, redact_url

PRESIGNED = (
    "https://bucket.s3.eu-west-2.amazonaws.com/users.json?X-Amz-Algorithm=AWS4-HMAC-SHA256"
    "&X-Amz-Credential=AKIAEXAMPLE%2F20240101%2Feu-west-2%2Fs3%2Faws4_request"
    "&X-Amz-Date=20240101T000000Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host"
    "&X-Amz-Security-Token=FwoGZXIvYXdzEXAMPLE&X-Amz-Signature=deadbeefcafe"
)
SECRETS = ("AKIAEXAMPLE", "FwoGZXIvYXdzEXAMPLE", "deadbeefcafe")


def test_presigned_url_keeps_no_credential() -> None:
    """Signature, credential and token values are replaced; the date and expiry stay."""
    shown = redact_url(PRESIGNED)

    assert not any(secret in shown for secret in SECRETS)
    assert "X-Amz-Signature=***" in shown
    assert "X-Amz-Expires=3600" in shown
    assert shown.startswith("https://bucket.s3.eu-west-2.amazonaws.com/users.json?")


def test_sas_token_and_bare_parameters_are_redacted() -> None:
    """``sig``, ``token`` and a bare ``?secret`` are redacted; ``format`` is allowed."""
    shown = redact_url("https://h.test/f.zip?sig=abc123&token=t0k&format=zip&s3cr3t")

    assert shown == "https://h.test/f.zip?sig=***&token=***&format=zip&***"


def test_password_in_user_info_is_redacted() -> None:
    """``user:password@`` keeps the user and hides the password."""
    assert redact_url("https://etl:hunter2@h.test/u.json") == "https://etl:***@h.test/u.json"


def test_urls_inside_text_are_redacted() -> None:
    """Every URL in a message is redacted; the rest of the message is unchanged."""
    text = f"users: {PRESIGNED} answered HTTP 403 Forbidden; see 'https://x.test/?key=k1'"

    shown = redact_text(text)

    assert not any(secret in shown for secret in (*SECRETS, "k1"))
    assert shown.endswith("answered HTTP 403 Forbidden; see 'https://x.test/?key=***'")


def test_unparseable_url_is_hidden_whole() -> None:
    """A URL that cannot be parsed is not shown at all rather than shown unredacted."""
    assert redact_url("http://[::1/?sig=abc") == "***"


def test_config_and_status_use_the_same_redaction() -> None:
    """`config show` and `status` hide a presigned URL's secrets too, and keep sslmode."""
    from evergreen_etl.config import redact_url as config_redact_url

    assert config_redact_url(PRESIGNED) == redact_url(PRESIGNED)
    assert not any(secret in config_redact_url(PRESIGNED) for secret in SECRETS)
    assert config_redact_url("https://h.test/u.json?sig=abc") == "https://h.test/u.json?sig=***"
    assert config_redact_url("postgresql://u:p@db/w?sslmode=require") == (
        "postgresql://u:***@db/w?sslmode=require"
    )


@pytest.mark.parametrize(
    "url", ["sqlite:////tmp/w.db", "file:///srv/users.json", "https://h.test/a%20b.json#x"]
)
def test_urls_without_secrets_are_kept_as_written(url: str) -> None:
    """A URL with nothing to hide comes back byte for byte."""
    assert redact_url(url) == url
