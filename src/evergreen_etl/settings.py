"""Settings: command-line options, then ``EVERGREEN_*`` environment variables, then a ``.env``
file, then the config file (``evergreen.toml``; see :mod:`evergreen_etl.config`), then defaults.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from evergreen_etl.datadir.layout import DataDir
from evergreen_etl.postcodes import LocationPrecision

DEFAULT_USERS_URL = "https://evergreen-life-interview.s3.eu-west-2.amazonaws.com/users.json"
DEFAULT_POSTCODES_URL = "https://evergreen-life-interview.s3.eu-west-2.amazonaws.com/postcodes.zip"

_MIN_KEY_LENGTH = 32
_PLACEHOLDER_KEYS = {"changeme", "change-me", "secret", "password", "test", "key", "xxx"}


def validate_key_text(key: str) -> str:
    """Refuse a key that is short or an obvious placeholder; return it stripped."""
    key = key.strip()
    if len(key) < _MIN_KEY_LENGTH:
        raise ValueError(
            f"the pseudonym key must be at least {_MIN_KEY_LENGTH} characters "
            "(generate one with: python -c 'import secrets; print(secrets.token_hex(32))')"
        )
    if key.lower() in _PLACEHOLDER_KEYS or len(set(key)) < 8:
        raise ValueError("the pseudonym key looks like a placeholder; use a random key")
    return key


class Settings(BaseSettings):
    """Everything a stage needs to know about where things are. Build with ``load_settings``."""

    # hide_input_in_errors: a refused key must not be echoed in the validation error.
    model_config = SettingsConfigDict(
        env_prefix="EVERGREEN_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
        hide_input_in_errors=True,
    )

    data_dir: Path = Field(Path("data"), description="Root of raw/ and staged/ files")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; default SQLite under data_dir"
    )
    users_url: str = DEFAULT_USERS_URL
    postcodes_url: str = DEFAULT_POSTCODES_URL
    pseudonym_key: SecretStr | None = None
    pseudonym_key_file: Path | None = None
    max_reject_rate: float = Field(0.25, ge=0.0, le=1.0)
    max_left_rate: float = Field(
        0.2, ge=0.0, le=1.0, description="Largest share of current users one snapshot may close"
    )
    location_precision: LocationPrecision = Field(
        LocationPrecision.POSTCODE, description="What the warehouse keeps of a postcode"
    )
    min_k: int | None = Field(None, ge=2, description="k-anonymity threshold checked by load")
    k_policy: Literal["warn", "fail"] = "warn"
    http_timeout: float = Field(30.0, gt=0)
    http_retries: int = Field(4, ge=0)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Options, environment, ``.env``, then the config file (``evergreen.toml``)."""
        from evergreen_etl.config import ConfigFileSource

        return init_settings, env_settings, dotenv_settings, ConfigFileSource(settings_cls)

    @field_validator("pseudonym_key")
    @classmethod
    def _key_is_strong(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        return SecretStr(validate_key_text(value.get_secret_value()))

    @property
    def data(self) -> DataDir:
        """Every path under the data directory."""
        return DataDir(self.data_dir)

    @property
    def raw_dir(self) -> Path:
        """Where ``extract`` writes the sources and the manifest."""
        return self.data.raw

    @property
    def staged_dir(self) -> Path:
        """Where ``anonymise`` writes pseudonymised records, rejects and the quality summary."""
        return self.data.staged

    @property
    def effective_database_url(self) -> str:
        """The database URL, defaulting to a SQLite file under the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data.warehouse_db.resolve()}"

    @property
    def effective_key_file(self) -> Path:
        """The key file used when no key is given in the environment."""
        return self.pseudonym_key_file or self.data.key_file


def load_settings(**overrides: Any) -> Settings:
    """Build settings; keyword arguments that are not None override every other source."""
    given = {name: value for name, value in overrides.items() if value is not None}
    return Settings(**given)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings from the environment and defaults, built once per process."""
    return Settings()
