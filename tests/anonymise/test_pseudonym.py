"""The keyed pseudonym: email normalisation, the secret key, and where the key comes from."""

from __future__ import annotations

import hashlib
import os
import re
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from evergreen_etl.errors import ConfigurationError
from evergreen_etl.privacy.pseudonym import PseudonymKey, load_key, normalise_email
from evergreen_etl.settings import Settings

TEST_KEY = "0f4c2a9e7b1d3f5a8c6e0b2d4f6a8c0e1b3d5f7a9c1e3b5d7f9a1c3e5b7d9f1a"
OTHER_KEY = "9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b"
HEX64 = re.compile(r"^[0-9a-f]{64}$")

EMAIL_RULES = [
    ("jane.doe@example.com", "jane.doe@example.com", "already-normal"),
    ("  jane.doe@example.com\t", "jane.doe@example.com", "surrounding-whitespace-is-trimmed"),
    ("Jane.Doe@Example.COM", "jane.doe@example.com", "case-is-lowered"),
    (
        "ＪＡＮＥ@ＥＸＡＭＰＬＥ．ＣＯＭ",
        "jane@example.com",
        "full-width-characters-are-nfkc-folded",
    ),
    ("jane＠example.com", "jane@example.com", "full-width-at-sign-is-nfkc-folded"),
    ("jos\u0065\u0301@example.com", "jos\u00e9@example.com", "combining-accent-is-composed"),
    ("not-an-email", None, "no-at-sign-is-invalid"),
    ("jane@example", None, "no-domain-dot-is-invalid"),
    ("a@b", None, "bare-host-is-invalid"),
    ("a@@example.com", None, "two-at-signs-is-invalid"),
    ("jane doe@example.com", None, "inner-space-is-invalid"),
    ("@example.com", None, "empty-local-part-is-invalid"),
    ("jane@example.c", None, "one-letter-tld-is-invalid"),
    ("jane@example.com.", None, "trailing-dot-is-invalid"),
    ("", None, "empty-is-invalid"),
    ("   ", None, "blank-is-invalid"),
]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(raw, expected) for raw, expected, _ in EMAIL_RULES],
    ids=[rule_id for _, _, rule_id in EMAIL_RULES],
)
def test_normalise_email_follows_the_rule_table(raw: str, expected: str | None) -> None:
    """Emails are trimmed, NFKC-normalised and lower-cased; anything not an email is None."""
    assert normalise_email(raw) == expected


@pytest.mark.parametrize(
    "text",
    [
        "0f4c2a9e7b1d3f5a",
        "",
        "changeme",
        "changemechangemechangemechangeme",
        "a" * 64,
        "0123456" * 6,
    ],
    ids=[
        "short-16",
        "empty",
        "short-placeholder",
        "long-repeated-placeholder",
        "one-character-repeated",
        "seven-distinct-characters",
    ],
)
def test_short_or_placeholder_key_is_refused(text: str) -> None:
    """A key shorter than 32 characters or with little variety is a configuration error."""
    with pytest.raises(ConfigurationError, match="pseudonym key"):
        PseudonymKey.from_text(text)


def test_key_text_never_appears_in_repr() -> None:
    """Neither repr nor str of a key shows the secret."""
    key = PseudonymKey.from_text(TEST_KEY)

    for shown in (repr(key), str(key)):
        assert TEST_KEY not in shown
        assert TEST_KEY[:16] not in shown


def test_surrounding_whitespace_in_key_text_is_ignored() -> None:
    """A key read with a trailing newline is the same key."""
    assert (
        PseudonymKey.from_text(f"  {TEST_KEY}\n").key_id == PseudonymKey.from_text(TEST_KEY).key_id
    )


# Valid keys: random hex plus a suffix that guarantees enough distinct characters.
keys = st.binary(min_size=16, max_size=32).map(lambda raw: raw.hex() + "0123456789abcdef")
emails = st.builds(
    lambda local, domain: f"{local}@{domain}.com",
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789._+-", min_size=1, max_size=20),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=20),
)


@given(key_text=keys, email=emails)
def test_pseudonym_is_deterministic_per_key(key_text: str, email: str) -> None:
    """The same email and key always give the same pseudonym, across key objects."""
    first = PseudonymKey.from_text(key_text).pseudonymiser()
    second = PseudonymKey.from_text(key_text).pseudonymiser()
    assert first(email) == first(email) == second(email)


@given(key_texts=st.lists(keys, min_size=2, max_size=2, unique=True), email=emails)
def test_pseudonym_differs_across_keys(key_texts: list[str], email: str) -> None:
    """Two different keys give two different pseudonyms (and key ids) for the same email."""
    one, two = (PseudonymKey.from_text(text) for text in key_texts)
    assert one.key_id != two.key_id
    assert one.pseudonymiser()(email) != two.pseudonymiser()(email)


