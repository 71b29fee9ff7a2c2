"""Print ``name==version`` for the lower bound of every direct dependency in pyproject.toml.

The runtime dependencies and every optional extra: the versions the package claims to work
with at the least, for scripts/lowest-deps.sh to install and test.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

_BOUND = re.compile(r"^\s*([A-Za-z0-9_.-]+)(\[[^\]]*\])?\s*>=\s*([0-9][^,;\s]*)")


def main() -> int:
    """Print the pins; fail if a direct dependency has no ``>=`` lower bound."""
    project = tomllib.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))["project"]
    requirements = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        requirements += extra
    pins: dict[str, str] = {}
    for requirement in requirements:
        match = _BOUND.match(requirement)
        if match is None:
            print(f"no lower bound: {requirement}", file=sys.stderr)
            return 1
        pins[match.group(1).lower()] = match.group(3)
    for name, version in sorted(pins.items()):
        print(f"{name}=={version}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
