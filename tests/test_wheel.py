"""The built wheel carries the demo model and the darknet templates and runs without the clone.

An editable install reads resources/ and darknet_cfg/ from the source tree, which hides a wheel
that lacks them; here the wheel is built, unpacked into a folder with ``pip install --target``
and run with only that folder on the path (the venv's third-party packages stay usable).
CI also installs it into a fresh venv and trains one epoch: scripts/check_wheel.sh.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    # a copy without build/ and caches: a stale build/lib of an earlier wheel would hide a
    # build step that no longer copies the folders
    source = tmp_path_factory.mktemp("source") / "tree"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", "runs"))
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(source), "--quiet", "--no-deps",
                    "--no-build-isolation", "--disable-pip-version-check", "-w", str(out)],
                   check=True, timeout=300)
    (found,) = out.glob("*.whl")
    return found


def _shipped(root: str) -> set[str]:
    return {p.relative_to(ROOT).as_posix() for p in (ROOT / root).rglob("*")
            if p.is_file() and "__pycache__" not in p.parts}


@pytest.mark.slow
def test_wheel_holds_every_bundled_file(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = _shipped("resources") | _shipped("darknet_cfg")
    assert expected, "nothing to ship: the source folders are empty"
    missing = {f for f in expected if f"workbench/_bundled/{f}" not in names}
    assert not missing, f"the wheel lacks {sorted(missing)}"
    assert not any(n.startswith("tests/") for n in names)


@pytest.mark.slow
def test_installed_wheel_runs_the_demo_without_the_clone(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--disable-pip-version-check", "--target", str(target), str(wheel)],
                   check=True, timeout=300)
    env = {**os.environ, "PYTHONPATH": str(target)}
    where = subprocess.run(
        [sys.executable, "-c", "import workbench; from workbench.bundled import bundled_folder;"
         "print(workbench.__file__); print(bundled_folder('resources'));"
         "print(bundled_folder('darknet_cfg'))"],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=True, timeout=60)
    for line in where.stdout.splitlines():
        assert Path(line).resolve().is_relative_to(target.resolve()), where.stdout

    def workbench(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "workbench", *args], cwd=tmp_path,
                              env=env, capture_output=True, text=True, timeout=300)

    assert workbench("demo-data", "demo", "--images", "6", "--seed", "7").returncode == 0
    detect = workbench("detect", "demo", "--model", "demo", "--out", "found")
    assert detect.returncode == 0, detect.stderr
    assert list((tmp_path / "found").rglob("*.txt")), "the demo model wrote no detections"


@pytest.mark.parametrize(("extra", "package"),
                         [("train", "tensorflow"), ("int8", "nncf"), ("cluster", "ray")])
def test_install_hints_name_what_pip_can_install(extra, package):
    """The package is not on PyPI: a hint naming ``detection-workbench[extra]`` cannot work."""
    from workbench.extras import install_hint

    hint = install_hint(extra)
    assert "detection-workbench[" not in hint
    assert f'pip install "{package}' in hint, hint
    assert f'pip install -e ".[{extra}]"' in hint
