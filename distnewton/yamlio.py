"""Reading the user's YAML: libyaml's safe loader with limits (issue 28).

Every YAML distnewton reads from a user (the config file, ``--set`` values,
the config stored in a result file for ``--resume``, ``report`` and ``predict``)
goes through :func:`load_text` or :func:`load_file`:

- libyaml's C parser (``yaml.CSafeLoader``; the pure-Python loader only where
  PyYAML was built without libyaml): a 1 MB config loads in a fraction of a
  second instead of tens of seconds;
- at most :data:`MAX_BYTES` (4 MiB) of text: a config file larger than that
  (or ``/dev/zero``) is refused without reading more;
- aliases (``*name``) may expand the document to at most :data:`MAX_NODES`
  (100 000) nodes: the "billion laughs" document (nested aliases, a few hundred
  bytes that expand to 10^9 nodes) is refused from its parse events, before
  anything is built;
- a key given twice in one mapping (at any level) is refused with the file,
  the line and the key (YAML would silently keep the last one);
- bytes that are not UTF-8 are refused with the file and the line;
- an error message never prints the document (only a key, truncated).

Errors are :class:`~distnewton.errors.UserError` (one line, exit 2).
"""

from __future__ import annotations

import re

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode

from .errors import UserError
from .inputs import require_regular

#: largest YAML text read (bytes); a larger config file is refused
MAX_BYTES = 4 << 20
#: largest document after alias expansion (nodes: scalars, sequences, mappings)
MAX_NODES = 100_000

Base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def short(value, width=40) -> str:
    """A key for an error message: one line, at most ``width`` characters."""
    text = " ".join(str(value).split())
    return text if len(text) <= width else text[:width - 3] + "..."


class DuplicateKey(UserError):
    pass


class Unreadable(UserError):
    """Characters YAML refuses to read (control characters, lone surrogates)."""


class Loader(Base):
    """The safe loader (libyaml when present) refusing a key given twice."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, MappingNode):
            seen = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:        # an unhashable key: the base class reports it
                    continue
                if first is not None:
                    raise DuplicateKey(key_node.start_mark.line + 1, short(key), first)
                seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)



def expanded_nodes(text: str, limit: int = MAX_NODES):
    """The node count of ``text`` with every alias expanded, from libyaml's
    parse events (nothing built); stops counting past ``limit``.  Returns
    (count, line of the alias that went past it or None)."""
    sizes, stack, total = {}, [], 0      # anchor -> expanded size; open collections

    def add(n, line):
        nonlocal total
        if stack:
            stack[-1][1] += n
        else:
            total += n
        return (stack[-1][1] if stack else total) > limit and line

    for ev in yaml.parse(text, Loader=Base):
        if isinstance(ev, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            stack.append([ev.anchor, 1])
        elif isinstance(ev, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            anchor, n = stack.pop()
            if anchor is not None:
                sizes[anchor] = n
            over = add(n, ev.start_mark.line + 1)
            if over:
                return limit + 1, over
        elif isinstance(ev, yaml.ScalarEvent):
            if ev.anchor is not None:
                sizes[ev.anchor] = 1
            add(1, None)
        elif isinstance(ev, yaml.AliasEvent):
            over = add(sizes.get(ev.anchor, 1), ev.start_mark.line + 1)
            if over:
                return limit + 1, over
    return total, None


#: a double-quoted escape of a lone surrogate (``"\\uDCFE"``: PyYAML's dump of a file
#: name that is not UTF-8, in the config of result files): libyaml refuses it, the
#: pure-Python loader took it; a document libyaml refuses for it is read again with
#: each such escape as U+FFFD (an escaped backslash before it is kept)
SURROGATE = re.compile(r"(?<!\\)((?:\\\\)*)\\(?:u|U0000)[dD][89a-fA-F][0-9a-fA-F]{2}")


def load_text(text, where: str, lines: bool = True):
    """The YAML document in ``text`` (str or bytes) with every limit of this
    module; ``where`` names it in errors (a file, ``--set x``, ``FILE (stored
    config)``), followed by ``:LINE`` unless ``lines`` is false."""
    at = (lambda line: f"{where}:{line}" if lines and line else where)
    if isinstance(text, bytes):
        if len(text) > MAX_BYTES:
            raise UserError(f"{where}: larger than {MAX_BYTES >> 20} MiB: not a config")
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = text[:exc.start].count(b"\n") + 1
            raise UserError(f"{at(line)}: not UTF-8 text (byte 0x{text[exc.start]:02x} "
                            f"at offset {exc.start})") from None
    if len(text) > MAX_BYTES:
        raise UserError(f"{where}: larger than {MAX_BYTES >> 20} MiB: not a config")
    try:
        if "*" in text:                  # an alias may expand the document: count first
            n, line = expanded_nodes(text)
            if line:
                raise UserError(f"{at(line)}: aliases expand the document past "
                                f"{MAX_NODES} nodes (nested aliases?): refused")
        try:
            return yaml.load(text, Loader=Loader)
        except yaml.YAMLError as exc:      # only a document that fails otherwise
            if "invalid Unicode character escape" not in str(exc) or \
                    not SURROGATE.search(text):
                raise
            return yaml.load(SURROGATE.sub(r"\1\\uFFFD", text), Loader=Loader)
    except DuplicateKey as exc:
        line, key, first = exc.args
        raise UserError(f"{at(line)}: duplicate key '{key}' (first at line {first})") \
            from None
    except (yaml.reader.ReaderError, UnicodeEncodeError) as exc:
        pos = getattr(exc, "position", None) or getattr(exc, "start", None)
        line = text[:pos].count("\n") + 1 if isinstance(pos, int) else None
        raise Unreadable(f"{at(line)}: characters YAML cannot read "
                         f"({short(getattr(exc, 'reason', None) or exc, 60)})") from None
    except ConstructorError as exc:
        raise UserError(f"{at(line_of(exc))}: {short(exc.problem, 80)}") from None
    except yaml.YAMLError as exc:
        raise UserError(f"{at(line_of(exc))}: "
                        f"YAML syntax error: {short(getattr(exc, 'problem', None) or exc, 80)}"
                        ) from None


def line_of(exc):
    mark = getattr(exc, "problem_mark", None)
    return mark.line + 1 if mark is not None else None


def load_file(path: str, what: str = "config file"):
    """The YAML document in the file ``path`` (a regular file, at most
    :data:`MAX_BYTES`): see :func:`load_text`."""
    require_regular(path)
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise UserError(f"{path}: no such {what}") from None
    except IsADirectoryError:
        raise UserError(f"{path}: not a regular file (a directory)") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror})") from None
    return load_text(data, path)
