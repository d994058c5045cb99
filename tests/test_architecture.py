"""The house's import rules, read from the source with `ast` (nothing is imported).

- No cycle between our modules. Every import statement counts: the ones inside functions (an
  import inside a function is how a cycle hides) and under `if TYPE_CHECKING:` (a cycle mypy
  and the reader still walk). `from pkg import name` is an edge to `pkg.name` when that is a
  module, to `pkg` (its `__init__`) otherwise. Importing `a.b.c` also runs `a/__init__` and
  `a/b/__init__`, so it is an edge to those too, unless the importer lives inside that package
  (its `__init__` has already run by then).
- No import inside a function, except in the CLI start-up places listed in `LAZY_IMPORTS_OK`
  (there the import is deferred so `bpfsleuth probes ...` does not pay for Slack, Celery or
  bcc). An import of anything, stdlib included, counts.

Each package is checked on its own, so a failure names the package it is in. Run this file as a
script (`python tests/test_architecture.py`) for the figures: modules per folder root, imports
inside functions, cycles, longest functions.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bot", "worker", "probes")

# Modules whose functions may import lazily: the CLI's start-up cost, nothing else. A module
# listed here is a command-line entry: it assembles commands and imports each one's dependencies
# only when that command runs.
LAZY_IMPORTS_OK: frozenset[str] = frozenset(
    {
        "bot.cli",  # the `bpfsleuth` entry point: assembles every package's commands
        "bot.alerts.cli",
        "worker.cli.app",  # options here, the work in worker.cli.<command>, imported on use
        "worker.cli.flows",
        "worker.mcp.cli",
        "probes.cli",
    }
)


@dataclass
class Import:
    module: str  # the importing module
    target: str  # the imported module (ours) or the top-level name (others)
    line: int
    in_function: str | None  # the enclosing function's name, if any
    ours: bool


@dataclass
class Graph:
    modules: dict[str, Path] = field(default_factory=dict)
    imports: list[Import] = field(default_factory=list)

    def edges(self) -> dict[str, set[str]]:
        out: dict[str, set[str]] = defaultdict(set)
        for imp in self.imports:
            if not imp.ours:
                continue
            parts = imp.target.split(".")
            for n in range(1, len(parts) + 1):
                target = ".".join(parts[:n])
                inside = imp.module.startswith(target + ".")
                if target != imp.module and not inside and target in self.modules:
                    out[imp.module].add(target)
        return out


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _walk(node: ast.AST, func: str | None) -> Iterator[tuple[ast.AST, str | None]]:
    for child in ast.iter_child_nodes(node):
        inner = func
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
            inner = child.name if func is None else f"{func}.{child.name}"
        yield child, func
        yield from _walk(child, inner)


def build_graph(packages: tuple[str, ...] = PACKAGES) -> Graph:
    graph = Graph()
    for pkg in packages:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            graph.modules[module_name(path)] = path
    for name, path in graph.modules.items():
        is_pkg = path.name == "__init__.py"
        tree = ast.parse(path.read_text(), filename=str(path))
        for node, func in _walk(tree, None):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    graph.imports.append(_resolve(graph, name, alias.name, node.lineno, func))
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = name.split(".")
                    drop = node.level - 1 if is_pkg else node.level
                    anchor = anchor[: len(anchor) - drop] if drop else anchor
                    base = ".".join([*anchor, *([base] if base else [])])
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    target = sub if sub in graph.modules else base
                    graph.imports.append(_resolve(graph, name, target, node.lineno, func))
    return graph


def _resolve(graph: Graph, module: str, target: str, line: int, func: str | None) -> Import:
    probe = target
    while probe and probe not in graph.modules:
        probe = probe.rpartition(".")[0]
    if probe:
        return Import(module, probe, line, func, ours=True)
    return Import(module, target.split(".")[0], line, func, ours=False)


def cycles(graph: Graph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    edges = graph.edges()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp: list[str] = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in sorted(graph.modules):
        if v not in index:
            visit(v)
    return sorted(found)


def _in(pkg: str, module: str) -> bool:
    return module == pkg or module.startswith(pkg + ".")


def lazy_imports(graph: Graph, pkg: str, *, allowed: bool) -> list[Import]:
    """Imports of our own modules inside functions. A third-party import may wait inside a
    function where the library is optional on a host (bcc) or costly to load on a path that
    does not need it (the Slack SDK's error types): that is no hidden edge between our modules."""
    return [
        imp
        for imp in graph.imports
        if imp.in_function is not None
        and imp.ours
        and _in(pkg, imp.module)
        and (imp.module in LAZY_IMPORTS_OK) == allowed
    ]


@pytest.fixture(scope="module")
def graph() -> Graph:
    return build_graph()


def _check_cycles(graph: Graph, pkg: str) -> None:
    mine = [c for c in cycles(graph) if any(_in(pkg, m) for m in c)]
    assert not mine, f"import cycles touching {pkg}/:\n" + "\n".join(" <-> ".join(c) for c in mine)


def _check_lazy(graph: Graph, pkg: str) -> None:
    bad = lazy_imports(graph, pkg, allowed=False)
    assert not bad, (
        f"imports inside functions in {pkg}/ outside the CLI start-up places "
        "(LAZY_IMPORTS_OK): move them to the top of the module, and break the cycle if "
        "that makes one:\n"
        + "\n".join(f"  {i.module}:{i.line} in {i.in_function}(): {i.target}" for i in bad)
    )


PACKAGES = ["bot", "worker", "probes"]


@pytest.mark.parametrize("pkg", PACKAGES)
def test_no_import_cycle(graph: Graph, pkg: str) -> None:
    _check_cycles(graph, pkg)


@pytest.mark.parametrize("pkg", PACKAGES)
def test_our_modules_are_imported_only_at_module_level(graph: Graph, pkg: str) -> None:
    _check_lazy(graph, pkg)


# Leaves of the worker and what each may import of ours (its own package aside).
LEAVES: dict[str, frozenset[str]] = {
    "worker.protocol": frozenset({"probes", "probes.models"}),  # the reply parser loads no flows
    "worker.keys": frozenset(),
    "worker.settings": frozenset(),
    "worker.policy": frozenset({"worker.protocol", "worker.settings"}),
}


@pytest.mark.parametrize("leaf", sorted(LEAVES))
def test_the_leaves_stay_leaves(graph: Graph, leaf: str) -> None:
    edges = graph.edges()
    beyond = {
        f"{module} -> {target}"
        for module in graph.modules
        if _in(leaf, module)
        for target in edges.get(module, ())
        if not _in(leaf, target) and target not in LEAVES[leaf]
    }
    assert not beyond, f"{leaf} is a leaf; it imports: {sorted(beyond)}"


def test_nothing_imports_the_celery_app(graph: Graph) -> None:
    """The app is a composition root: `celery -A worker.distributed.app` is its only user."""
    assert "worker.distributed.app" in graph.modules
    users = sorted(m for m, targets in graph.edges().items() if "worker.distributed.app" in targets)
    assert users == []


def test_the_checker_sees_a_cycle_and_a_lazy_import(tmp_path: Path) -> None:
    """The rules above can fail: a hidden cycle through a function-level import is found."""
    a = ast.parse("import os\n\ndef f():\n    from worker import b\n")
    found = [n for n, fn in _walk(a, None) if isinstance(n, ast.ImportFrom)]
    assert len(found) == 1
    g = Graph(modules={"worker.a": tmp_path / "a.py", "worker.b": tmp_path / "b.py"})
    g.imports = [
        Import("worker.a", "worker.b", 4, "f", ours=True),
        Import("worker.b", "worker.a", 1, None, ours=True),
    ]
    assert cycles(g) == [["worker.a", "worker.b"]]
    assert [i.module for i in lazy_imports(g, "worker", allowed=False)] == ["worker.a"]
    # importing worker.loop.bounds runs worker/loop/__init__, which imports worker.view
    g.modules.update({m: tmp_path for m in ("worker.loop", "worker.loop.bounds", "worker.view")})
    g.imports = [
        Import("worker.view", "worker.loop.bounds", 1, None, ours=True),
        Import("worker.loop", "worker.view", 1, None, ours=True),
    ]
    assert cycles(g) == [["worker.loop", "worker.view"]]
    # ... but a module inside worker.loop importing its sibling does not re-run the __init__
    g.imports = [
        Import("worker.loop.bounds", "worker.loop.steps", 1, None, ours=True),
        Import("worker.loop", "worker.loop.bounds", 1, None, ours=True),
    ]
    assert cycles(g) == []


def _longest_functions(pkg: str, n: int = 8) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    for path in sorted((ROOT / pkg).rglob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                out.append((length, f"{module_name(path)}.{node.name}"))
    return sorted(out, reverse=True)[:n]


def main() -> None:
    graph = build_graph()
    for pkg in PACKAGES:
        root = [p for p in (ROOT / pkg).glob("*.py") if p.name != "__init__.py"]
        lazy = [i for i in graph.imports if i.in_function and _in(pkg, i.module)]
        ours = [i for i in lazy if i.ours]
        outside = [i for i in ours if i.module not in LAZY_IMPORTS_OK]
        mine = [c for c in cycles(graph) if any(_in(pkg, m) for m in c)]
        print(f"{pkg}/: {len(root)} modules at its root")
        print(
            f"  imports inside functions: {len(lazy)} (of our modules: {len(ours)},"
            f" of which outside the CLI allowlist: {len(outside)})"
        )
        print(f"  cycles: {len(mine)}")
        for c in mine:
            print("    " + " <-> ".join(c))
        print("  longest functions:")
        for length, name in _longest_functions(pkg, 5):
            print(f"    {length:4d} {name}")


if __name__ == "__main__":
    main()
