"""The code's floor plan, checked: no import cycle, no file over 500 lines, no function over
80 lines (except those listed in LONG_FUNCTIONS with their reason).

Run by .ci/run and by tests/test_code_shape.py; prints one line per problem and exits 1 on any.
Import cycles are counted between modules, TYPE_CHECKING imports included: a type-only import
still says which module knows which, and a circle of them is a circle in the design.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import grimp
import networkx as nx

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("workbench", "ui")
MAX_FILE_LINES = 500
MAX_FUNCTION_LINES = 80

# "path:function" -> why it may stay longer than MAX_FUNCTION_LINES
LONG_FUNCTIONS: dict[str, str] = {}


def import_cycles(packages: tuple[str, ...] = PACKAGES, root: Path = ROOT) -> list[list[str]]:
    """Every set of modules that import each other, directly or around a circle."""
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    graph = grimp.build_graph(*packages, exclude_type_checking_imports=False, cache_dir=None)
    edges = nx.DiGraph()
    for module in graph.modules:
        edges.add_node(module)
        for imported in graph.find_modules_directly_imported_by(module):
            edges.add_edge(module, imported)
    return sorted(sorted(c) for c in nx.strongly_connected_components(edges) if len(c) > 1)


def python_files(packages: tuple[str, ...] = PACKAGES, root: Path = ROOT) -> list[Path]:
    return sorted(p for package in packages for p in (root / package).rglob("*.py"))


def long_files(packages: tuple[str, ...] = PACKAGES, root: Path = ROOT) -> list[tuple[str, int]]:
    found = []
    for path in python_files(packages, root):
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_FILE_LINES:
            found.append((path.relative_to(root).as_posix(), lines))
    return found


def long_functions(packages: tuple[str, ...] = PACKAGES, root: Path = ROOT
                   ) -> list[tuple[str, int]]:
    """``path:qualified.name`` and its length in lines, for every function over the limit."""
    found = []
    for path in python_files(packages, root):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        rel = path.relative_to(root).as_posix()
        found += [(f"{rel}:{name}", length) for name, length in _functions(tree, "")
                  if length > MAX_FUNCTION_LINES]
    return found


def _functions(node: ast.AST, prefix: str):
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
            name = prefix + child.name
            yield name, child.end_lineno - child.lineno + 1
            yield from _functions(child, name + ".")
        elif isinstance(child, ast.ClassDef):
            yield from _functions(child, prefix + child.name + ".")


def problems() -> list[str]:
    lines = [f"import cycle: {' <-> '.join(c)}" for c in import_cycles()]
    lines += [f"{path}: {n} lines (at most {MAX_FILE_LINES})" for path, n in long_files()]
    lines += [f"{name}: {n} lines (at most {MAX_FUNCTION_LINES}; or give a reason in "
              "scripts/check_code_shape.py LONG_FUNCTIONS)"
              for name, n in long_functions() if name not in LONG_FUNCTIONS]
    return lines


def main() -> int:
    found = problems()
    for line in found:
        print(line)
    if not found:
        print("code shape: no import cycle, no file over "
              f"{MAX_FILE_LINES} lines, no function over {MAX_FUNCTION_LINES} lines")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
