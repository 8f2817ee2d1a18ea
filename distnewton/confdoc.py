"""The configuration reference, generated from the schema: ``distnewton config``.

Every key of the sections ``data``, ``model``, ``run`` and ``output``
(:data:`distnewton.config.SCHEMA`) and every algorithm's own keys
(``ALGORITHMS[name].params``) are :class:`~distnewton.params.Param` objects with
a type, a default, a doc line, choices and whether ``null`` is allowed.  This
module renders them as plain text for the terminal (:func:`render_text`) and
as Markdown for the documentation site (:func:`render_markdown`, called by
``docs/hooks.py`` while the site is built), so both say the same thing.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass

from .config import SCHEMA, suggest
from .errors import UserError
from .params import STR, Param

#: The sections in the order of a config file, with one line on what each holds.
SECTION_DOCS = {
    "data": "the training (and test) set and how its rows are split over the workers",
    "model": "the objective: loss, L2 weight, intercept, class weights, classes, warm start",
    "algorithm": "the method (`name`) and its own keys, which depend on the method",
    "run": "stopping rules, backend and workers, seeds, checkpoints, plugins",
    "output": "the result file",
}
WIDTH = 88


@dataclass
class Block:
    """One table of keys: a section, or one algorithm's own keys."""

    title: str                  # "data", or "giant" for an algorithm's keys
    doc: str                    # one line: what the block holds
    params: dict                # key -> Param
    prefix: str                 # the key's section in YAML and --set ("algorithm")


def _registry(algorithms=None):
    if algorithms is None:
        from .algorithms import ALGORITHMS as algorithms
    return algorithms


def _first_line(cls) -> str:
    import sys
    doc = cls.__doc__ or sys.modules[cls.__module__].__doc__ or ""
    return (doc.strip().splitlines() or [""])[0]


def algorithm_block(name, algorithms=None) -> Block:
    """The keys of ``algorithm.name: NAME`` (beside ``name``)."""
    cls = _registry(algorithms)[name]
    return Block(name, _first_line(cls), dict(cls.params), "algorithm")


def name_block(algorithms=None) -> Block:
    """The ``algorithm`` section's one common key, ``name``."""
    names = tuple(sorted(_registry(algorithms)))
    name = Param(STR, None, "the method, one of the names below (`distnewton list` says "
                 "where each comes from); the other keys of the section are the method's",
                 choices=names)
    return Block("algorithm", SECTION_DOCS["algorithm"], {"name": name}, "algorithm")


def blocks(section=None, algorithms=None) -> list[Block]:
    """The blocks that ``distnewton config [SECTION]`` prints.

    ``section`` is None (everything), a section name (``data``, ``model``,
    ``run``, ``output``; ``algorithm``: ``name`` and every algorithm's keys) or
    an algorithm name (its keys only).  Anything else is a
    :class:`~distnewton.errors.UserError` naming it, with a suggestion.
    """
    registry = _registry(algorithms)
    algos = [algorithm_block(name, registry) for name in sorted(registry)]
    plain = {s: Block(s, SECTION_DOCS[s], dict(SCHEMA[s]), s) for s in SCHEMA}
    if section is None:
        return [plain["data"], plain["model"], name_block(registry), *algos,
                *(plain[s] for s in SCHEMA if s not in ("data", "model"))]
    if section in plain:
        return [plain[section]]
    if section == "algorithm":
        return [name_block(registry), *algos]
    if section in registry:
        return [algorithm_block(section, registry)]
    valid = [*SCHEMA, "algorithm", *sorted(registry)]
    raise UserError(f"config: unknown section '{section}'{suggest(section, valid)}; valid: "
                    f"{', '.join(SECTION_DOCS)}, or an algorithm name "
                    f"({', '.join(sorted(registry))})")


# -- one key --------------------------------------------------------------------

_TYPE_NAMES = {int: "integer", float: "number", str: "string", bool: "bool", list: "list",
               dict: "mapping"}


