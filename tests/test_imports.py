"""The package's import graph has no cycle, and no test module imports another.

The graph is built from the source (``ast``), not by importing: an edge A -> B
for every ``import``/``from ... import`` of a distnewton module B in module A,
at module level or inside a function (an import moved into a function to dodge
a cycle is still an edge).  ``from pkg import name`` is an edge to ``pkg.name``
when that is a module, else to ``pkg``.

The tests' own files are read the same way: what several test modules use lives in
tests/support/ and tests/conftest.py, so no file under tests/ imports a ``test_*``
module, at module level or inside a function.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

from support.launch import ROOT

PACKAGE = "distnewton"


def modules(root=ROOT):
    """{module name: file} of every module of the package."""
    out = {}
    for folder, _, files in os.walk(os.path.join(root, PACKAGE)):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                mod = os.path.relpath(path, root)[:-3].replace(os.sep, ".")
                out[mod[:-len(".__init__")] if mod.endswith(".__init__") else mod] = path
    return out


def target(mod, path, node):
    """The module an ImportFrom names (relative imports resolved)."""
    if not node.level:
        return node.module
    parts = mod.split(".") if path.endswith("__init__.py") else mod.split(".")[:-1]
    parts = parts[:len(parts) - (node.level - 1)]
    return ".".join(parts + ([node.module] if node.module else []))


def import_graph(root=ROOT):
    """{module: set of distnewton modules it imports} (module and function level)."""
    mods = modules(root)
    graph = {m: set() for m in mods}
    for mod, path in mods.items():
        with open(path, encoding="utf-8") as fh:
            tree = ast.parse(fh.read(), path)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = target(mod, path, node)
                names = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base
                         for a in node.names]
            else:
                continue
            graph[mod].update(n for n in names if n in mods and n != mod)
    return graph


def cycles(graph):
    """The strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_graph_finds_a_planted_cycle(tmp_path):
    pkg = tmp_path / PACKAGE
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .sub import b\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "b.py").write_text("def f():\n    from ..a import x\n")
    (pkg / "c.py").write_text("import distnewton.a\n")
    graph = import_graph(str(tmp_path))
    assert graph["distnewton.a"] == {"distnewton.sub.b"}
    assert graph["distnewton.c"] == {"distnewton.a"}
    assert cycles(graph) == [["distnewton.a", "distnewton.sub.b"]]


def test_no_import_cycle():
    graph = import_graph()
    assert len(graph) > 50 and graph["distnewton.session"]
    assert cycles(graph) == []


def test_only_the_session_builds_runtimes_and_shards():
    """One way a run is assembled: outside runtime/ (which defines them), only
    distnewton/session.py constructs a SimRuntime, an MPIRuntime or a Shard."""
    builders = {}
    for mod, path in modules().items():
        if mod.startswith(f"{PACKAGE}.runtime"):
            continue
        with open(path, encoding="utf-8") as fh:
            tree = ast.parse(fh.read(), path)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                    and node.func.id in ("SimRuntime", "MPIRuntime", "Shard"):
                builders.setdefault(node.func.id, set()).add(mod)
    assert builders == {name: {f"{PACKAGE}.session"}
                        for name in ("SimRuntime", "MPIRuntime", "Shard")}


def imports_of_test_modules(folder=ROOT / "tests"):
    """{file under folder: the ``test_*`` modules it imports}, for the files that import one."""
    out = {}
    for path in sorted(Path(folder).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        names = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                names.update([node.module] if node.module else [a.name for a in node.names])
        found = sorted(n for n in names if n.split(".")[0].startswith("test_"))
        if found:
            out[path.relative_to(folder).as_posix()] = found
    return out


def test_the_check_finds_planted_test_module_imports(tmp_path):
    (tmp_path / "support").mkdir()
    (tmp_path / "test_a.py").write_text("import numpy\nfrom support.launch import cli\n"
                                        "from test_b import helper\n")
    (tmp_path / "test_b.py").write_text("def helper():\n    import test_c as c\n")
    (tmp_path / "test_c.py").write_text("from . import test_a\nfrom .test_b import helper\n")
    (tmp_path / "test_d.py").write_text("import testing\nfrom support import launch\n")
    (tmp_path / "support" / "h.py").write_text("from test_a import x\n")
    assert imports_of_test_modules(tmp_path) == {
        "support/h.py": ["test_a"], "test_a.py": ["test_b"], "test_b.py": ["test_c"],
        "test_c.py": ["test_a", "test_b"]}


def test_no_test_module_imports_another():
    assert imports_of_test_modules() == {}
