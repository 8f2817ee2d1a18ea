"""Typed configuration objects: what :func:`distnewton.config.resolve` returns.

A resolved config is a :class:`Config` of five sections.  ``data``, ``model``,
``run`` and ``output`` are dataclasses made from the schema
(:data:`distnewton.config.SCHEMA`: one field per key, its default the key's
default), ``algorithm`` an :class:`AlgorithmSection` (``name`` and the chosen
algorithm's own keys).  Attribute access is the typed way in::

    cfg.run.max_rounds, cfg.model.loss, cfg.model.lambda_, cfg.algorithm.name,
    cfg.algorithm.params

(a key that is a Python keyword gets a trailing underscore as its attribute)
and item access keeps the dict shape older code and the YAML use::

    cfg["run"]["max_rounds"]; dict(cfg["run"]); cfg.to_dict() (plain dicts)

Sections compare equal to dicts with the same items.  The classes are made
once, at import, so a Config pickles (MPI broadcasts it) and deep-copies.
"""

from __future__ import annotations

import copy
import keyword
from collections.abc import Mapping, MutableMapping
from dataclasses import field, make_dataclass

#: Section order, as the resolved config has always been written.
ORDER = ("data", "model", "run", "output", "algorithm")


class Section(MutableMapping):
    """Base of the schema sections: a dataclass with the mapping protocol."""

    _section = ""

    def __getitem__(self, key):
        if key not in self._attrs:
            raise KeyError(key)
        return getattr(self, self._attrs[key])

    def __setitem__(self, key, value):
        if key not in self._attrs:
            raise KeyError(f"{self._section}.{key}: not a key of this section")
        setattr(self, self._attrs[key], value)

    def __delitem__(self, key):
        raise TypeError(f"{self._section}: keys cannot be removed")

    def __iter__(self):
        return iter(self._keys())

    def __len__(self):
        return len(self._keys())

    @classmethod
    def _keys(cls):
        return tuple(cls._attrs)

    @classmethod
    def build(cls, values: Mapping):
        """The section of ``values`` (key -> value, the YAML's keys)."""
        return cls(**{cls._attrs[k]: v for k, v in values.items()})

    def to_dict(self):
        return {k: copy.deepcopy(getattr(self, a)) for k, a in self._attrs.items()}

    def __repr__(self):
        return f"{type(self).__name__}({self.to_dict()!r})"


def section_class(name, spec, module):
    """A :class:`Section` dataclass for schema section ``name`` (``spec``: key ->
    :class:`~distnewton.params.Param`)."""
    def default(p):
        if isinstance(p.default, (list, dict)):
            return field(default_factory=lambda v=p.default: copy.deepcopy(v))
        return field(default=p.default)
    attrs = {key: attribute(key) for key in spec}
    cls = make_dataclass(f"{name.capitalize()}Section",
                         [(attrs[key], _annotation(p.types, p.nullable or p.default is None),
                           default(p)) for key, p in spec.items()],
                         bases=(Section,), eq=False)
    cls.__module__ = module                    # pickled by name: config.RunSection
    cls._section, cls._attrs = name, attrs
    cls.__doc__ = f"The ``{name}`` section (keys: ``distnewton config {name}``)."
    return cls


def attribute(key):
    """The attribute of config key ``key``: the key, or ``lambda_`` for ``lambda``."""
    return key + "_" if keyword.iskeyword(key) else key


def _annotation(types, nullable):
    names = " | ".join(dict.fromkeys(t.__name__ for t in types))
    return names + (" | None" if nullable else "")


class AlgorithmSection(dict):
    """The ``algorithm`` section: ``name`` and the algorithm's own keys (a dict
    with attribute access)."""

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None

    @property
    def params(self) -> dict:
        """The algorithm's own keys (the section without ``name``)."""
        return {k: v for k, v in self.items() if k != "name"}

    def to_dict(self):
        return copy.deepcopy(dict(self))


class Config(Mapping):
    """A resolved config: the five sections, by attribute or by item."""

    def __init__(self, data, model, run, output, algorithm):
        self.data, self.model, self.run, self.output = data, model, run, output
        self.algorithm = algorithm

    def __getitem__(self, key):
        if key not in ORDER:
            raise KeyError(key)
        return getattr(self, key)

    def __setitem__(self, key, value):
        if key not in ORDER:
            raise KeyError(key)
        setattr(self, key, value)

    def __iter__(self):
        return iter(ORDER)

    def __len__(self):
        return len(ORDER)

    def to_dict(self) -> dict:
        """Plain nested dicts (the YAML of the file's ``config`` attribute)."""
        return {k: self[k].to_dict() for k in ORDER}

    def __repr__(self):
        return f"Config({self.to_dict()!r})"


def plain(raw):
    """A config given as a Config, sections or dicts, as a deep copy of plain dicts."""
    if isinstance(raw, (Config, Section, AlgorithmSection)):
        return raw.to_dict()
    if isinstance(raw, Mapping):
        return {k: plain(v) if isinstance(v, (Section, AlgorithmSection)) else copy.deepcopy(v)
                for k, v in raw.items()}
    return copy.deepcopy(raw)
