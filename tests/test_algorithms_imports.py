"""The algorithms' import graph (distnewton/algorithms/ and distnewton/plugin*.py) has
no cycle: every module-level and function-level import of a distnewton module,
``from . import x`` taken as an import of the module x."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def modules():
    """{dotted name: path} of distnewton/algorithms and the plugin modules."""
    paths = [*(ROOT / "distnewton" / "algorithms").rglob("*.py"),
             ROOT / "distnewton" / "plugin.py", ROOT / "distnewton" / "plugins.py"]
    out = {}
    for p in paths:
        name = ".".join(p.relative_to(ROOT).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = p
    return out


def imports(name, path, known):
    """The modules of ``known`` that ``name`` imports."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
            found.update(f"{base}.{a.name}" if f"{base}.{a.name}" in known else base
                         for a in node.names)
    return found & set(known) - {name}


def test_no_import_cycle():
    known = modules()
    graph = {m: imports(m, p, known) for m, p in known.items()}
    done, path = set(), []

    def visit(m):
        if m in path:
            raise AssertionError("import cycle: " + " -> ".join(path[path.index(m):] + [m]))
        if m in done:
            return
        path.append(m)
        for n in sorted(graph[m]):
            visit(n)
        path.pop()
        done.add(m)

    for m in sorted(graph):
        visit(m)
    assert "distnewton.algorithms.registry" in graph["distnewton.algorithms"]
