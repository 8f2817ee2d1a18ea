"""Reading result files back: :func:`load` (HDF5 or the fallback archive),
:class:`Run`, and the first row that reaches a target (:func:`reaching`).

Layout: :mod:`distnewton.io.schema`.  Files of every schema version from 1 up
to this distnewton's are read; a newer or foreign file is a
:class:`~distnewton.errors.UserError` naming it.
"""

from __future__ import annotations

import numpy as np

from ..errors import UserError, reason
from . import fallback
from .record import Result
from .schema import check_history, check_version
from .validate import attribute, bad, check_parts


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
        why = " ".join(str(exc).split())          # h5py's messages span lines
        raise UserError(f"{path}: not a readable HDF5 file{purpose} ({why})") from None


def load(path) -> Run:
    """Read a distnewton HDF5 result, or the ``.fallback.npz`` of a failed write
    (same :class:`Run`, a :class:`~distnewton.io.record.Result`); a foreign, newer
    or damaged file is a UserError naming the file and the field
    (:func:`distnewton.io.validate.check_parts`)."""
    return Run(path, *read_parts(path)[:3])


def read_parts(path):
    """(attrs, history, w, w_attrs) of a result file (HDF5 or fallback archive),
    checked by :func:`~distnewton.io.validate.check_parts`; ``w_attrs``: the
    attributes of ``/model/w`` ({} for a fallback archive or an older file)."""
    from ..inputs import require_regular
    require_regular(path)                     # a FIFO would block the first read
    if fallback.is_fallback(path):
        _, attrs, history, w = fallback.read_run(path)
        return attrs, history, w, {}
    f = open_h5(path)
    try:
        with f:
            attrs, history, w, w_attrs = _read_h5(path, f)
    except UserError:
        raise
    except (OSError, RuntimeError, KeyError, ValueError, TypeError, AttributeError) as exc:
        raise bad(path, "damaged or truncated result file", reason(exc)) from None
    w = check_parts(path, attrs, history, w)
    check_history(path, history, attrs["schema_version"])
    return attrs, history, w, w_attrs


def _value(v):
    """An HDF5 attribute as distnewton wrote it: bytes decoded."""
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, np.ndarray) and v.dtype.kind in "OS":
        return np.asarray([_value(x) for x in v.ravel().tolist()],
                          dtype=object).reshape(v.shape)
    return v


def _read_h5(path, f):
    import h5py
    version = f.attrs.get("schema_version")
    if version is None or "history" not in f:
        raise UserError(f"{path}: not a distnewton result file (no schema_version/history)")
    attrs = {k: _value(v) for k, v in f.attrs.items()}
    version = attribute(path, attrs, "schema_version", "int")
    check_version(path, version)
    group = f["history"]
    if not isinstance(group, h5py.Group):
        raise bad(path, "/history", "expected a group of columns, got a dataset")
    history = {}
    for k, col in group.items():
        if not isinstance(col, h5py.Dataset):
            raise bad(path, f"history/{k}", "expected a column, got a group")
        history[k] = col[()]
    w, w_attrs = None, {}
    if "model/w" in f:
        ds = f["model/w"]
        if not isinstance(ds, h5py.Dataset):
            raise bad(path, "/model/w", "expected an array, got a group")
        w, w_attrs = ds[()], {k: _value(v) for k, v in ds.attrs.items()}
    return attrs, history, w, w_attrs


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
