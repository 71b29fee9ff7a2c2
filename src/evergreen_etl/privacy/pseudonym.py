"""The keyed pseudonym: HMAC-SHA256 over the normalised email, with a managed secret key.

HMAC, not a plain or salted SHA-256, because a plain hash of an email is reversed by hashing
a list of emails; without the key nobody can recompute or test a pseudonym.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import secrets
import stat
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from evergreen_etl.datadir.modes import PRIVATE_FILE, private_dir
from evergreen_etl.errors import ConfigurationError
from evergreen_etl.settings import Settings, validate_key_text

log = logging.getLogger(__name__)

# No whitespace and no lone surrogates (legal as JSON escapes, but not text: no UTF-8).
_PART = r"[^@\s\ud800-\udfff]"
_LAST = r"[^@\s.\ud800-\udfff]"
_EMAIL_RE = re.compile(rf"^{_PART}+@{_PART}+\.{_LAST}{{2,}}$")
_KEY_ID_MESSAGE = b"evergreen-etl key id v1"


def normalise_email(value: str) -> str | None:
    """Trimmed, Unicode-normalised (NFKC), lower-cased email, or None if it is not one."""
    email = unicodedata.normalize("NFKC", value).strip().lower()
    return email if _EMAIL_RE.match(email) else None


@dataclass(frozen=True)
class PseudonymKey:
    """A secret key and its public identifier. The key never appears in repr or logs."""

    secret: bytes = field(repr=False)
    key_id: str

    @classmethod
    def from_text(cls, text: str) -> PseudonymKey:
        """Build from the key's text form (validated: long enough, not a placeholder)."""
        try:
            secret = validate_key_text(text).encode()
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from None
        key_id = hmac.new(secret, _KEY_ID_MESSAGE, hashlib.sha256).hexdigest()[:16]
        return cls(secret=secret, key_id=key_id)

    def pseudonymiser(self) -> Pseudonymiser:
        """A callable that maps a normalised email to its pseudonym."""
        return Pseudonymiser(self)

    def postcode_tokeniser(self) -> Pseudonymiser:
        """A callable that maps a normalised postcode to a keyed token (32 hex characters).

        The warehouse compares tokens to see a move when it keeps less than the full
        postcode; a distinct prefix keeps tokens and pseudonyms in separate domains.
        """
        return Pseudonymiser(self, domain=b"postcode\x00", length=32)


class Pseudonymiser:
    """Map normalised emails to hex HMAC-SHA256 pseudonyms (fast: the keyed state is reused)."""

    def __init__(self, key: PseudonymKey, *, domain: bytes = b"", length: int = 64) -> None:
        self._base = hmac.new(key.secret, digestmod=hashlib.sha256)
        self._base.update(domain)
        self._length = length

    def __call__(self, normalised_email: str) -> str:
        mac = self._base.copy()
        mac.update(normalised_email.encode())
        return mac.hexdigest()[: self._length]


# The cell key method's record key (privacy/ckm.py): the first byte of an HMAC of the pseudonym
# under this public label. The pseudonym is keyed already, so the label need not be secret.
_RECORD_KEY_LABEL = b"evergreen-etl record key for the cell key method, v1"
_RECORD_KEY_BASE = hmac.new(_RECORD_KEY_LABEL, digestmod=hashlib.sha256)


def record_key(pseudonym: str) -> int:
    """A user's record key, 0 to 255, from their pseudonym (the HMAC's keyed state reused)."""
    mac = _RECORD_KEY_BASE.copy()
    mac.update(pseudonym.encode("ascii"))
    return mac.digest()[0]


def load_key(settings: Settings) -> PseudonymKey:
    """The pseudonym key from the environment, else from the key file (created on first use)."""
    if settings.pseudonym_key is not None:
        return PseudonymKey.from_text(settings.pseudonym_key.get_secret_value())
    return key_from_file(settings.effective_key_file)


def key_from_file(path: Path) -> PseudonymKey:
    """The key in ``path``, creating it (0600) first when it does not exist."""
    if not path.exists():
        create_key_file(path)
    return PseudonymKey.from_text(read_key_file(path))


def create_key_file(path: Path) -> None:
    """Write a new random key to ``path`` with mode 0600, unless the file exists already."""
    try:
        private_dir(path.parent, tighten=False)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    except FileExistsError:  # another process created it first: use theirs
        return
    except OSError as exc:
        raise ConfigurationError(
            f"{path}: cannot create the pseudonym key file ({exc.strerror}); "
            "set EVERGREEN_PSEUDONYM_KEY_FILE to a writable place or give the key"
        ) from None
    os.fchmod(fd, PRIVATE_FILE)  # 0600 exactly, whatever the umask
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_hex(32) + "\n")
    log.warning(
        "created a new pseudonym key at %s: keep it safe and back it up; without it, "
        "later snapshots cannot be linked to this history",
        path,
    )


def read_key_file(path: Path) -> str:
    """The key text in ``path``; refused when other users can read the file."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise ConfigurationError(
            f"{path}: cannot read the pseudonym key file ({exc.strerror})"
        ) from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigurationError(
            f"{path}: the pseudonym key file is accessible to other users; run: chmod 600 {path}"
        )
    try:
        return path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not text"
        raise ConfigurationError(
            f"{path}: cannot read the pseudonym key file ({reason}); it must be a text file "
            "that the user running evergreen-etl owns and may read: "
            f"chown that user {path} && chmod 600 {path}"
        ) from None
