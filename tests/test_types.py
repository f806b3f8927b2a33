"""mypy over the Qt-free core with the repository's mypy.ini (issue 22).

One mypy run (about 25 s: its cache starts empty in a temporary folder) serves both tests: the
packages already typed must stay clean, and the whole of workbench/ must be once the rest is.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "mypy.ini"

#: what mypy.ini requires complete signatures for, and must report nothing in
TYPED = ("workbench/__init__.py", "workbench/__main__.py", "workbench/boxes.py",
         "workbench/bundled.py", "workbench/cli.py", "workbench/errors.py",
         "workbench/extras.py", "workbench/progress.py", "workbench/tf_runtime.py",
         "workbench/evaluation/", "workbench/darknet/")

_ERROR = re.compile(r"^(?P<path>[^:\n]+\.py):\d+(?::\d+)?: error: ", re.MULTILINE)


@pytest.fixture(scope="module")
def mypy_errors(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Every error line mypy reports for workbench/, paths relative to the repository root."""
    api = pytest.importorskip("mypy.api", reason="mypy is not installed (a dev tool)")
    cache = tmp_path_factory.mktemp("mypy_cache")
    stdout, stderr, status = api.run([
        "--config-file", str(CONFIG), "--cache-dir", str(cache), "--no-pretty",
        "--no-error-summary", str(ROOT / "workbench")])
    assert status in (0, 1), f"mypy itself failed (exit {status}):\n{stdout}{stderr}"
    errors = []
    for line in stdout.splitlines():
        found = _ERROR.match(line)
        if found:
            path = Path(found["path"])
            if path.is_absolute():
                path = path.relative_to(ROOT)
            errors.append(path.as_posix() + line[len(found["path"]):])
    assert status == 0 or errors, f"mypy failed without an error line:\n{stdout}{stderr}"
    return errors


def test_the_typed_packages_are_clean(mypy_errors: list[str]) -> None:
    mine = [e for e in mypy_errors if e.startswith(TYPED)]
    assert not mine, "mypy errors:\n" + "\n".join(mine)


def test_workbench_is_clean(mypy_errors: list[str]) -> None:
    assert not mypy_errors, f"{len(mypy_errors)} mypy errors:\n" + "\n".join(mypy_errors)