@given(key_text=keys, email=emails)
def test_pseudonym_is_not_a_plain_hash_of_the_email(key_text: str, email: str) -> None:
    """The pseudonym is keyed: it is not the plain SHA-256 of the email."""
    pseudonym = PseudonymKey.from_text(key_text).pseudonymiser()(email)
    assert pseudonym != hashlib.sha256(email.encode()).hexdigest()


@given(key_text=keys, email=emails)
def test_pseudonym_is_64_lower_case_hex_characters(key_text: str, email: str) -> None:
    """A pseudonym is the hex form of an HMAC-SHA256 digest."""
    assert HEX64.match(PseudonymKey.from_text(key_text).pseudonymiser()(email))


@given(email=emails)
def test_emails_differing_only_in_case_and_spaces_share_a_pseudonym(email: str) -> None:
    """Normalisation before keying makes ' Jane@X.COM ' and 'jane@x.com' the same user."""
    pseudonym = PseudonymKey.from_text(TEST_KEY).pseudonymiser()
    variant = normalise_email(f"  {email.upper()} ")
    canonical = normalise_email(email)
    assert variant is not None
    assert canonical is not None
    assert pseudonym(variant) == pseudonym(canonical)


def _settings(tmp_path: Path, key: str | None = None) -> Settings:
    if key is None:
        return Settings(data_dir=tmp_path / "data")
    return Settings(data_dir=tmp_path / "data", pseudonym_key=key)


def test_missing_key_file_is_created_with_owner_only_permissions(tmp_path: Path) -> None:
    """With no key configured and no key file, a key file with mode 0600 is created."""
    settings = _settings(tmp_path)
    path = settings.effective_key_file
    assert not path.exists()

    load_key(settings)

    assert path.is_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_created_key_file_is_reused_not_recreated(tmp_path: Path) -> None:
    """A second load reads the key file it created before: same key id, file untouched."""
    settings = _settings(tmp_path)
    first = load_key(settings)
    path = settings.effective_key_file
    before = (path.read_bytes(), path.stat().st_ino, path.stat().st_mtime_ns)

    second = load_key(settings)

    assert second.key_id == first.key_id
    assert (path.read_bytes(), path.stat().st_ino, path.stat().st_mtime_ns) == before


def test_created_key_is_strong_enough_to_load(tmp_path: Path) -> None:
    """The generated key passes the key validation (long and random)."""
    settings = _settings(tmp_path)
    load_key(settings)

    text = settings.effective_key_file.read_text().strip()

    assert PseudonymKey.from_text(text).key_id == load_key(settings).key_id


def test_new_key_files_in_different_places_hold_different_keys(tmp_path: Path) -> None:
    """Each new key file holds a fresh random key."""
    one = load_key(_settings(tmp_path / "one"))
    two = load_key(_settings(tmp_path / "two"))

    assert one.key_id != two.key_id


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644], ids=oct)
def test_key_file_readable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    """A key file accessible to group or others is refused with the chmod fix in the message."""
    settings = _settings(tmp_path)
    path = settings.effective_key_file
    path.parent.mkdir(parents=True)
    path.write_text(TEST_KEY + "\n")
    os.chmod(path, mode)

    with pytest.raises(ConfigurationError, match="chmod 600"):
        load_key(settings)


def test_existing_key_file_is_used(tmp_path: Path) -> None:
    """A private key file that already exists gives its key."""
    settings = _settings(tmp_path)
    path = settings.effective_key_file
    path.parent.mkdir(parents=True)
    path.write_text(TEST_KEY + "\n")
    os.chmod(path, 0o600)

    assert load_key(settings).key_id == PseudonymKey.from_text(TEST_KEY).key_id


def test_weak_key_in_key_file_is_refused(tmp_path: Path) -> None:
    """A key file holding a short key is a configuration error, not a silent weak key."""
    settings = _settings(tmp_path)
    path = settings.effective_key_file
    path.parent.mkdir(parents=True)
    path.write_text("changeme\n")
    os.chmod(path, 0o600)

    with pytest.raises(ConfigurationError, match="pseudonym key"):
        load_key(settings)


def test_configured_key_takes_precedence_over_key_file(tmp_path: Path) -> None:
    """A key given in settings wins over an existing key file."""
    file_settings = _settings(tmp_path)
    from_file = load_key(file_settings)

    key = load_key(_settings(tmp_path, TEST_KEY))

    assert key.key_id == PseudonymKey.from_text(TEST_KEY).key_id
    assert key.key_id != from_file.key_id


def test_configured_key_creates_no_key_file(tmp_path: Path) -> None:
    """With a key in settings, no key file is written."""
    settings = _settings(tmp_path, TEST_KEY)

    load_key(settings)

    assert not settings.effective_key_file.exists()


def test_environment_key_takes_precedence_over_key_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """EVERGREEN_PSEUDONYM_KEY in the environment wins over the key file."""
    load_key(_settings(tmp_path))
    monkeypatch.setenv("EVERGREEN_PSEUDONYM_KEY", OTHER_KEY)

    key = load_key(_settings(tmp_path))

    assert key.key_id == PseudonymKey.from_text(OTHER_KEY).key_id
