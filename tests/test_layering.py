"""The layering of ARCHITECTURE.md, read from every import of every module
(function-level ones too): `protocol` <- `firmware`; `protocol` <-
`printer_drivers` <- `gateway` <- the CLI (tools/cli) <- the tools (demo,
bench, simulator, fleet, testbed). Nothing shipped imports `tests`, and no
module of ours imports itself back through others (no cycle).

A failure names the file and line of each import that breaks a rule."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHIPPED = ("protocol", "firmware", "printer_drivers", "gateway", "tools")
PACKAGES = (*SHIPPED, "tests")

# layer -> the layers it may import (itself included).
MAY_IMPORT: dict[str, set[str]] = {
    "protocol": {"protocol"},
    "firmware": {"firmware", "protocol"},
    "printer_drivers": {"printer_drivers", "protocol"},
    "gateway": {"gateway", "printer_drivers", "protocol"},
    "cli": {"cli", "gateway", "printer_drivers", "protocol"},
    "tools": {"tools", "cli", "gateway", "printer_drivers", "protocol", "firmware"},
    "tests": set(PACKAGES) | {"cli"},
}


@dataclass(frozen=True)
class Edge:
    source: str  # importing module
    target: str  # imported module of ours
    path: Path
    line: int

    def where(self) -> str:
        return "%s:%d" % (self.path.relative_to(REPO), self.line)


def layer(module: str) -> str:
    if module == "tools.cli" or module.startswith("tools.cli."):
        return "cli"
    return module.split(".")[0]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            if "__pycache__" not in path.parts:
                found[_module_name(path)] = path
    return found


MODULES = modules()


def _ours(name: str) -> str | None:
    """The deepest module of ours that `name` is or lies in."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def _imported(module: str, node: ast.Import | ast.ImportFrom) -> Iterator[str]:
    if isinstance(node, ast.Import):
        for alias in node.names:
            yield alias.name
        return
    base = node.module or ""
    if node.level:
        package = module.split(".") if MODULES[module].name == "__init__.py" else module.split(".")[:-1]
        package = package[: len(package) - node.level + 1]
        base = ".".join([*package, base] if base else package)
    for alias in node.names:
        sub = base + "." + alias.name
        yield sub if sub in MODULES else base


def edges() -> list[Edge]:
    out = []
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):  # every import, at module level or inside a function
            if isinstance(node, ast.Import | ast.ImportFrom):
                for name in _imported(module, node):
                    target = _ours(name)
                    if target is not None and target != module:
                        out.append(Edge(module, target, path, node.lineno))
    return out


EDGES = edges()


def test_the_import_reader_sees_every_package_and_function_level_imports() -> None:
    assert {layer(m) for m in MODULES} == {"protocol", "firmware", "printer_drivers", "gateway", "cli",
                                            "tools", "tests"}
    # gateway/stores.py opens PostgreSQL only when asked, with an import inside the function.
    assert any(e.source == "gateway.stores" and e.target == "gateway.store_pg" for e in EDGES)
    assert any(e.source == "protocol.session" and e.target == "protocol.errors" for e in EDGES)  # relative


@pytest.mark.parametrize("package", [*SHIPPED, "cli"])
def test_each_layer_imports_only_the_layers_below_it(package: str) -> None:
    wrong = ["%s imports %s: %s may import only %s" % (e.where(), e.target, package,
                                                       ", ".join(sorted(MAY_IMPORT[package])))
             for e in EDGES if layer(e.source) == package and layer(e.target) not in MAY_IMPORT[package]]
    assert not wrong, "\n".join(wrong)


def test_nothing_shipped_imports_the_tests() -> None:
    wrong = ["%s imports %s" % (e.where(), e.target) for e in EDGES
             if layer(e.source) != "tests" and layer(e.target) == "tests"]
    assert not wrong, "\n".join(wrong)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return groups


def test_no_import_cycle_among_our_modules() -> None:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for e in EDGES:
        graph[e.source].add(e.target)
    report = []
    for group in _cycles(graph):
        members = set(group)
        report.append("cycle: " + ", ".join(group))
        report += ["  %s imports %s" % (e.where(), e.target) for e in EDGES
                   if e.source in members and e.target in members]
    assert not report, "\n".join(report)


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
