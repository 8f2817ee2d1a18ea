"""Config keys: :class:`Param` (type, default, check, doc) and its validators.

No dependencies inside distnewton: :mod:`distnewton.config` (the run's
sections) and every algorithm (its ``params``) declare their keys with these,
and neither imports the other for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable


@dataclass
class Param:
    """One config key: type(s), default, an optional check and a doc line."""

    types: tuple
    default: Any
    doc: str = ""
    check: Callable[[Any], str | None] | None = None  # returns an error text or None
    choices: tuple | None = None
    nullable: bool = False


def positive(x):
    return None if x > 0 else f"must be > 0, got {x}"


def nonneg(x):
    return None if x >= 0 else f"must be >= 0, got {x}"


def at_least(lo):
    return lambda x: None if x >= lo else f"must be >= {lo}, got {x}"


def in_open_closed(lo, hi):
    return lambda x: None if lo < x <= hi else f"must be in ({lo}, {hi}], got {x}"


INT, FLOAT, STR, BOOL = (int,), (int, float), (str,), (bool,)
