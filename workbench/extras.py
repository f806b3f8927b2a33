"""How to install an optional part (an "extra" of pyproject.toml) in words that work today.

The package is not on PyPI yet, so ``pip install "detection-workbench[train]"`` would fail:
the hint names the extra's own requirements, read from the installed package's metadata (one
source of truth: pyproject.toml), and the command that works from a clone.
"""

from __future__ import annotations

import re
from importlib import metadata

DISTRIBUTION = "detection-workbench"
_EXTRA_MARKER = re.compile(r"""extra\s*==\s*["']([^"']+)["']""")


def extra_requirements(extra: str) -> list[str]:
    """The requirements pyproject.toml lists under ``extra`` (empty if the metadata is missing)."""
    try:
        requires = metadata.requires(DISTRIBUTION) or []
    except metadata.PackageNotFoundError:
        return []
    found = []
    for line in requires:
        requirement, _, marker = line.partition(";")
        match = _EXTRA_MARKER.search(marker)
        if match and match.group(1) == extra:
            found.append(requirement.strip())
    return found


def install_hint(extra: str) -> str:
    """One line: what to pip install for ``extra`` (train, int8, cluster)."""
    packages = " ".join(f'"{r}"' for r in extra_requirements(extra))
    from_clone = f'from a clone of the workbench: pip install -e ".[{extra}]"'
    return f"pip install {packages} ({from_clone})" if packages else from_clone
