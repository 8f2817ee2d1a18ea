"""When the result file cannot be written: keep the model and history anyway.

A run that finished but whose HDF5 write failed (h5py error, disk full, a
folder that vanished, a bug in the checkpoint writer) leaves
``<result>.fallback.npz`` (``-2``, ``-3``... when that name is taken) beside
the requested path, or else in the current folder, or else in the system's
temporary folder.  It is a plain numpy archive, written without h5py:

- ``w``: the final weights; ``history/<column>``: every history column;
- ``attrs``: the root attributes as one JSON string (cleaned like the HDF5
  ones); ``column_docs``: JSON of the algorithm's column descriptions;
- ``requested_path``: the result file asked for; ``error``: why it failed;
  ``distnewton_fallback``: format version (1).

:func:`distnewton.io.load` (so ``distnewton report``/``plot``) reads it
as the same :class:`~distnewton.io.read.Run`; ``distnewton recover FILE``
writes the HDF5 result from it (without /checkpoint: that is not kept).
"""

from __future__ import annotations

import json
import os
import tempfile
import traceback

import numpy as np

from ..errors import EXIT_INTERNAL, EXIT_SALVAGED, UserError, echo, reason
from .record import History
from .schema import check_history, check_version, clean_attr, clean_text, json_value
from . import claim as claims
from .write import write_result

FORMAT = 1
SUFFIX = ".fallback.npz"
ZIP_MAGIC = b"PK\x03\x04"


# -- writing --------------------------------------------------------------------
def folders(path):
    """Where to try, in order: the result's folder, the current one, the temp one."""
    out = [os.path.dirname(os.path.abspath(path))]
    try:
        out.append(os.getcwd())
    except OSError:                              # the current folder was removed
        pass
    try:
        out.append(tempfile.gettempdir())
    except OSError:
        pass
    return list(dict.fromkeys(out))


def free_name(folder, base):
    """``base.fallback.npz`` in ``folder``, or ``base.fallback-N.npz`` if taken
    (``base`` cut and followed by a hash of itself when too long for a name)."""
    limit = claims.limits(folder)[0]
    name = os.path.join(folder, claims.fit_name(base, limit, suffix=SUFFIX))
    n = 2
    while os.path.lexists(name):
        name = os.path.join(folder, claims.fit_name(base, limit, suffix=f".fallback-{n}.npz"))
        n += 1
    return name


def columns_of(history):
    """History columns as arrays, each on its own: a column numpy cannot give its
    dtype is kept as float, or left out, rather than losing the others."""
    if not isinstance(history, History):
        return dict(history)
    out = {}
    for key, values in history.rows.items():
        for dtype in (history.dtypes[key], np.float64):
            try:
                out[key] = np.asarray(values, dtype=dtype)
                break
            except (TypeError, ValueError):
                continue
    return out


def payload(path, attrs, columns, w, column_docs, error):
    """The arrays of the fallback archive (see the module docstring)."""
    clean = {clean_text(k): clean_attr(v) for k, v in attrs.items()}
    return {"distnewton_fallback": np.array(FORMAT),
            "w": np.asarray(w, dtype=np.float64),
            "attrs": np.array(json.dumps(clean, default=json_value)),
            "column_docs": np.array(json.dumps(column_docs or {}, default=json_value)),
            "requested_path": np.array(os.path.abspath(path)),   # raw: recover writes there
            "error": np.array(clean_text(error)),
            **{f"history/{k}": np.asarray(v) for k, v in columns.items()}}


def write_npz(name, arrays):
    """Write ``arrays`` to ``name`` atomically (temporary file, fsync, then linked
    to ``name``: a file that appeared there meanwhile is never replaced)."""
    tmp = claims.temp_file(name, ".npz")
    try:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        claims.Claim(name).publish(tmp)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_fallback(path, attrs, columns, w, column_docs=None, error=""):
    """Write the fallback archive in the first folder that takes it; its name.

    Raises OSError naming every folder tried when none does."""
    arrays = payload(path, attrs, columns, w, column_docs, error)
    base, failures = os.path.basename(path) or "result", []
    for folder in folders(path):
        try:
            name = free_name(folder, base)
            write_npz(name, arrays)
            return name
        except Exception as exc:                 # noqa: BLE001 - try the next folder
            failures.append(f"{folder}: {reason(exc)}")
    raise OSError("no folder took the fallback file (" + "; ".join(failures) + ")")


