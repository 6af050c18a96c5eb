"""The shape of the package, read from its source: module sizes, imports, the registry.

These hold the layering that keeps Cadenza readable: a module reads in one sitting, no
module reaches into another's private names, modules import each other in one direction
only (even an import deferred into a function counts), and every model kind's pieces are
where the registry says.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from cadenza.kinds import ROLES, all_kinds
from cadenza.plugins.base import AudioGenerator, BackingGenerator, EventGenerator

PACKAGE = Path(__file__).resolve().parents[1] / "cadenza"
MAX_LINES = 400


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(path: Path) -> list[tuple[str, list[str]]]:
    """(module, names) for every import in the file, at any depth (a deferred import in a
    function is an import all the same)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, [alias.name for alias in node.names]))
    return found


def edges_of(name: str) -> set[str]:
    """The package's modules that `name` imports (a submodule imported by `from pkg import
    sub` counts as that submodule)."""
    targets = set()
    for module, names in imports_of(MODULES[name]):
        if not module.startswith("cadenza"):
            continue
        subs = {f"{module}.{n}" for n in names if f"{module}.{n}" in MODULES}
        targets |= subs or {module}
        if not subs and names and module not in MODULES:
            targets.add(module)
    return {t for t in targets if t in MODULES and t != name and not name.startswith(t + ".")}


@pytest.mark.parametrize("name", sorted(MODULES))
def test_a_module_reads_in_one_sitting(name):
    lines = len(MODULES[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{MODULES[name]} has {lines} lines (at most {MAX_LINES})"


def test_no_module_imports_another_modules_private_names():
    offences = [
        f"{name} imports {module}.{imported}"
        for name in MODULES
        for module, names in imports_of(MODULES[name])
        if module.startswith("cadenza")
        for imported in names
        if imported.startswith("_") and f"{module}.{imported}" not in MODULES
    ]
    assert offences == []


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's components of more than one module: each is an import cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
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
                cycles.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return cycles


def test_modules_import_each_other_in_one_direction_only():
    graph = {name: edges_of(name) for name in MODULES}
    assert strongly_connected(graph) == []


def test_the_runtime_never_imports_torch():
    runtime = [n for n in MODULES if n.startswith(("cadenza.plugins", "cadenza.realtime"))]
    runtime += ["cadenza.bundle", "cadenza.kinds"]
    offences = [
        f"{name} imports {module}"
        for name in runtime
        for module, _ in imports_of(MODULES[name])
        if module.split(".")[0] == "torch" or module.startswith(("cadenza.training",
                                                                 "cadenza.export"))
    ]
    assert offences == []


@pytest.mark.parametrize("kind", sorted(all_kinds()))
def test_every_piece_the_registry_names_exists(kind):
    declared = all_kinds()[kind]
    for role in ROLES:
        if getattr(declared, role) is not None:
            assert callable(declared.piece(role)), f"{kind}: {role}"


@pytest.mark.parametrize("kind", sorted(all_kinds()))
def test_a_kinds_live_mode_is_what_its_plugin_can_play(kind):
    declared = all_kinds()[kind]
    makes = {"backing": BackingGenerator, "call-response": EventGenerator}.get(declared.live)
    if makes is not None:
        assert issubclass(declared.piece("runtime"), makes)
    elif declared.runtime is not None and declared.evaluator is not None:
        assert issubclass(declared.piece("runtime"), AudioGenerator)  # codec-lm: `cadenza audio`
