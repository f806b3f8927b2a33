"""ARCHITECTURE.md stays a true map: every module and folder it names exists, and every
package of workbench/ and ui/ appears in it."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEXT = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")


def _exists(name: str) -> bool:
    bases = [ROOT, ROOT / "workbench", ROOT / "ui", ROOT / "ui" / "panels", ROOT / "tests" / "data",
             *[p for p in (ROOT / "workbench").iterdir() if p.is_dir()]]
    bases += [p for base in list(bases) if base.is_dir() for p in base.iterdir() if p.is_dir()]
    return any((base / name).exists() for base in bases)


def test_every_file_the_map_names_exists():
    names = set(re.findall(r"`([\w./-]+\.(?:py|md|toml|ini|sh))`", TEXT))
    names |= {m for m in re.findall(r"`([\w/]+/)`", TEXT)}
    # NAME stands for the reader's own module in the recipes
    missing = sorted(n for n in names if "NAME" not in n and not _exists(n))
    assert names and missing == []


def test_every_package_is_on_the_map():
    packages = [p.name for p in (ROOT / "workbench").iterdir()
                if p.is_dir() and (p / "__init__.py").is_file()]
    assert len(packages) >= 8
    missing = [name for name in packages if f"`{name}/`" not in TEXT]
    assert missing == []
