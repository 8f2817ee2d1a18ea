"""Control values sent down with a round, by name instead of by position.

A round's ``down`` vectors are float64 buffers (:meth:`~distnewton.runtime.Runtime.round`).
The scalars that steer a worker task (a round counter, a step size, a flag) travel
in one of them; a :class:`Control` names them.  Each subclass is a frozen
dataclass whose fields are ``int``, ``float``, ``bool`` or ``float | None``:
:meth:`~Control.pack` lays them out in declaration order, one float64 each (None
as NaN), and :meth:`~Control.unpack` reads a buffer of exactly that many floats
back into the typed object.  ints and bools travel exactly (integers up to 2^53).

Example::

    @dataclass(frozen=True)
    class Header(Control):
        t: int                # the round
        alpha: float          # a step size
        cap: float | None     # optional: NaN on the wire

    rt.round("mytask", w, Header(t, alpha, None).pack(), up=d)     # master
    h = Header.unpack(buf)                                          # worker: h.t, h.alpha
"""

from __future__ import annotations

import dataclasses
import functools
import math
import typing

import numpy as np


def _as_optional_float(x):
    return None if math.isnan(x) else float(x)


def _decoder(tp):
    """float64 -> the field's type."""
    if tp in (int, bool, float):
        return tp
    if set(typing.get_args(tp)) == {float, type(None)}:
        return _as_optional_float
    raise TypeError(f"a Control field is int, float, bool or float | None, not {tp!r}")


@dataclasses.dataclass(frozen=True)
class Control:
    """Named scalars packed into one float64 buffer (see the module docstring)."""

    @classmethod
    @functools.cache
    def _decoders(cls):
        hints = typing.get_type_hints(cls)
        return tuple((f.name, _decoder(hints[f.name])) for f in dataclasses.fields(cls))

    @classmethod
    def size(cls) -> int:
        """Floats on the wire: one per field."""
        return len(cls._decoders())

    def pack(self) -> np.ndarray:
        """The fields in declaration order as float64 (None: NaN)."""
        return np.array([np.nan if v is None else float(v)
                         for v in (getattr(self, name) for name, _ in self._decoders())],
                        dtype=np.float64)

    @classmethod
    def unpack(cls, buf):
        """The object a buffer of :meth:`size` floats packs."""
        decoders = cls._decoders()
        if len(buf) != len(decoders):
            raise ValueError(f"{cls.__name__}: expected {len(decoders)} floats, got {len(buf)}")
        return cls(**{name: decode(x) for (name, decode), x in zip(decoders, buf)})
