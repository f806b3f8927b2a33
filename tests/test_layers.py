"""The core stands alone: no Qt, and no TensorFlow unless training or the TF backend runs."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Every core module except the ones that exist to drive TensorFlow.
CHECK = r"""
import importlib, pkgutil, sys
sys.modules["PySide6"] = None           # any import of Qt now fails loudly
import workbench
tf_modules = ("workbench.train", "workbench.detect.engines.tensorflow")
names = [m.name for m in pkgutil.walk_packages(workbench.__path__, "workbench.")
         if not m.name.startswith(tf_modules) and m.name != "workbench.__main__"]
for name in names:
    importlib.import_module(name)
from workbench.cli import build_parser
build_parser()
loaded = sorted(m for m in ("tensorflow", "keras", "PySide6", "ui") if sys.modules.get(m))
print(len(names), loaded)
"""


def test_every_core_module_imports_without_qt_or_tensorflow():
    done = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    count, loaded = done.stdout.split(" ", 1)
    assert int(count) > 40
    assert loaded.strip() == "[]"


def test_the_gui_verb_without_qt_is_one_clear_line():
    code = ("import sys; sys.modules['PySide6'] = None; from workbench.cli import main; "
            "sys.exit(main(['gui']))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=60)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "PySide6" in done.stderr
