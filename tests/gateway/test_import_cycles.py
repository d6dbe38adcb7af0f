"""No module of gateway/ imports itself through others: the import graph has no cycle.

import-linter's contracts keep the packages in their layers; this test looks at
modules, with type-checking imports counted (a cycle that only the type checker
sees is still two modules that cannot be read apart).
"""

from __future__ import annotations

import grimp


def _cycles(graph: grimp.ImportGraph, package: str) -> set[tuple[str, ...]]:
    """Each direct import that something imported by it leads back to, as its loop."""
    found: set[tuple[str, ...]] = set()
    for module in graph.modules:
        if not (module == package or module.startswith(f"{package}.")):
            continue
        for imported in graph.find_modules_directly_imported_by(module):
            back = graph.find_shortest_chain(importer=imported, imported=module)
            if back is not None:
                found.add((module, *back))
    return found


def test_no_import_cycle_between_modules_of_gateway() -> None:
    """Every module of gateway/ can be read without its importers."""
    graph = grimp.build_graph("gateway", exclude_type_checking_imports=False)
    assert _cycles(graph, "gateway") == set()


def test_the_cycle_finder_finds_a_cycle() -> None:
    """The finder itself: each import of a two-module and a three-module loop is reported."""
    graph = grimp.ImportGraph()
    for importer, imported in (("p.a", "p.b"), ("p.b", "p.a"), ("p.c", "p.d"), ("p.d", "p.e"),
                               ("p.e", "p.c"), ("p.e", "p.f")):  # fmt: skip
        graph.add_import(importer=importer, imported=imported)
    assert _cycles(graph, "p") == {
        ("p.a", "p.b", "p.a"), ("p.b", "p.a", "p.b"),
        ("p.c", "p.d", "p.e", "p.c"), ("p.d", "p.e", "p.c", "p.d"), ("p.e", "p.c", "p.d", "p.e"),
    }  # fmt: skip
