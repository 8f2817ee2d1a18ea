"""Writing the HDF5 result file (layout: :mod:`distnewton.io.schema`).

Only rank 0 writes, with serial h5py.  The file is written under a temporary
name in the target folder and renamed when complete, so a crash never leaves a
half file under the final name.  Every string attribute passes through
:func:`~distnewton.io.schema.clean_text` on its way in (h5py refuses NULs and
lone surrogates).  When the write fails anyway, :mod:`distnewton.io.fallback`
keeps the model and history in a ``.fallback.npz`` file, which
:func:`distnewton.io.load` reads too.
"""

from __future__ import annotations

import os

import numpy as np

from ..faults import inject
from . import claim as claims
from .schema import clean_attr, clean_text, column_description


def column_arrays(history):
    """``{name: array}`` of a :class:`~distnewton.io.record.History` (anything
    with ``arrays()``) or of such a dict (a recovered run)."""
    return history.arrays() if hasattr(history, "arrays") else dict(history)


def check_output_path(path, overwrite):
    """Fail early (before any work) if the result cannot be written (every check
    of :func:`distnewton.io.claim.check_path`; :func:`~distnewton.io.claim.claim`
    also takes the path)."""
    claims.check_path(path, overwrite)


def write_result(path, attrs: dict, history, w, column_docs=None, extra=None,
                 model_attrs=None, claim=None):
    """Write the whole file atomically (temporary name, then published by the
    claim on ``path``: ``claim``, this process's claim on it, or one taken for
    this write that replaces the file there now; see :mod:`distnewton.io.claim`).

    ``history`` is a :class:`~distnewton.io.record.History` or ``{name: array}``;
    ``column_docs`` describes a plugin's own columns (the others are described
    by :mod:`~distnewton.io.schema`); ``model_attrs`` are ``/model/w``'s
    attributes; ``extra(f)`` adds groups (the /checkpoint).  On any failure the
    temporary file is removed and the exception propagates; nothing appears
    under ``path`` (:class:`~distnewton.io.claim.OutputTaken` when something
    this run did not claim took the name meanwhile).
    """
    import h5py
    claim = claim or claims.held(path)
    if claim is None:
        with claims.Claim(path, overwrite=True).acquire() as own:
            return write_result(path, attrs, history, w, column_docs, extra, model_attrs,
                                claim=own)
    tmp = claims.temp_file(path, ".h5")
    try:
        with h5py.File(tmp, "w") as f:
            inject("write:attrs", 0)
            for key, value in attrs.items():
                f.attrs[clean_text(key)] = clean_attr(value)
            inject("write:history", 0)
            hist = f.create_group("history")
            for key, arr in column_arrays(history).items():
                ds = hist.create_dataset(key, data=arr)
                ds.attrs["description"] = clean_text(column_description(key, column_docs))
            inject("write:model", 0)
            model = f.create_group("model").create_dataset(
                "w", data=np.asarray(w, dtype=np.float64))
            for key, value in (model_attrs or {}).items():
                model.attrs[key] = clean_attr(value)
            if extra is not None:
                inject("write:checkpoint", 0)
                extra(f)                      # e.g. the /checkpoint group
        inject("write:rename", 0)
        claim.publish(tmp)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