def type_name(p: Param) -> str:
    """``number``, ``string or mapping``, ``integer or null`` ..."""
    names = [_TYPE_NAMES.get(t, t.__name__) for t in p.types
             if not (t is int and float in p.types)]
    if p.nullable:
        names.append("null")
    return " or ".join(dict.fromkeys(names))


def yaml_value(value) -> str:
    """A value as it is written in a config file (``null``, ``true``, ``1.0e-08``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(yaml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {yaml_value(v)}" for k, v in value.items()) + "}"
    return str(value)


def default_text(p: Param) -> str:
    return "required" if p.default is None and p.choices and not p.nullable \
        else yaml_value(p.default)


def choices_text(p: Param) -> str:
    return ", ".join(yaml_value(c) for c in p.choices) if p.choices else ""


# -- text -------------------------------------------------------------------------

def render_text(section=None, algorithms=None, width=WIDTH) -> str:
    """The reference for the terminal: per block a header, then per key
    ``key: type, default D`` and the wrapped meaning (and the choices)."""
    out = []
    for block in blocks(section, algorithms):
        where = (f"algorithm (name: {block.title})" if block.prefix == "algorithm"
                 and block.title != "algorithm" else block.title)
        out.append(f"{where}: {block.doc}")
        if not block.params:
            out.append("    (no keys of its own)")
        for key, p in block.params.items():
            out.append(f"  {key}: {type_name(p)}, default {default_text(p)}")
            text = p.doc + (f" [one of: {choices_text(p)}]" if p.choices else "")
            out += textwrap.wrap(text, width, initial_indent=" " * 6,
                                 subsequent_indent=" " * 6, break_on_hyphens=False)
        out.append("")
    return "\n".join(out)


# -- Markdown ---------------------------------------------------------------------

_CODE = re.compile(r"(`[^`]*`)")
_SPECIAL = re.compile(r"([\\*_\[\]|])")


def md_escape(text: str) -> str:
    """Text for a Markdown table cell: code spans kept, ``* _ [ ] | \\`` escaped."""
    parts = _CODE.split(text)
    return "".join(part.replace("|", r"\|") if part.startswith("`")
                   else _SPECIAL.sub(r"\\\1", part).replace("<", "&lt;")
                   for part in parts)


def md_code(value: str) -> str:
    return f"`{value}`".replace("|", r"\|")


def render_markdown(section=None, algorithms=None, level=2, headings=True) -> str:
    """The reference as Markdown: per block a heading (``level``, one deeper
    for an algorithm's keys; none without ``headings``) and a table
    ``key | type | default | meaning``."""
    out = []
    for block in blocks(section, algorithms):
        deeper = block.prefix == "algorithm" and block.title != "algorithm"
        if headings:
            out += [f"{'#' * (level + deeper)} {block.title}", ""]
        lead = (f"`algorithm.name: {block.title}`: {block.doc}" if deeper else
                f"`{block.title}:` {block.doc}")
        out.append(md_escape(lead) + ("" if lead.endswith(".") else "."))
        out.append("")
        if not block.params:
            out += ["No keys of its own.", ""]
            continue
        out.append("| key | type | default | meaning |")
        out.append("| --- | --- | --- | --- |")
        for key, p in block.params.items():
            meaning = md_escape(p.doc)
            if p.choices:
                meaning += ("" if meaning.endswith(".") else ".") + " One of: " + \
                    ", ".join(md_code(yaml_value(c)) for c in p.choices) + "."
            out.append(f"| {md_code(key)} | {type_name(p)} | {md_code(default_text(p))} | "
                       f"{meaning} |")
        out.append("")
    return "\n".join(out)


def builtin_algorithms(algorithms=None) -> dict:
    """The built-in algorithms only (name -> class): what the documentation lists,
    whatever entry points the environment has installed."""
    registry = _registry(algorithms)
    return {name: registry[name] for name in registry if registry.origin(name) == "built-in"}
