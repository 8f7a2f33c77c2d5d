"""The import graph of the installed package: no cycle between files, and the layers of DESIGN.md.

Every ``import`` statement counts, at module level or inside a function (a lazy import is
still a dependency), read with ``ast`` from the files of the installed ``fewbits`` package.
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest

# DESIGN.md, "Layout": which layer may import which.  ``fewbits.files`` is the one leaf module
# every layer may use (cache root, atomic writes); it imports nothing of the project.
LAYERS = {
    "sim": set(),
    "training": {"sim"},
    "hw": {"sim"},
    "cosim": {"sim", "hw"},
    "app": {"sim", "training", "hw", "cosim"},
}
LEAF = "fewbits.files"
# The one sanctioned upward edge: ``MacSpec.create()`` returns the hardware of a spec, as
# Amaranth's ``lib/crc`` ``Parameters.create()`` does; it imports ``fewbits.hw`` only when called.
ALLOWED = {("fewbits.sim.spec", "fewbits.hw")}


def package_files() -> dict[str, Path]:
    """Module name -> source file, for every module of the installed ``fewbits`` distribution."""
    spec = importlib.util.find_spec("fewbits")
    mods: dict[str, Path] = {}

    def walk(name: str) -> None:
        s = importlib.util.find_spec(name)
        for loc in s.submodule_search_locations or []:
            for f in sorted(Path(loc).glob("*.py")):
                mod = name if f.stem == "__init__" else f"{name}.{f.stem}"
                mods[mod] = f
            for d in sorted(Path(loc).iterdir()):
                if (d / "__init__.py").is_file():
                    walk(f"{name}.{d.name}")

    assert spec is not None and spec.submodule_search_locations
    # the layer packages are mapped folders (pyproject's package-dir), not sub-folders of fewbits/
    for name in ("fewbits", "fewbits.sim", "fewbits.training", "fewbits.hw", "fewbits.cosim"):
        walk(name)
    return mods


def layer(mod: str) -> str:
    parts = mod.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ("sim", "training", "hw", "cosim") else "app"


def imports_of(mod: str, path: Path, known: set[str]) -> set[str]:
    """The project modules that ``mod`` imports (relative imports resolved; ``from p import m`` -> p.m)."""
    pkg = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = pkg.split(".")[: len(pkg.split(".")) - (node.level - 1)]
                base = ".".join(up + ([base] if base else []))
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for n in names:
            while n and n not in known:  # "fewbits.sim.parse.x" -> the module "fewbits.sim.parse"
                n = n.rpartition(".")[0]
            if n and n != mod and n.startswith("fewbits"):
                out.add(n)
    return out


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    files = package_files()
    known = set(files)
    return {m: imports_of(m, p, known) for m, p in files.items()}


def test_the_walk_sees_the_package(graph):
    assert {"fewbits.sim.mac", "fewbits.hw.mac", "fewbits.cosim.runner", "fewbits.training.trainer",
            "fewbits.cli", LEAF} <= set(graph)
    assert "fewbits.sim.fixed" in graph["fewbits.sim.parse"] or "fewbits.sim.fixed" in graph["fewbits.sim"]


def test_layers_follow_design_md(graph):
    bad = []
    for mod, deps in graph.items():
        for dep in deps:
            if dep == LEAF or (mod, dep) in ALLOWED or layer(dep) == layer(mod):
                continue
            if layer(dep) not in LAYERS[layer(mod)]:
                bad.append(f"{mod} -> {dep}")
    assert not bad, "imports DESIGN.md's layer table forbids: " + "; ".join(sorted(bad))


def test_the_leaf_imports_nothing_of_the_project(graph):
    assert graph[LEAF] == set()


def test_no_cycle_between_files(graph):
    """No file is imported by a file it imports, directly or through others (package __init__s included)."""
    edges = {m: {d for d in deps if (m, d) not in ALLOWED} for m, deps in graph.items()}
    # a package's __init__ re-exporting its submodules is not a cycle with them: ``import a.b`` runs a/__init__
    # first, and a/__init__ importing a.b is the usual re-export; count only edges into sibling files
    cycles = []
    state: dict[str, int] = {}

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        stack.append(m)
        for d in sorted(edges.get(m, ())):
            if m.startswith(d + "."):  # a module importing its own package (__init__ re-exports)
                continue
            if state.get(d) == 1:
                cycles.append(" -> ".join(stack[stack.index(d):] + [d]))
            elif d not in state:
                visit(d, stack)
        stack.pop()
        state[m] = 2

    for m in sorted(edges):
        if m not in state:
            visit(m, [])
    assert not cycles, "import cycles between files: " + "; ".join(cycles)
