"""Where settings come from, and how to show them without their secrets.

Precedence, highest first: command-line options, ``EVERGREEN_*`` environment variables, a
``.env`` file in the working directory, the config file, the defaults. The config file is
``--config PATH``, else ``$EVERGREEN_CONFIG``, else ``evergreen.toml`` in the working directory
when there is one: flat ``name = value`` pairs named as the settings are (``database_url``,
``data_dir``, ...). Relative paths in it are relative to the file. The pseudonym key itself is
never read from a config file (a file that is easily committed or shared); its key *file* path
may be.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from pydantic.fields import FieldInfo
from pydantic_settings import PydanticBaseSettingsSource

from evergreen_etl.errors import ConfigurationError

if TYPE_CHECKING:
    from pydantic_settings import BaseSettings

CONFIG_FILE = "evergreen.toml"
CONFIG_ENV = "EVERGREEN_CONFIG"
DOTENV_FILE = ".env"
ENV_PREFIX = "EVERGREEN_"
REDACTED = "***"
SECRET_SETTINGS = frozenset({"pseudonym_key"})
_PATH_SETTINGS = frozenset({"data_dir", "pseudonym_key_file"})
_SECRET_WORDS = ("password", "passwd", "secret", "token", "key", "signature", "credential")

_EXPLICIT: ContextVar[Path | None] = ContextVar("config_file", default=None)


@contextmanager
def config_file(path: Path | None) -> Iterator[None]:
    """Use ``path`` as the config file for the settings built inside the block."""
    token = _EXPLICIT.set(path)
    try:
        yield
    finally:
        _EXPLICIT.reset(token)


def set_config_file(path: Path | None) -> None:
    """Use ``path`` as the config file from now on in this context (``--config``)."""
    _EXPLICIT.set(path)


def config_file_path() -> Path | None:
    """The config file in force: ``--config``, else ``$EVERGREEN_CONFIG``, else ./evergreen.toml."""
    named = _EXPLICIT.get() or (
        Path(os.environ[CONFIG_ENV]) if os.environ.get(CONFIG_ENV) else None
    )
    if named is not None:
        if not named.is_file():
            raise ConfigurationError(f"{named}: config file not found")
        return named
    default = Path(CONFIG_FILE)
    return default if default.is_file() else None


def read_config_file(path: Path, known: set[str]) -> dict[str, Any]:
    """The settings in the TOML file ``path``; refuse unknown names and the pseudonym key."""
    try:
        values = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(
            f"{path}: cannot read the config file ({type(exc).__name__})"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{path}: not valid TOML: {exc}") from None
    if "pseudonym_key" in values:
        raise ConfigurationError(
            f"{path}: pseudonym_key is not allowed in a config file; set EVERGREEN_PSEUDONYM_KEY "
            "or point pseudonym_key_file at a key file"
        )
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigurationError(f"{path}: unknown setting {unknown[0]!r}")
    for name in _PATH_SETTINGS & set(values):
        if isinstance(values[name], str) and not Path(values[name]).is_absolute():
            values[name] = str(path.parent / values[name])
    return values


class ConfigFileSource(PydanticBaseSettingsSource):
    """The config file as a pydantic-settings source (below the environment and ``.env``)."""

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls)
        self.path = config_file_path()
        known = set(settings_cls.model_fields)
        self.values = read_config_file(self.path, known) if self.path is not None else {}

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        """The file's value for ``field_name`` (None when it does not set it)."""
        return self.values.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self.values)


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


def _dotenv(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    from dotenv import dotenv_values

    return {k.upper(): v for k, v in dotenv_values(path).items() if v is not None}


def setting_sources(overrides: dict[str, Any]) -> dict[str, str]:
    """Where each setting's value comes from: option, environment, .env, config file or default."""
    from evergreen_etl.settings import Settings

    environment = {k.upper(): v for k, v in os.environ.items()}
    dotenv = _dotenv(Path(DOTENV_FILE))
    path = config_file_path()
    in_file = read_config_file(path, set(Settings.model_fields)) if path is not None else {}
    sources = {}
    for name in Settings.model_fields:
        variable = ENV_PREFIX + name.upper()
        given = overrides.get(name)
        # Typer reads some options' environment variables itself: name those as environment.
        if given is not None and str(given) != environment.get(variable):
            sources[name] = "option"
        elif variable in environment:
            sources[name] = f"environment ({variable})"
        elif variable in dotenv:
            sources[name] = f"{DOTENV_FILE} ({variable})"
        elif name in in_file:
            sources[name] = f"config file ({path})"
        else:
            sources[name] = "default"
    return sources


def shown_value(name: str, value: Any) -> str:
    """A setting's value for people, with secrets hidden."""
    if value is None:
        return "(not set)"
    if name in SECRET_SETTINGS:
        return REDACTED
    if name.endswith("_url"):
        return redact_url(str(value))
    if hasattr(value, "value"):  # an enum
        return str(value.value)
    return str(value)


def render_settings(overrides: dict[str, Any]) -> str:
    """``config show``: each setting's effective value and its source, secrets hidden."""
    from evergreen_etl.settings import load_settings

    settings = load_settings(**overrides)
    sources = setting_sources(overrides)
    rows = [
        (name, shown_value(name, getattr(settings, name)), sources[name])
        for name in type(settings).model_fields
    ]
    width = max(len(name) for name, _, _ in rows)
    value_width = max(len(value) for _, value, _ in rows)
    path = config_file_path()
    head = f"config file: {path if path is not None else 'none'}\n"
    return head + "".join(
        f"{name:<{width}}  {value:<{value_width}}  {source}\n" for name, value, source in rows
    )