def salvage(path, attrs, history, w, column_docs, exc, verbosity=1) -> int:
    """The result write failed with ``exc``: save the fallback, say so, exit code.

    ``EXIT_SALVAGED`` (4) when the fallback was written, else ``EXIT_INTERNAL``.
    """
    if verbosity > 1:
        echo("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).rstrip())
    why = reason(exc)
    try:
        saved = save_fallback(path, attrs, columns_of(history), w, column_docs, why)
    except Exception as exc2:                    # noqa: BLE001 - nowhere to save it
        echo(f"distnewton: error writing {path}: {why}; the model and history could not "
             f"be saved either: {reason(exc2)}")
        return EXIT_INTERNAL
    echo(f"distnewton: error writing {path}: {why}; model and history saved to {saved}")
    return EXIT_SALVAGED


# -- reading back -------------------------------------------------------------
def is_fallback(path) -> bool:
    """True for a fallback archive (by name or by its zip signature)."""
    if str(path).endswith(".npz"):
        return True
    try:
        with open(path, "rb") as fh:
            return fh.read(4) == ZIP_MAGIC
    except OSError:
        return False


def _attr(value):
    """A JSON attribute value as h5py would give it back."""
    if isinstance(value, bool):
        return np.bool_(value)
    if isinstance(value, int):
        return np.int64(value)
    if isinstance(value, float):
        return np.float64(value)
    if isinstance(value, list):
        return np.asarray(value, dtype=object if any(isinstance(v, str) for v in value)
                          else None)
    return value


def read_fallback(path) -> dict:
    """Every array of a fallback archive (UserError when it is not one, or is
    damaged: truncated, pickled objects, an array of the wrong kind)."""
    import zipfile
    import zlib
    try:
        with np.load(path, allow_pickle=False) as z:
            if "distnewton_fallback" not in z.files:
                raise UserError(f"{path}: not a distnewton fallback file")
            out = {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error,
            NotImplementedError) as exc:
        raise UserError(f"{path}: damaged or not a fallback file ({reason(exc)})") from None
    version = out["distnewton_fallback"]
    if version.ndim or version.dtype.kind not in "iu":
        raise UserError(f"{path}: distnewton_fallback: expected the format number, got "
                        f"{version.dtype} of shape {version.shape}")
    if int(version) > FORMAT:
        raise UserError(f"{path}: fallback format {int(version)} is newer than this "
                        "distnewton reads: upgrade distnewton")
    return out


def read_run(path, z=None):
    """(path, attrs, history, w) of the run kept in a fallback archive (``z``: its
    arrays, when already read), checked like a result file's
    (:func:`distnewton.io.validate.check_parts`); w is None when the run kept none."""
    from .validate import attribute, check_fallback_arrays, check_parts
    z = read_fallback(path) if z is None else z
    attrs = {k: _attr(v) for k, v in check_fallback_arrays(path, z).items()}
    version = attribute(path, attrs, "schema_version", "int")
    version = 1 if version is None else version
    check_version(path, version)
    history = {k[len("history/"):]: v for k, v in z.items() if k.startswith("history/")}
    w = z["w"]
    if w.ndim == 0 and w.dtype.kind == "f" and np.isnan(w):
        w = None                                 # saved without a model (np.asarray(None))
    w = check_parts(path, attrs, history, w)
    check_history(path, history, version)
    return str(path), attrs, history, w


def recover(path, output=None, overwrite=False):
    """Write the HDF5 result kept in fallback archive ``path``; its name.

    ``output`` defaults to the result file the run asked for."""
    z = read_fallback(path)
    _, attrs, history, w = read_run(path, z)
    if not output and "requested_path" not in z:
        raise UserError(f"{path}: requested_path: missing (give the result file with -o)")
    output = output or str(z["requested_path"])
    docs = json.loads(str(z["column_docs"])) if "column_docs" in z else {}
    with claims.claim(output, overwrite) as claim:
        write_result(output, attrs, history, w, column_docs=docs, claim=claim)
    return output
