"""Reading result files back: :func:`load` (HDF5 or the fallback archive),
:class:`Run`, and the first row that reaches a target (:func:`reaching`).

Layout: :mod:`distnewton.io.schema`.  Files of every schema version from 1 up
to this distnewton's are read; a newer or foreign file is a
:class:`~distnewton.errors.UserError` naming it.
"""

from __future__ import annotations

import numpy as np

from ..errors import UserError
from . import fallback
from .record import Result
from .schema import check_history, check_version


class Run(Result):
    """A result file read back (:func:`load`): a :class:`~distnewton.io.record.Result`
    (``w``, ``status``, ``message``, ``history``, counters, ``attrs``, ``path``,
    ``save()``, ``dataframe()``) filled from the file's attributes and history.

    ``Run(path, attrs, history, w)`` builds one from a file's parts."""

    def __init__(self, path, attrs, history, w):
        super().__init__(Result.fields(attrs, history, w, path))


def load_fallback(path) -> Run:
    """The :class:`Run` kept in a fallback archive (:mod:`~distnewton.io.fallback`)."""
    return Run(*fallback.read_run(path))


def open_h5(path, purpose=""):
    """Open an HDF5 file read-only; a missing or non-HDF5 file is a UserError."""
    import h5py

    from ..inputs import require_regular
    require_regular(path)                     # a FIFO would block h5py's open
    try:
        return h5py.File(path, "r")
    except FileNotFoundError:
        raise UserError(f"{path}: no such file{purpose}") from None
    except OSError as exc:
        raise UserError(f"{path}: not a readable HDF5 file{purpose} ({exc})") from None


def load(path) -> Run:
    """Read a distnewton HDF5 result, or the ``.fallback.npz`` of a failed write
    (same :class:`Run`, a :class:`~distnewton.io.record.Result`); a foreign or newer
    file is a UserError."""
    from ..inputs import require_regular
    require_regular(path)                     # a FIFO would block the first read
    if fallback.is_fallback(path):
        return load_fallback(path)
    f = open_h5(path)
    try:
        with f:
            version = f.attrs.get("schema_version")
            if version is None or "history" not in f:
                raise UserError(f"{path}: not a distnewton result file "
                                "(no schema_version/history)")
            check_version(path, version)
            attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
            history = {k: f["history"][k][()] for k in f["history"]}
            w = f["model/w"][()] if "model/w" in f else None
    except (OSError, RuntimeError, KeyError, ValueError, TypeError) as exc:
        raise UserError(f"{path}: damaged or truncated result file ({exc})") from None
    check_history(path, history, version)
    return Run(path, attrs, history, w)


def reaching(history, f_star, rel_subopt):
    """First history row with (loss - f*)/|f*| <= rel_subopt, as a dict, or None.

    Keys: iteration, comm_rounds, bytes (up + down), wall_time, and
    modelled_time when the run had a latency model.
    """
    loss = np.asarray(history["loss"])
    return _first(history, (loss - f_star) / abs(f_star) <= rel_subopt)


def reaching_loss(history, target_loss):
    """First history row with loss <= target_loss (same dict as :func:`reaching`), or None."""
    return _first(history, np.asarray(history["loss"]) <= target_loss)


def _first(history, mask):
    hit = np.nonzero(mask)[0]
    if hit.size == 0:
        return None
    i = int(hit[0])
    out = {"iteration": int(history["iteration"][i]),
           "comm_rounds": int(history["comm_rounds"][i]),
           "bytes": int(history["bytes_up"][i] + history["bytes_down"][i]),
           "wall_time": float(history["wall_time"][i])}
    if "modelled_time" in history:
        out["modelled_time"] = float(history["modelled_time"][i])
    return out
