"""The floor plan holds: no import cycle, no file over 500 lines, no function over 80 lines
(scripts/check_code_shape.py, also run by .ci/run), and the checker itself finds each kind,
type-only imports included."""

from __future__ import annotations

import importlib.util
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _checker():
    spec = importlib.util.spec_from_file_location("check_code_shape",
                                                  ROOT / "scripts" / "check_code_shape.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_code_has_its_shape():
    assert _checker().problems() == []


def _probe_package(tmp_path: Path, monkeypatch, name: str, modules: dict[str, str]) -> None:
    """``tmp_path/name``, a package of these modules (file name -> text), importable."""
    package = tmp_path / name
    package.mkdir()
    (package / "__init__.py").write_text("")
    for file_name, text in modules.items():
        (package / file_name).write_text(text)
    monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])


def test_the_checker_finds_a_cycle_a_long_file_and_a_long_function(tmp_path, monkeypatch):
    check = _checker()
    body = "\n".join(f"    x{i} = {i}" for i in range(check.MAX_FUNCTION_LINES))
    _probe_package(tmp_path, monkeypatch, "shape_probe", {
        "a.py": "from shape_probe import b\n",
        "b.py": "from typing import TYPE_CHECKING\n\nfrom shape_probe import c\n\n"
                "if TYPE_CHECKING:\n    from shape_probe import a\n",
        "c.py": "from shape_probe import a\n",
        "long.py": textwrap.dedent("""\
            class K:
                def short(self):
                    return 1
            """) + "\n\ndef long_one():\n" + body + "\n" + "\n" * check.MAX_FILE_LINES,
    })
    assert check.import_cycles(("shape_probe",), tmp_path) == [
        ["shape_probe.a", "shape_probe.b", "shape_probe.c"]]
    assert [name for name, _ in check.long_functions(("shape_probe",), tmp_path)] == [
        "shape_probe/long.py:long_one"]
    assert [path for path, _ in check.long_files(("shape_probe",), tmp_path)] == [
        "shape_probe/long.py"]


def test_a_type_only_import_closes_a_cycle_too(tmp_path, monkeypatch):
    check = _checker()
    _probe_package(tmp_path, monkeypatch, "shape_probe2", {
        "a.py": "from shape_probe2 import b\n",
        "b.py": "from typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n"
                "    from shape_probe2 import a\n",
    })
    assert check.import_cycles(("shape_probe2",), tmp_path) == [["shape_probe2.a", "shape_probe2.b"]]
