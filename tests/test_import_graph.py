"""`course_utils` has no import cycle.

The graph is read from the source with ``ast`` (nothing is imported): an edge ``a -> b`` for
every ``import``/``from ... import`` in module ``a`` that loads module ``b`` of the package
(``from course_utils.models import registry`` loads ``course_utils.models`` and
``course_utils.models.registry``). A module's own parent packages are not edges: Python has
initialized them before the module runs.

Imports inside functions count as much as those at the top of a module (and so do those under
``if TYPE_CHECKING``): a lazy import changes *when* a module is loaded, not *which* module
depends on which, so a cycle closed by one is still a cycle of the design. Decided here: no
exemption for the lazy imports that keep TensorFlow (or matplotlib) out of a module until a
function needs it (``plotting``'s of ``engine`` and ``attribution``, ``__main__``'s of
``models``, ``features.visualize.plot``'s of ``features.plotting``): each of them points one
way only, and must keep doing so.

There is no allowlist any more: ``features.plotting`` <-> ``features.visualize`` went with the
display layer, and ``models.efficientnet_lite`` <-> ``models.imagenet`` (a lazy import of
``WeightsUnavailableError``) went when that error moved to ``models.registry``, below both.
The engine (``course_utils.engine``) also never imports the modules that use it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import course_utils

ROOT = Path(course_utils.__file__).parent
PACKAGE = ROOT.name


def modules() -> dict[str, Path]:
    """``{dotted name: file}`` of every module of the package (a package is its __init__)."""
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _loaded(node: ast.Import | ast.ImportFrom, module: str, is_package: bool,
            known: set[str]) -> set[str]:
    """The package's modules that running one import statement loads."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:  # relative: resolve against the importing module's package
            anchor = module.split(".") if is_package else module.split(".")[:-1]
            anchor = anchor[:len(anchor) - (node.level - 1)]
            base = ".".join(anchor + ([base] if base else []))
        # `from pkg import name`: name is a submodule, or an attribute of pkg
        names = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base
                 for a in node.names]
    out = set()
    for name in names:
        parts = name.split(".")
        for i in range(1, len(parts) + 1):  # importing a.b.c runs a, a.b and a.b.c
            prefix = ".".join(parts[:i])
            if prefix in known and prefix != module and not module.startswith(prefix + "."):
                out.add(prefix)
    return out


def _imports(node: ast.AST, function: str | None = None):
    """Every import statement under ``node``, with the function it is in (None: module level)."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            yield child, function
        inner = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) \
            else function
        yield from _imports(child, inner)


def import_graph() -> dict[str, dict[str, str]]:
    """``{module: {imported module: where}}``, ``where`` being the first such import's
    ``file:line`` and, for an import inside a function, ``in <function>()``."""
    mods = modules()
    known = set(mods)
    graph: dict[str, dict[str, str]] = {}
    for name, path in mods.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        edges = graph[name] = {}
        for node, function in _imports(tree):
            where = f"{path.relative_to(ROOT.parent)}:{node.lineno}" + (
                f" in {function}()" if function else "")
            for target in _loaded(node, name, path.name == "__init__.py", known):
                edges.setdefault(target, where)
    return graph


def find_cycles(graph: dict[str, dict[str, str]] | dict[str, set[str]]) -> list[list[str]]:
    """One cycle ``[a, b, ..., a]`` per group of modules that import each other (a strongly
    connected component, Tarjan), the shortest through the group's first module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                group.add(w)
                if w == v:
                    break
            if len(group) > 1 or v in graph.get(v, ()):
                groups.append(group)

    for v in sorted(graph):
        if v not in index:
            visit(v)

    cycles = []
    for group in groups:  # breadth-first from the first module back to itself
        start = min(group)
        paths = {w: [start, w] for w in sorted(graph[start]) if w in group}
        frontier = list(paths)
        while start not in paths:
            nxt = []
            for v in frontier:
                for w in sorted(graph.get(v, ())):
                    if w in group and w not in paths:
                        paths[w] = paths[v] + [w]
                        nxt.append(w)
            frontier = nxt
        cycles.append(paths[start])
    return cycles


def describe(cycle: list[str], graph: dict[str, dict[str, str]]) -> str:
    return "\n".join(f"  {a} -> {b}  ({graph[a][b]})" for a, b in zip(cycle, cycle[1:]))


def test_every_module_is_read_and_known_edges_are_seen():
    graph = import_graph()
    assert len(graph) >= 40 and f"{PACKAGE}.models.registry" in graph
    imagenet = graph[f"{PACKAGE}.models.imagenet"]
    assert f"{PACKAGE}.models.efficientnet_lite" in imagenet  # `from pkg import submodule`
    assert f"{PACKAGE}.models.registry" in imagenet  # `from pkg.module import name`
    assert f"{PACKAGE}.config" in imagenet
    assert f"{PACKAGE}.models" not in imagenet  # its own package is not an edge
    # an import inside a function is an edge too, and says where it is
    plot = graph[f"{PACKAGE}.features.visualize"][f"{PACKAGE}.features.plotting"]
    assert plot.endswith("in plot()")
    # importing a submodule of another package runs that package's __init__
    assert f"{PACKAGE}.models" in graph[f"{PACKAGE}.widgets.attribution"]
    assert f"{PACKAGE}.engine.scoring" in graph[f"{PACKAGE}.engine.inputs"]
    assert f"{PACKAGE}.attribution.template" in graph[f"{PACKAGE}.attribution.cam_family"]


def test_find_cycles_on_constructed_graphs():
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": {"a"}}) == [["a", "a"]]
    two = find_cycles({"a": {"b", "x"}, "b": {"a"}, "x": {"y"}, "y": {"x"}})
    assert sorted(two) == [["a", "b", "a"], ["x", "y", "x"]]
    # the shortest way back through the first module, not the first one found
    assert find_cycles({"a": {"b", "c"}, "b": {"c"}, "c": {"a"}}) == [["a", "c", "a"]]


@pytest.mark.parametrize("source, expected", [
    ("from . import cache", {"pkg.cache"}),
    ("from .sub import mod", {"pkg.sub", "pkg.sub.mod"}),
    ("from ..cache import key_of", {"pkg.cache"}),
    ("import pkg.sub.mod as m", {"pkg.sub", "pkg.sub.mod"}),
    ("from pkg.sub import some_function", {"pkg.sub"}),
    ("import numpy", set()),
])
def test_relative_and_absolute_imports_resolve(source, expected):
    known = {"pkg", "pkg.cache", "pkg.sub", "pkg.sub.mod", "pkg.sub.other"}
    (node,) = ast.parse(source).body
    module, is_package = ("pkg.sub.other", False) if source.startswith("from ..") else (
        "pkg.mod2", False)
    assert _loaded(node, module, is_package, known) == expected


def test_no_import_cycle():
    graph = import_graph()
    found = find_cycles(graph)
    assert not found, "import cycles in course_utils:\n" + "\n\n".join(
        describe(cycle, graph) for cycle in found)


def test_engine_does_not_import_its_users():
    users = tuple(f"{PACKAGE}.{p}" for p in ("attribution", "features", "metrics", "widgets"))
    for name, edges in import_graph().items():
        if name.startswith(f"{PACKAGE}.engine"):
            wrong = sorted(e for e in edges if e.startswith(users))
            assert not wrong, f"{name} imports its users: " + ", ".join(
                f"{e} ({edges[e]})" for e in wrong)
