"""Config keys: :class:`Param` (type, default, check, doc) and its validators.

No dependencies inside distnewton: :mod:`distnewton.config` (the run's
sections) and every algorithm (its ``params``) declare their keys with these,
and neither imports the other for it.

Every value passes :func:`number_error` before its own ``check``: a number
must be finite (NaN never; an infinity only where the Param says
``allow_inf``, none of the built-in keys does) and an integer must fit in a
signed 64-bit integer (:data:`INT64_MAX`: result files store config values
as HDF5 attributes, and numpy's random streams take no negative seed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

#: the largest integer a config key takes (HDF5 attributes are int64)
INT64_MAX = 2 ** 63 - 1
#: trial step sizes alpha_max 2^-j beyond j = 1100 are 0 in float64 (2^-1074 is
#: the smallest positive double; alpha_max is at most :data:`MAX_STEP` ~ 2^40)
MAX_TRIALS = 1100
#: the largest step size a line search may try: a step of 1e12 times a direction
#: already puts |w| where x.w overflows for any data distnewton accepts
MAX_STEP = 1e12


@dataclass
class Param:
    """One config key: type(s), default, an optional check and a doc line."""

    types: tuple
    default: Any
    doc: str = ""
    check: Callable[[Any], str | None] | None = None  # returns an error text or None
    choices: tuple | None = None
    nullable: bool = False
    allow_inf: bool = False     # a float key where +-inf has a meaning
    #: {refused value: why and what to use instead}, appended to the choices error
    #: (``model.loss: hinge``: not smooth, use squared_hinge)
    hints: dict | None = None


def number_error(p: Param, value) -> str | None:
    """The range every number must be in (see the module docstring), or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and not -INT64_MAX <= value <= INT64_MAX:
        return f"must be an integer of at most 2**63 - 1 in magnitude, got {value}"
    if isinstance(value, float):
        if math.isnan(value):
            return "must be a number, got nan"
        if math.isinf(value) and not p.allow_inf:
            return f"must be finite, got {value}"
    return None


def check_range(p: Param, value) -> str | None:
    """``p.check(value)``; a string only where ``str`` is one of the types (a
    check written before strings were checked, that cannot compare one, passes
    it as it did then: the algorithm's ``validate`` sees it)."""
    if p.check is None or (isinstance(value, str) and str not in p.types):
        return None
    try:
        return p.check(value)
    except TypeError:
        if isinstance(value, str):
            return None
        raise


def positive(x):
    return None if x > 0 else f"must be > 0, got {x}"


def nonneg(x):
    return None if x >= 0 else f"must be >= 0, got {x}"


def at_least(lo):
    return lambda x: None if x >= lo else f"must be >= {lo}, got {x}"


def at_most(hi, why=""):
    why = f" ({why})" if why else ""
    return lambda x: None if x <= hi else f"must be <= {hi}{why}, got {x}"


def between(lo, hi, why=""):
    """lo <= x <= hi."""
    why = f" ({why})" if why else ""
    return lambda x: None if lo <= x <= hi else f"must be in [{lo}, {hi}]{why}, got {x}"


def in_open_closed(lo, hi):
    return lambda x: None if lo < x <= hi else f"must be in ({lo}, {hi}], got {x}"


def both(*checks):
    """Every check in turn; the first error."""
    def check(x):
        for c in checks:
            msg = c(x)
            if msg:
                return msg
        return None
    return check


#: a seed: numpy takes any integer >= 0, HDF5 attributes an int64
seed = nonneg
#: a count of trial step sizes (they underflow to 0 beyond it)
trials = between(1, MAX_TRIALS, "trial steps beyond are 0 in float64")
#: a largest step size
step = both(positive, at_most(MAX_STEP, "a larger step overflows x.w"))

INT, FLOAT, STR, BOOL = (int,), (int, float), (str,), (bool,)


def preset_param(presets: dict) -> Param:
    """The ``preset`` key of an algorithm with named presets (``Algorithm.presets``):
    ``preset: paper`` sets every key the preset names, as the paper writes the
    method; a key given beside it still wins."""
    return Param(STR, None, "a named set of this method's keys: "
                 + "; ".join(f"'{name}': {', '.join(f'{k}: {v}' for k, v in keys.items())}"
                             for name, keys in presets.items())
                 + " (a key given beside it wins)", choices=tuple(presets), nullable=True)


def with_preset(given: dict, presets: dict) -> dict:
    """``given`` with the keys of its ``preset`` filled in where ``given`` has
    none (the preset's name is checked with the other keys afterwards)."""
    name = given.get("preset")
    if name is None or not isinstance(name, str) or name not in presets:
        return given
    return {**presets[name], **given}
