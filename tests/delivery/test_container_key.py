"""The README's container example makes a key the container's user can read, and nobody else."""

from __future__ import annotations

import os
import re
import stat
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _container_uid() -> int:
    """The uid the Dockerfile's runtime stage runs as."""
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8")
    match = re.search(r"useradd [^\n]*--uid (\d+)", dockerfile)
    assert match, "the Dockerfile creates no user with a fixed uid"
    assert re.search(r"^USER evergreen", dockerfile, re.M)
    return int(match.group(1))


def _key_commands() -> list[str]:
    """The README's container commands that make the key file, before the first `docker run`
    that mounts it."""
    section = (REPO / "README.md").read_text(encoding="utf-8").split("## Container", 1)[1]
    block = re.search(r"```console\n(.*?)```", section, re.S)
    assert block
    commands = re.sub(r"\\\n\s*", " ", block.group(1)).splitlines()  # continuations joined
    return [
        line
        for line in commands
        if "pseudonym.key" in line and not line.startswith(("#", "docker", "make"))
    ]


@pytest.mark.skipif(os.geteuid() != 0, reason="changing a file's owner needs root")
def test_readme_key_is_owned_by_the_container_user_and_private(tmp_path: Path) -> None:
    """Run as written, the commands leave a 0600 key owned by the image's uid."""
    commands = _key_commands()
    assert commands, "the README shows no way to make the key"
    script = "\n".join(command.replace("sudo ", "") for command in commands)
    subprocess.run(["bash", "-euc", script], cwd=tmp_path, check=True, timeout=60)

    info = (tmp_path / "pseudonym.key").stat()
    assert info.st_uid == _container_uid()
    assert stat.S_IMODE(info.st_mode) & 0o077 == 0  # evergreen-etl refuses a key others can read
    assert stat.S_IMODE(info.st_mode) & 0o400  # and its owner, the container's user, can


def test_readme_mounts_the_key_where_the_setting_points() -> None:
    """The mounted key's path inside the container is the one EVERGREEN_PSEUDONYM_KEY_FILE names."""
    section = (REPO / "README.md").read_text(encoding="utf-8").split("## Container", 1)[1]
    (setting,) = re.findall(r"EVERGREEN_PSEUDONYM_KEY_FILE=(\S+)", section.split("```")[1])
    (mount,) = re.findall(r'pseudonym\.key:([^:"]+)', section.split("```")[1])

    assert mount == setting
