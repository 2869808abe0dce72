"""The project's import graph, read from the source with `ast` (nothing is imported).

Every `import` counts, also those inside functions or under `TYPE_CHECKING`: a deferred import
is still a dependency. Each subpackage is its own unit (`medallion.contracts`,
`medallion.databases`, `medallion.local`), the modules directly in `medallion/` form the app.

    python -m tests.support.imports          # the unit graph, then any module cycle
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("medallion", "generators", "spark_jobs")

# Which units each unit may import: the contracts at the bottom, the app at the top.
ALLOWED: dict[str, frozenset[str]] = {
    "medallion.contracts": frozenset(),
    "generators": frozenset({"medallion.contracts"}),
    "medallion.databases": frozenset({"medallion.contracts"}),
    "spark_jobs": frozenset({"medallion.contracts", "medallion.databases"}),
    "medallion.local": frozenset({"medallion.contracts", "medallion.databases"}),
    "medallion": frozenset(
        {"medallion.contracts", "generators", "medallion.databases", "spark_jobs", "medallion.local"}
    ),
}


def project_modules() -> dict[str, Path]:
    """Every module of the three packages by dotted name (a package by its own name)."""
    modules: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            modules[name] = path
    return modules


def unit_of(module: str, modules: dict[str, Path]) -> str:
    """The package a module belongs to (a package is its own unit)."""
    return module if modules[module].name == "__init__.py" else module.rpartition(".")[0]


def _imported_names(module: str, path: Path) -> Iterable[str]:
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def module_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports."""
    modules = project_modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for target in _imported_names(name, path):
            # `import a.b.c` also imports its parents; each one that is a module counts
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name and not name.startswith(target + "."):
                graph[name].add(target)
    return graph


def unit_graph(graph: dict[str, set[str]] | None = None) -> dict[str, set[str]]:
    """Unit -> the other units its modules import."""
    modules = project_modules()
    graph = module_graph() if graph is None else graph
    units: dict[str, set[str]] = defaultdict(set)
    for module, targets in graph.items():
        units[unit_of(module, modules)]  # every unit appears, also one that imports nothing
        for target in targets:
            if unit_of(target, modules) != unit_of(module, modules):
                units[unit_of(module, modules)].add(unit_of(target, modules))
    return dict(units)


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def main() -> None:
    graph = module_graph()
    for unit, targets in sorted(unit_graph(graph).items()):
        print(f"{unit} -> {', '.join(sorted(targets)) or '(nothing of the project)'}")
    module_cycles = cycles(graph)
    print(f"module cycles: {len(module_cycles)}")
    for component in module_cycles:
        print("  " + " <-> ".join(component))


if __name__ == "__main__":
    main()
