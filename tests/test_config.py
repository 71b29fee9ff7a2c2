"""Settings from evergreen.toml, --config, $EVERGREEN_CONFIG and .env, in a documented order."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from evergreen_etl.cli import app
from evergreen_etl.config import config_file
from evergreen_etl.errors import ConfigurationError
from evergreen_etl.privacy.pseudonym import PseudonymKey
from evergreen_etl.settings import load_settings
from support.keys import TEST_KEY


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory for the test."""
    directory = tmp_path / "work"
    directory.mkdir()
    monkeypatch.chdir(directory)
    return directory


def test_precedence_is_options_environment_dotenv_file_defaults(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each source wins over the ones below it: options > env > .env > evergreen.toml > defaults."""
    (workdir / "evergreen.toml").write_text(
        'min_k = 3\nhttp_retries = 1\nhttp_timeout = 5.0\nk_policy = "fail"\n'
    )
    (workdir / ".env").write_text("EVERGREEN_HTTP_RETRIES=2\nEVERGREEN_HTTP_TIMEOUT=6\n")
    monkeypatch.setenv("EVERGREEN_HTTP_TIMEOUT", "7")
    settings = load_settings(min_k=9)
    assert settings.min_k == 9  # option over the file
    assert settings.http_timeout == 7.0  # environment over .env and the file
    assert settings.http_retries == 2  # .env over the file
    assert settings.k_policy == "fail"  # the file over the default
    assert settings.max_reject_rate == 0.25  # the default


def test_relative_paths_in_the_file_are_relative_to_it(workdir: Path) -> None:
    """`data_dir = "data"` in a config file elsewhere means the data dir beside that file."""
    elsewhere = workdir / "etc"
    elsewhere.mkdir()
    (elsewhere / "prod.toml").write_text('data_dir = "data"\n')
    with config_file(elsewhere / "prod.toml"):
        assert load_settings().data_dir == elsewhere / "data"


def test_config_env_names_the_file(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """$EVERGREEN_CONFIG names the config file when --config is not given."""
    (workdir / "evergreen.toml").write_text("min_k = 3\n")
    (workdir / "other.toml").write_text("min_k = 4\n")
    monkeypatch.setenv("EVERGREEN_CONFIG", str(workdir / "other.toml"))
    assert load_settings().min_k == 4


def test_config_option_names_the_file(workdir: Path) -> None:
    """`evergreen-etl --config PATH` reads that file (here: the warehouse URL for status)."""
    url = f"sqlite:///{workdir / 'elsewhere.db'}"
    (workdir / "prod.toml").write_text(f'database_url = "{url}"\n')
    result = CliRunner().invoke(app, ["--config", str(workdir / "prod.toml"), "status"])
    assert result.exit_code == 0, result.stderr
    assert f"warehouse:           {url}" in result.stdout


def test_pseudonym_key_in_the_config_file_is_refused(workdir: Path) -> None:
    """A `pseudonym_key` entry in the config file is a one-line error, exit 2."""
    (workdir / "evergreen.toml").write_text(f'pseudonym_key = "{TEST_KEY}"\n')
    result = CliRunner().invoke(app, ["config", "show"])
    assert result.exit_code == 2
    assert "pseudonym_key is not allowed in a config file" in result.stderr
    assert TEST_KEY not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_key_file_path_in_the_config_file_is_used(workdir: Path) -> None:
    """`pseudonym_key_file` may come from the config file; status shows that key's id."""
    (workdir / "secret.key").write_text(TEST_KEY + "\n")
    (workdir / "secret.key").chmod(0o600)
    (workdir / "evergreen.toml").write_text('pseudonym_key_file = "secret.key"\n')
    assert load_settings().effective_key_file.resolve() == (workdir / "secret.key").resolve()
    result = CliRunner().invoke(app, ["status", "--data-dir", str(workdir / "d")])
    assert result.exit_code == 0, result.stderr
    expected = PseudonymKey.from_text(TEST_KEY).key_id
    assert f"key id (configured): {expected}" in result.stdout


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("databse_url = 'x'\n", "unknown setting 'databse_url'"),
        ("min_k = \n", "not valid TOML"),
    ],
    ids=["unknown-name", "bad-toml"],
)
def test_bad_config_file_is_one_line_error(workdir: Path, content: str, message: str) -> None:
    """A misspelt setting or broken TOML is a one-line configuration error naming the file."""
    (workdir / "evergreen.toml").write_text(content)
    result = CliRunner().invoke(app, ["status"])
    assert result.exit_code == 2
    assert message in result.stderr
    assert "evergreen.toml" in result.stderr
    with pytest.raises(ConfigurationError, match=message):
        load_settings()


def test_missing_named_config_file_is_refused(workdir: Path) -> None:
    """--config naming a file that is not there is an error, not silently the defaults."""
    result = CliRunner().invoke(app, ["--config", str(workdir / "nope.toml"), "status"])
    assert result.exit_code == 2
    assert "config file not found" in result.stderr


def test_config_show_names_sources_and_hides_secrets(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`config show` prints each setting with its source; the key and passwords are hidden."""
    (workdir / "evergreen.toml").write_text(
        'database_url = "postgresql://etl:hunter2-pw@db.internal/warehouse"\nmin_k = 5\n'
    )
    (workdir / ".env").write_text("EVERGREEN_HTTP_RETRIES=2\n")
    monkeypatch.setenv("EVERGREEN_PSEUDONYM_KEY", TEST_KEY)
    result = CliRunner().invoke(app, ["config", "show", "--data-dir", str(workdir / "d")])
    assert result.exit_code == 0, result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines()[1:]}
    assert lines["database_url"].split()[1:] == [
        "postgresql://etl:***@db.internal/warehouse",
        "config",
        "file",
        "(evergreen.toml)",
    ]
    assert lines["min_k"].endswith("config file (evergreen.toml)")
    assert lines["http_retries"].endswith(".env (EVERGREEN_HTTP_RETRIES)")
    assert lines["pseudonym_key"].split()[1:] == ["***", "environment", "(EVERGREEN_PSEUDONYM_KEY)"]
    assert lines["data_dir"].endswith("option")
    assert lines["k_policy"].endswith("default")
    assert TEST_KEY not in result.stdout
    assert "hunter2-pw" not in result.stdout
