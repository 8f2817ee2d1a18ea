"""The HDF5 result file: one self-describing file per run.

Layout (``schema_version`` 1; later versions only add):

- root attributes: ``schema_version``, ``distnewton_version``, ``algorithm``,
  ``loss``, ``lambda``, ``n_workers``, ``backend``, ``dataset``, ``n_samples``,
  ``n_features``, ``seed``, ``status`` (converged, max_rounds, stalled,
  diverged, stopped), ``message``, ``mpi_library``, ``started``, ``finished``
  (ISO 8601), ``config`` (the resolved config as YAML text), and the
  provenance attributes ``argv``, ``hostname``, ``python``, ``numpy``,
  ``scipy``, ``dataset_sha256`` (of the file as stored), ``setup_bytes``
  (bytes sent to distribute the shards), ``eval_rounds``/``eval_bytes``
  (logging-only evaluation, never charged to the algorithm).
- ``/history``: equal-length 1-D datasets, one entry per iteration starting
  with the initial point (see :data:`BASE_COLUMNS`), plus the algorithm's own.
- ``/model/w``: the final weights.

Only rank 0 writes, with serial h5py.  The file is written under a temporary
name in the target folder and renamed when complete, so a crash never leaves a
half file under the final name.  Every string attribute passes through
:func:`clean_text` on its way in (h5py refuses NULs and lone surrogates).
When the write fails anyway, :mod:`distnewton.salvage` keeps the model and
history in a ``.fallback.npz`` file, which :func:`load` reads too.
"""

from __future__ import annotations

import os
import re
import tempfile

import numpy as np

from .faults import inject
from .record import Result

#: The history columns every run has (name -> dtype, meaning).
BASE_COLUMNS = {
    "iteration": (np.int64, "iteration number, 0 = initial point"),
    "comm_rounds": (np.int64, "communication rounds charged to the algorithm (cumulative)"),
    "bytes_up": (np.int64, "bytes workers -> master (cumulative)"),
    "bytes_down": (np.int64, "bytes master -> workers (cumulative)"),
    "loss": (np.float64, "global training objective f(w) at the master's model"),
    "grad_norm": (np.float64, "||grad f(w)||_2"),
    "test_accuracy": (np.float64, "accuracy on the test set (NaN without one, or for ridge)"),
    "test_loss": (np.float64, "mean data loss on the test set, no regularisation (NaN without)"),
    "wall_time": (np.float64, "seconds (cumulative), excluding logging-only evaluation"),
    "step_size": (np.float64, "step size taken in this iteration (NaN at iteration 0)"),
}

#: Time breakdown columns (cumulative seconds, like wall_time; added in 0.2,
#: so files written before lack them and still load).
#: time_compute + time_comm = wall_time.
TIMING_COLUMNS = {
    "time_compute": (np.float64, "seconds computing (cumulative): the master's own work in "
                     "the iterations plus, per round, the slowest worker's task (mpi) or "
                     "the sum over workers (sim, where they run in turn)"),
    "time_comm": (np.float64, "seconds of the rounds not spent computing (cumulative): "
                  "latency, transfer, reduction, waiting for descheduled ranks"),
    "time_idle": (np.float64, "load imbalance (cumulative): sum over rounds of the "
                  "slowest worker's task time minus the mean worker's"),
}


class History:
    """Per-iteration records kept in memory on the master."""

    def __init__(self, extra_columns=None):
        self.dtypes = {k: v[0] for k, v in {**BASE_COLUMNS, **TIMING_COLUMNS}.items()}
        self.dtypes.update(extra_columns or {})
        self.rows = {k: [] for k in self.dtypes}

    def append(self, **values):
        for key in self.rows:
            kind = np.dtype(self.dtypes[key]).kind
            default = {"i": 0, "u": 0, "S": b""}.get(kind, np.nan)
            self.rows[key].append(values.get(key, default))

    def extend(self, columns: dict):
        """Append the rows of a history read back from a file (resume)."""
        n = len(columns["iteration"])
        for key in self.rows:
            if key in columns:
                self.rows[key].extend(np.asarray(columns[key]).tolist())
            else:
                kind = np.dtype(self.dtypes[key]).kind
                self.rows[key].extend([{"i": 0, "u": 0, "S": b""}.get(kind, np.nan)] * n)

    def last(self, key):
        return self.rows[key][-1]

    def __len__(self):
        return len(self.rows["iteration"])

    def arrays(self):
        return {k: np.asarray(v, dtype=self.dtypes[k]) for k, v in self.rows.items()}


#: Control characters dropped from strings (all of C0, DEL and C1 but tab, newline).
CONTROL_CHARS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
SURROGATES = re.compile("[\ud800-\udfff]")


