"""Build step that ships the top-level ``resources/`` and ``darknet_cfg/`` folders in the wheel.

Everything else about the package is in pyproject.toml. The two folders sit outside the
``workbench`` package (the project layout keeps them at the top), and package data cannot
reach outside a package, so the wheel's build copies them into ``workbench/_bundled/``, where
``workbench.bundled`` finds them with ``importlib.resources``. An editable install reads
them from the clone instead and needs no copy.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
BUNDLED = ("resources", "darknet_cfg")  # workbench/bundled.py: FOLDERS


class BuildWithBundledFolders(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        for name in BUNDLED:
            source = HERE / name
            target = Path(self.build_lib) / "workbench" / "_bundled" / name
            if target.exists():
                shutil.rmtree(target)
            # never ship caches or editor leftovers
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".*"))


setup(cmdclass={"build_py": BuildWithBundledFolders})
