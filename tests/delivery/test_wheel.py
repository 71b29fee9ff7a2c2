"""What users install: the wheel, the container image's steps and their pinned dependencies."""

from __future__ import annotations

import re
import subprocess
import zipfile
from importlib.metadata import PackageNotFoundError, requires, version
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

SHIPPED_FILES = [
    "evergreen_etl/warehouse/migrations/env.py",
    "evergreen_etl/warehouse/migrations/script.py.mako",
    "evergreen_etl/report/sql/users_by_local_authority.sql",
    "evergreen_etl/reference/local_authorities.csv",
    "evergreen_etl/reference/SOURCE.md",
]
# The one command both the Dockerfile's runtime stage and scripts/wheel-smoke.sh run.
PIP_INSTALL = re.compile(r'pip install [^\n;&|]*?\[postgres\]"')


def _logical_lines(text: str) -> list[str]:
    """Lines with backslash continuations joined and comments dropped (shell and Dockerfile)."""
    joined = re.sub(r"\\\n\s*", " ", text)
    return [
        re.sub(r"\s+", " ", line).strip()
        for line in joined.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def _dockerfile(repo_root: Path) -> list[tuple[str, str]]:
    """The Dockerfile as (INSTRUCTION, arguments) pairs."""
    instructions = []
    for line in _logical_lines((repo_root / "Dockerfile").read_text(encoding="utf-8")):
        keyword, _, arguments = line.partition(" ")
        instructions.append((keyword.upper(), arguments))
    return instructions


def _stages(repo_root: Path) -> list[list[tuple[str, str]]]:
    """The Dockerfile's build stages, each starting with its FROM."""
    stages: list[list[tuple[str, str]]] = []
    for keyword, arguments in _dockerfile(repo_root):
        if keyword == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((keyword, arguments))
    return stages


def _pip_install_line(text: str) -> str:
    matches = {m.group(0) for line in _logical_lines(text) for m in PIP_INSTALL.finditer(line)}
    assert len(matches) == 1, f"expected one wheel install command, found {sorted(matches)}"
    return matches.pop()


def _constraints(repo_root: Path) -> dict[str, str]:
    pins = {}
    for line in (repo_root / "constraints.txt").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, sep, pinned = line.partition("==")
            assert sep, f"constraints.txt: {line!r} is not pinned with =="
            assert pinned.strip(), f"constraints.txt: {line!r} has no version"
            pins[canonicalize_name(name)] = pinned.strip()
    return pins


@pytest.mark.slow
def test_installed_wheel_migrates_and_runs_the_demo(repo_root: Path, wheel_dir: Path) -> None:
    """The wheel, installed alone in a fresh venv outside the repo, migrates and runs the demo."""
    smoke = subprocess.run(
        ["bash", str(repo_root / "scripts" / "wheel-smoke.sh"), str(wheel_dir)],
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
        cwd=wheel_dir,
    )
    assert smoke.returncode == 0, f"wheel-smoke.sh failed:\n{smoke.stdout}\n{smoke.stderr[-6000:]}"
    assert "wheel-smoke: ok" in smoke.stderr


@pytest.mark.slow
def test_wheel_ships_migrations_sql_and_reference_data(wheel_path: Path) -> None:
    """Migrations, report SQL and the local-authority table are inside the wheel."""
    names = set(zipfile.ZipFile(wheel_path).namelist())
    for shipped in SHIPPED_FILES:
        assert shipped in names, f"{shipped} is missing from {wheel_path.name}"
    assert any(
        re.fullmatch(r"evergreen_etl/warehouse/migrations/versions/\w+\.py", n) for n in names
    )
    assert any(re.fullmatch(r"evergreen_etl/report/sql/\w+\.sql", n) for n in names)


@pytest.mark.slow
def test_wheel_holds_no_tests_caches_or_data(wheel_path: Path) -> None:
    """Nothing but the package and its metadata: no tests, caches, databases, keys or sources."""
    names = zipfile.ZipFile(wheel_path).namelist()
    top_level = {name.split("/", 1)[0] for name in names}
    assert top_level == {"evergreen_etl", wheel_path.name.split("-py")[0] + ".dist-info"}
    unwanted = re.compile(
        r"(^|/)(tests?|__pycache__)/|\.(pyc|db|sqlite|key|zip|json|jsonl)$|conftest\.py$"
    )
    assert [name for name in names if unwanted.search(name)] == []


def test_dockerfile_builds_a_wheel_then_installs_it_in_a_slim_runtime(repo_root: Path) -> None:
    """Two stages: the first builds the wheel, the last copies and installs only that."""
    stages = _stages(repo_root)
    assert len(stages) >= 2
    build_from, runtime_from = stages[0][0][1], stages[-1][0][1]
    assert build_from.startswith("python:3.11-slim")
    assert runtime_from.startswith("python:3.11-slim")
    build_alias = build_from.split()[-1]
    runtime = stages[-1]
    assert any(
        keyword == "COPY" and f"--from={build_alias}" in arguments for keyword, arguments in runtime
    ), "the runtime stage must take the wheel from the build stage"
    assert not any(
        keyword == "COPY" and re.search(r"(^|\s)\.?/?src(/|\s|$)", arguments)
        for keyword, arguments in runtime
    ), "the runtime stage must install the wheel, not copy the source tree"


def test_dockerfile_runs_evergreen_etl_as_non_root_with_data_on_a_volume(repo_root: Path) -> None:
    """ENTRYPOINT is the console script, USER is not root, /data is a volume and the data dir."""
    runtime = _stages(repo_root)[-1]
    last = dict(runtime)  # the last of each instruction is the one in force
    assert last["ENTRYPOINT"] == '["evergreen-etl"]'
    assert last["CMD"] == '["--help"]'
    user = last["USER"].split(":")[0]
    assert user not in {"root", "0"}
    assert "/data" in last["VOLUME"]
    envs = " ".join(arguments for keyword, arguments in runtime if keyword == "ENV")
    assert "EVERGREEN_DATA_DIR=/data" in envs


def test_dockerfile_bakes_in_no_secret(repo_root: Path) -> None:
    """No key, password or database URL is set in the image: they come at run time."""
    for keyword, arguments in _dockerfile(repo_root):
        if keyword in {"ENV", "ARG"}:
            assert not re.search(r"KEY=|PASSWORD|SECRET|TOKEN|DATABASE_URL", arguments.upper())
        if keyword in {"COPY", "ADD"}:
            assert not re.search(r"\.key\b|\.env\b|secrets?", arguments)


def test_image_install_step_is_the_one_the_wheel_smoke_test_runs(repo_root: Path) -> None:
    """The Dockerfile's pip install line is wheel-smoke.sh's, so the smoke test proves it."""
    runtime = _stages(repo_root)[-1]
    runs = "\n".join(arguments for keyword, arguments in runtime if keyword == "RUN")
    docker_line = _pip_install_line(runs)
    smoke_line = _pip_install_line(
        (repo_root / "scripts" / "wheel-smoke.sh").read_text(encoding="utf-8")
    )
    assert docker_line == smoke_line
    assert "--constraint constraints.txt" in docker_line
    copied = " ".join(arguments for keyword, arguments in runtime if keyword == "COPY")
    assert "constraints.txt" in copied


def test_dockerignore_keeps_data_and_venvs_out_of_the_build_context(repo_root: Path) -> None:
    """Data, secrets and virtualenvs never reach the build context; the sources do."""
    ignored = {
        line.strip().strip("/")
        for line in (repo_root / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {"data", ".venv", ".git", "*.key", ".env", "dist"} <= ignored
    assert not {"src", "migrations", "pyproject.toml", "README.md", "constraints.txt"} & ignored


def test_constraints_pin_every_runtime_dependency(repo_root: Path) -> None:
    """Each runtime requirement (postgres extra included) has an == pin in constraints.txt."""
    pins = _constraints(repo_root)
    runtime = [Requirement(text) for text in requires("evergreen-etl") or []]
    names = {
        canonicalize_name(req.name)
        for req in runtime
        if req.marker is None or req.marker.evaluate({"extra": "postgres"})
    }
    assert names, "evergreen-etl's metadata lists no requirements"
    assert sorted(names - pins.keys()) == []
    assert "psycopg-binary" in pins


def test_constraints_match_the_versions_the_tests_run_with(repo_root: Path) -> None:
    """constraints.txt pins the versions installed here; regenerate it when they change."""
    mismatched = {}
    for name, pinned in _constraints(repo_root).items():
        try:
            installed = version(name)
        except PackageNotFoundError:
            installed = None
        if installed != pinned:
            mismatched[name] = (pinned, installed)
    assert mismatched == {}, "regenerate constraints.txt (see its header)"
