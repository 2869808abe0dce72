"""The import graph stays a DAG with the contracts at the bottom (read from source, nothing run)."""

from __future__ import annotations

from tests.support.imports import (
    ALLOWED,
    cycles,
    module_graph,
    project_modules,
    unit_graph,
    unit_of,
)


def test_every_unit_imports_only_the_layers_below_it() -> None:
    units = unit_graph()
    assert set(units) == set(ALLOWED), "a new subpackage needs its place in ALLOWED"
    upward = {unit: sorted(targets - ALLOWED[unit]) for unit, targets in units.items()}
    assert {unit: bad for unit, bad in upward.items() if bad} == {}


def test_the_contract_layer_imports_nothing_else_of_the_project() -> None:
    modules = project_modules()
    outside = {
        module: sorted(t for t in targets if unit_of(t, modules) != "medallion.contracts")
        for module, targets in module_graph().items()
        if unit_of(module, modules) == "medallion.contracts"
    }
    assert {module: bad for module, bad in outside.items() if bad} == {}


def test_no_unit_cycle_and_no_module_cycle() -> None:
    graph = module_graph()
    assert cycles(unit_graph(graph)) == []
    assert cycles(graph) == []


def test_the_checker_sees_a_cycle_and_a_deferred_import() -> None:
    # The checker itself can fail: a made-up two-module cycle is found, and a function-level
    # import in the real code (the CLI defers every subcommand's import) is an edge.
    assert cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]
    assert "generators.commands" in module_graph()["medallion.cli"]