def clean_text(text) -> str:
    """``text`` as a string HDF5 stores: valid UTF-8, no control characters.

    Bytes smuggled into a str by ``surrogateescape`` (``sys.argv``, file names
    that are not UTF-8) are decoded as UTF-8 where they are valid and become
    U+FFFD where not; any other lone surrogate becomes U+FFFD; NUL and the
    other control characters except tab and newline are removed (``MPI.
    Get_library_version()`` of Open MPI ends in a NUL).  Bytes are decoded as
    UTF-8 the same way.  Everything else is kept as it is.
    """
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode("utf-8", "replace")
    text = str(text)
    if SURROGATES.search(text):
        try:
            text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        except UnicodeEncodeError:              # a surrogate not made by surrogateescape
            pass
        text = SURROGATES.sub("\ufffd", text)
    return CONTROL_CHARS.sub("", text)


def clean_attr(value):
    """An attribute value as written: None -> "", strings through :func:`clean_text`."""
    if value is None:
        return ""
    if isinstance(value, (str, bytes)):
        return clean_text(value)
    if isinstance(value, (list, tuple)) and any(isinstance(v, (str, bytes)) for v in value):
        return [clean_text(v) for v in value]
    return value


def column_arrays(history):
    """``{name: array}`` of a :class:`History` or of such a dict (a recovered run)."""
    return history.arrays() if isinstance(history, History) else dict(history)


def check_output_path(path, overwrite):
    """Fail early (before any work) if the result cannot be written."""
    from .errors import UserError
    if os.path.isdir(path):
        raise UserError(f"{path}: output path is a directory")
    if os.path.exists(path) and not overwrite:
        raise UserError(f"{path}: exists (use --overwrite to replace it)")
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise UserError(f"{path}: cannot create folder ({exc.strerror})") from None
    if not os.access(folder, os.W_OK):
        raise UserError(f"{path}: folder is not writable")


def write_result(path, attrs: dict, history, w, column_docs=None, extra=None):
    """Write the whole file atomically (temporary name, then rename).

    ``history`` is a :class:`History` or ``{name: array}``; ``extra(f)`` adds
    groups (the /checkpoint).  On any failure the temporary file is removed
    and the exception propagates; nothing appears under ``path``.
    """
    import h5py
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".h5", dir=folder)
    os.close(fd)
    try:
        with h5py.File(tmp, "w") as f:
            inject("write:attrs", 0)
            for key, value in attrs.items():
                f.attrs[clean_text(key)] = clean_attr(value)
            inject("write:history", 0)
            hist = f.create_group("history")
            docs = {k: v[1] for k, v in {**BASE_COLUMNS, **TIMING_COLUMNS}.items()}
            docs.update(column_docs or {})
            for key, arr in column_arrays(history).items():
                ds = hist.create_dataset(key, data=arr)
                if key in docs:
                    ds.attrs["description"] = clean_text(docs[key])
            inject("write:model", 0)
            f.create_group("model").create_dataset("w", data=np.asarray(w, dtype=np.float64))
            if extra is not None:
                inject("write:checkpoint", 0)
                extra(f)                      # e.g. the /checkpoint group
        inject("write:rename", 0)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# -- reading results back ---------------------------------------------------
class Run(Result):
    """A result file read back (:func:`load`): a :class:`~distnewton.record.Result`
    (``w``, ``status``, ``message``, ``history``, counters, ``attrs``, ``path``,
    ``save()``, ``dataframe()``) filled from the file's attributes and history.

    ``Run(path, attrs, history, w)`` builds one from a file's parts."""

    def __init__(self, path, attrs, history, w):
        super().__init__(Result.fields(attrs, history, w, path))


def open_h5(path, purpose=""):
    """Open an HDF5 file read-only; a missing or non-HDF5 file is a UserError."""
    import h5py

    from .errors import UserError
    try:
        return h5py.File(path, "r")
    except FileNotFoundError:
        raise UserError(f"{path}: no such file{purpose}") from None
    except OSError as exc:
        raise UserError(f"{path}: not a readable HDF5 file{purpose} ({exc})") from None


def load(path) -> Run:
    """Read a distnewton HDF5 result, or the ``.fallback.npz`` of a failed write
    (same :class:`Run`, a :class:`~distnewton.record.Result`); a foreign or newer
    file is a UserError."""
    from . import salvage
    if salvage.is_fallback(path):
        return salvage.load_fallback(path)
    from .errors import UserError
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


def check_version(path, version):
    """UserError unless this distnewton reads schema ``version``."""
    from . import SCHEMA_VERSION
    from .errors import UserError
    if int(version) > SCHEMA_VERSION:
        raise UserError(f"{path}: schema version {int(version)} is newer than this "
                        f"distnewton reads ({SCHEMA_VERSION}): upgrade distnewton")
    if int(version) < 1:
        raise UserError(f"{path}: schema version {int(version)} is older than any "
                        f"this distnewton reads (1..{SCHEMA_VERSION})")


def check_history(path, history, version):
    """UserError unless ``history`` has every base column, all of one non-zero length."""
    from .errors import UserError
    missing = [k for k in BASE_COLUMNS if k not in history]
    if missing:
        raise UserError(f"{path}: history lacks {', '.join(missing)} (schema version "
                        f"{int(version)}: damaged file or not written by distnewton)")
    if len({len(v) for v in history.values()}) != 1 or not len(history["iteration"]):
        raise UserError(f"{path}: history columns are empty or of unequal length "
                        "(damaged file)")


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
