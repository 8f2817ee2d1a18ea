"""MkDocs hooks (``hooks:`` in mkdocs.yml): the parts of the site that are generated.

- ``<!-- distnewton:config [SECTION] [noheadings] [plugin=FOLDER:MODULE] -->`` becomes the
  configuration reference of SECTION (every section without one), rendered by
  :func:`distnewton.confdoc.render_markdown` from the schema of this checkout:
  the same keys, types, defaults and meanings as ``distnewton config``.  Only
  the built-in algorithms (and those of ``plugin=``) are listed, whatever
  plugins the building environment has installed.
- ``<!-- distnewton:schema TABLE -->`` becomes a table of the result format from
  :mod:`distnewton.io.schema` (TABLE: ``root``, ``history``, ``algorithm``,
  ``model``): the same words the file's ``description`` attributes carry.
- ``<!-- distnewton:include PATH -->`` becomes the file PATH (relative to the
  repository root), its headings two levels deeper.
- Every ``benchmarks/results/NAME.md`` becomes the page
  ``benchmarks/results/NAME.md`` of the site, and ``CHANGELOG.md`` the page
  ``changelog.md``: the numbers and the history have one home each.
"""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:           # the distnewton of this checkout
    sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "benchmarks" / "results"
DIRECTIVE = re.compile(r"^<!-- distnewton:(config|include|schema)\b([^>]*?)-->[ \t]*$", re.M)
HEADING = re.compile(r"^(#{1,4}) ")


def config_markdown(args):
    """``[SECTION] [noheadings] [plugin=FOLDER:MODULE]``: the reference of SECTION;
    ``plugin=`` adds the algorithms MODULE (importable from FOLDER) registers, for a
    plugin that is not installed where the site is built (examples/dane_plugin)."""
    from distnewton import confdoc
    from distnewton.plugin import Algorithm
    words = args.split()
    options = dict(w.split("=", 1) for w in words if "=" in w)
    words = [w for w in words if "=" not in w]
    registry = confdoc.builtin_algorithms()
    if "plugin" in options:
        folder, module = options["plugin"].split(":")
        sys.path.insert(0, str(ROOT / folder))
        mod = importlib.import_module(module)
        registry.update({cls.name: cls for cls in vars(mod).values() if isinstance(cls, type)
                         and issubclass(cls, Algorithm) and cls is not Algorithm})
    return confdoc.render_markdown(words[0] if words else None, registry,
                                   headings="noheadings" not in words)


def schema_markdown(args):
    """A table of :mod:`distnewton.io.schema`: ``root``, ``history``, ``algorithm``
    (the built-in algorithms' own columns) or ``model``."""
    from distnewton.io import schema
    tables = {
        "root": ("attribute", schema.ROOT_ATTRIBUTES),
        "history": ("column", {**{k: v[1] for k, v in schema.BASE_COLUMNS.items()},
                               **{k: v[1] for k, v in schema.TIMING_COLUMNS.items()},
                               **schema.RUN_COLUMNS}),
        "algorithm": ("column", schema.ALGORITHM_COLUMNS),
        "model": ("attribute of /model/w", schema.MODEL_ATTRIBUTES),
    }
    head, rows = tables[args.strip()]
    lines = [f"| {head} | meaning |", "| --- | --- |"]
    lines += [f"| `{k}` | {v.replace('|', chr(92) + '|')} |" for k, v in rows.items()]
    return "\n".join(lines) + "\n"


def include_markdown(args):
    """The file's text, its headings (outside code fences) two levels deeper."""
    out, fenced = [], False
    for line in (ROOT / args.strip()).read_text(encoding="utf-8").splitlines():
        fenced ^= line.startswith("```")
        out.append(line if fenced else HEADING.sub(lambda m: "#" * (len(m.group(1)) + 2) + " ",
                                                   line))
    return "\n".join(out) + "\n"


def expand(markdown: str) -> str:
    """The page's directives replaced by what they stand for."""
    def one(match):
        kind, args = match.groups()
        return {"config": config_markdown, "schema": schema_markdown,
                "include": include_markdown}[kind](args)
    return DIRECTIVE.sub(one, markdown)


def results_page(path: Path) -> str:
    """A results file as a page: its own text, under a title if it has none."""
    text = path.read_text(encoding="utf-8").lstrip("\n")
    script = f"benchmarks/{path.stem}.py"
    head = "" if text.startswith("# ") else f"# {path.stem}\n\n"
    note = (f"\n\n---\n\nThis page is `benchmarks/results/{path.name}`, written by "
            f"`python {script}` (see [Benchmarks](../index.md)).\n")
    return head + text.rstrip("\n") + note


def on_files(files, config):
    from mkdocs.structure.files import File
    for path in sorted(RESULTS.glob("*.md")):
        files.append(File.generated(config, f"benchmarks/results/{path.name}",
                                    content=results_page(path)))
    files.append(File.generated(config, "changelog.md",
                                content=(ROOT / "CHANGELOG.md").read_text(encoding="utf-8")))
    return files


def on_page_markdown(markdown, page, config, files):
    return expand(markdown)
