"""The record of a run in memory: :class:`History` (the per-iteration columns
as the loop appends them), :class:`Result` (what :func:`distnewton.solve`
returns and :func:`distnewton.io.load` reads back) and :class:`Outcome` (how
the loop ended on the master).

:class:`Result` is modelled on scipy.optimize's ``OptimizeResult``: a dict
with attribute access (``res.w`` is ``res["w"]``) and a readable repr.  Its
fields (:data:`FIELDS`) are derived from what a result file holds, the root
attributes, ``/history`` and ``/model/w`` (:meth:`Result.build`), so a Result
from :func:`~distnewton.solve` and the same run read back from its file agree
field for field.  :meth:`Result.save` writes the standard HDF5 result file.

:class:`Outcome` is what :meth:`distnewton.session.Session.run` ends with on the
master: the live algorithm object and history, the stop status and the
checkpoint state, before the file's attributes are known.

This module imports numpy only (h5py when saving), so it is cheap to import.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from .schema import column_description, standard_dtypes
from . import claim as claims
from .write import write_result

#: The fields of a :class:`Result`, in display order: name -> meaning.
FIELDS = {
    "status": "converged, max_rounds, max_iterations, stalled, diverged or stopped",
    "success": "True when status is converged",
    "message": "why the run stopped (one line)",
    "w": "final weights, 1-D float64 (status diverged: the best model seen; stopped by "
         "run.early_stopping: the best by validation loss)",
    "loss": "training objective in the last history row",
    "iterations": "iterations done (last history row)",
    "rounds": "communication rounds charged to the algorithm",
    "bytes_up": "bytes workers -> master charged to the algorithm",
    "bytes_down": "bytes master -> workers charged to the algorithm",
    "eval_rounds": "logging-only evaluation rounds (never charged)",
    "eval_bytes": "logging-only evaluation bytes, up + down",
    "history": "per-iteration columns (name -> 1-D numpy array), as /history",
    "attrs": "the result file's root attributes (algorithm, loss, lambda, n_workers, "
             "config YAML, provenance, ...)",
    "path": "the result file read or written, or None",
}

def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _int_or_none(value):
    return None if value is None else int(value)


def _last(history, key):
    col = history.get(key)
    if col is None or not len(col):
        return None
    value = col[-1]
    return value.item() if hasattr(value, "item") else value


class Result(dict):
    """A finished run: a dict of :data:`FIELDS` with attribute access.

    Build one with :meth:`build` (from a file's parts) or get one from
    :func:`distnewton.solve` / :func:`distnewton.io.load`.
    """

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name, value):
        self[name] = value

    def __delattr__(self, name):
        try:
            del self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __dir__(self):
        return list(super().__dir__()) + list(self.keys())

    @staticmethod
    def fields(attrs, history, w, path=None) -> dict:
        """The fields of the run whose file holds ``attrs``, ``history`` and ``w``."""
        history = {k: np.asarray(v) for k, v in dict(history).items()}
        status = _text(attrs.get("status", ""))
        loss = _last(history, "loss")
        return {
            "status": status, "success": status == "converged",
            "message": _text(attrs.get("message", "")),
            "w": None if w is None else np.asarray(w),
            "loss": None if loss is None else float(loss),
            "iterations": _int_or_none(_last(history, "iteration")),
            "rounds": _int_or_none(_last(history, "comm_rounds")),
            "bytes_up": _int_or_none(_last(history, "bytes_up")),
            "bytes_down": _int_or_none(_last(history, "bytes_down")),
            "eval_rounds": _int_or_none(attrs.get("eval_rounds")),
            "eval_bytes": _int_or_none(attrs.get("eval_bytes")),
            "history": history, "attrs": dict(attrs),
            "path": None if path is None else str(path),
        }

    @classmethod
    def build(cls, attrs, history, w, path=None) -> "Result":
        """The Result of a run from its root attributes, history columns and weights."""
        return cls(cls.fields(attrs, history, w, path))

    def column_docs(self) -> dict:
        """What each history column holds (:func:`~distnewton.io.schema.column_description`)."""
        return {k: column_description(k) for k in self.history}

    def save(self, path, overwrite=False) -> str:
        """Write the standard HDF5 result file (no /checkpoint); returns the path.

        An existing file is a :class:`~distnewton.errors.UserError` unless
        ``overwrite``, and so is a path another run holds (the claim of
        :mod:`distnewton.io.claim`).  Sets ``self.path``.
        """
        path = os.fspath(path)
        with claims.claim(path, overwrite) as claim:
            write_result(path, self.attrs, self.history, self.w,
                         column_docs=self.column_docs(), claim=claim)
        self.path = path
        return path

    def dataframe(self):
        """The history as a pandas DataFrame (needs pandas)."""
        import pandas as pd
        return pd.DataFrame(self.history)

    def __repr__(self):
        if not self:
            return f"{type(self).__name__}()"
        order = [k for k in FIELDS if k in self] + [k for k in self if k not in FIELDS]
        width = max(map(len, order))
        lines = [f"{k.rjust(width)}: {_brief(k, self[k])}" for k in order]
        return f"{type(self).__name__}(\n" + "\n".join(lines) + "\n)"

    def _repr_pretty_(self, p, cycle):          # IPython
        p.text(repr(self))


def _brief(key, value) -> str:
    """One line for ``value`` in a Result's repr."""
    if isinstance(value, np.ndarray):
        return (np.array2string(value, threshold=6, edgeitems=3, precision=6,
                                max_line_width=10**6) + f"  ({value.size} values)")
    if key == "history" and isinstance(value, dict):
        rows = len(next(iter(value.values()))) if value else 0
        return f"{rows} rows x {len(value)} columns: {', '.join(value)}"
    if key == "attrs" and isinstance(value, dict):
        shown = ", ".join(f"{k}={_scalar(value[k])!r}" for k in
                          ("algorithm", "loss", "lambda", "n_workers", "backend", "dataset")
                          if k in value)
        return f"{len(value)} attributes: {shown}, ..."
    if isinstance(value, str):
        return value
    return repr(value)


def _scalar(value):
    """A numpy scalar or bytes attribute as the plain Python value."""
    value = value.item() if isinstance(value, np.generic) else value
    return value.decode() if isinstance(value, bytes) else value


class History:
    """Per-iteration records kept in memory on the master: the standard columns
    (:func:`~distnewton.io.schema.standard_dtypes`) and ``extra_columns``
    (name -> dtype)."""

    def __init__(self, extra_columns=None):
        self.dtypes = standard_dtypes()
        self.dtypes.update(extra_columns or {})
        self.rows = {k: [] for k in self.dtypes}

    def _blank(self, key):
        return {"i": 0, "u": 0, "S": b""}.get(np.dtype(self.dtypes[key]).kind, np.nan)

    def append(self, **values):
        for key in self.rows:
            self.rows[key].append(values.get(key, self._blank(key)))

    def extend(self, columns: dict):
        """Append the rows of a history read back from a file (resume)."""
        n = len(columns["iteration"])
        for key in self.rows:
            if key in columns:
                self.rows[key].extend(np.asarray(columns[key]).tolist())
            else:
                self.rows[key].extend([self._blank(key)] * n)

    def last(self, key):
        return self.rows[key][-1]

    def __len__(self):
        return len(self.rows["iteration"])

    def arrays(self):
        return {k: np.asarray(v, dtype=self.dtypes[k]) for k, v in self.rows.items()}


@dataclass
class Outcome:
    """How a run ended on the master (:func:`distnewton.driver.drive`).

    ``state`` is the checkpoint, ``(counters, worker images)``, when one is
    due at the end (a stop by signal, or ``run.checkpoint_every`` set), else None.
    """

    alg: object             # the algorithm object; its ``w`` is the final model
    history: object         # the :class:`History` so far
    status: str             # as Result.status, or "running" for a periodic checkpoint
    message: str
    state: tuple | None = None

    @property
    def w(self):
        return self.alg.w
