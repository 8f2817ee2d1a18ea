"""The result file: one self-describing HDF5 file per run, in one package.

- :mod:`.schema`: the layout, its version, what every column and attribute
  means (the one description of the format);
- :mod:`.record`: :class:`~.record.History`, :class:`~.record.Result` and
  :class:`~.record.Outcome`, the run in memory;
- :mod:`.write`: the atomic write; :mod:`.read`: :func:`load` and friends;
- :mod:`.provenance`: the root attributes of a run (what, where, how);
- :mod:`.fallback`: the ``.fallback.npz`` kept when a write fails, and
  ``distnewton recover``;
- :mod:`.checkpoint`: ``/checkpoint``, the state ``--resume`` continues from.

``load``, ``write_result``, ``Result`` and ``History`` are importable from
here; they are imported on first use, so ``import distnewton.io`` stays light.
"""

_LAZY = {"load": ("read", "load"), "Run": ("read", "Run"), "reaching": ("read", "reaching"),
         "write_result": ("write", "write_result"), "Result": ("record", "Result"),
         "History": ("record", "History"), "Outcome": ("record", "Outcome")}

__all__ = sorted(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        import importlib
        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(f"{__name__}.{module}"), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
