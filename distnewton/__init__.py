"""distnewton: communication-efficient distributed second-order optimization.

Rank 0 is the master, ranks 1..K are workers holding one shard each.  See the
documentation (docs/, or ``distnewton --help`` and ``distnewton config``) for the
command line, the YAML config and the HDF5 result format.

From Python::

    import distnewton
    res = distnewton.solve("configs/quickstart.yaml", workers=4)   # a Result
    res.w, res.status, res.history["loss"], res.rounds
    # a run that did not converge issues distnewton.ConvergenceWarning

``solve`` (:func:`distnewton.api.solve`) and ``Result``
(:class:`distnewton.io.record.Result`) are imported on first use, so
``import distnewton`` (and ``distnewton --help``) stays light.
"""

__version__ = "0.3.0.dev0"

#: Lazily imported public names: name -> (module, attribute).  ``SCHEMA_VERSION``
#: is the version of the HDF5 result layout (root attribute ``schema_version``).
_LAZY = {"solve": ("distnewton.api", "solve"), "Result": ("distnewton.io.record", "Result"),
         "SCHEMA_VERSION": ("distnewton.io.schema", "SCHEMA_VERSION"),
         "ConvergenceWarning": ("distnewton.convergence", "ConvergenceWarning")}

__all__ = ["solve", "Result", "__version__", "SCHEMA_VERSION", "ConvergenceWarning"]


def __getattr__(name):
    if name in _LAZY:
        import importlib
        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
