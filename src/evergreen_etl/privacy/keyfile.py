"""Key custody around a rotation: where the new key comes from, and when it replaces the old."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from evergreen_etl.errors import ConfigurationError
from evergreen_etl.privacy.pseudonym import key_from_file, load_key
from evergreen_etl.privacy.rekey import RotationResult, rotate_key, warehouse_key_id
from evergreen_etl.settings import Settings
from evergreen_etl.warehouse.engine import open_warehouse


def key_ids(settings: Settings) -> tuple[str, str | None]:
    """The configured key's identifier and the warehouse's (None before the first load)."""
    configured = load_key(settings).key_id
    with open_warehouse(settings) as engine, engine.connect() as conn:
        return configured, warehouse_key_id(conn)


def rotate_key_files(
    settings: Settings, *, users_paths: Sequence[Path], new_key_file: Path | None = None
) -> RotationResult:
    """Rotate the warehouse to a new key; then make the new key the configured one.

    With ``new_key_file``, the new key is read from it (or created there): point
    EVERGREEN_PSEUDONYM_KEY_FILE at it afterwards. Without it, the configured key file is
    replaced by a new key once the warehouse has committed (a key given in the environment
    cannot be replaced from here, so a file must be named).
    """
    old_key = load_key(settings)
    replace = new_key_file is None
    if replace and settings.pseudonym_key is not None:
        raise ConfigurationError(
            "the key comes from EVERGREEN_PSEUDONYM_KEY: pass --new-key-file and configure it "
            "after the rotation"
        )
    key_file = settings.effective_key_file
    target = new_key_file or key_file.with_name(key_file.name + ".new")
    created = not target.exists()
    new_key = key_from_file(target)
    try:
        with open_warehouse(settings) as engine:
            result = rotate_key(engine, old_key=old_key, new_key=new_key, users_paths=users_paths)
    except BaseException:
        if replace and created:
            target.unlink(missing_ok=True)
        raise
    if replace:
        os.replace(target, key_file)
    return result
