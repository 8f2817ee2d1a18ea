"""The binary cache of parsed text files: a LIBSVM file is parsed once, later
runs (on any number of ranks) read its rows at disk speed.

Where (``data.cache``): ``auto`` (the default) is ``parsed/`` in distnewton's
cache folder (``$DISTNEWTON_CACHE``, else ``~/.cache/distnewton``: on a cluster,
point it at a scratch file system every node sees) and caches training and test
files of at least :data:`MIN_BYTES` as stored (smaller ones parse in well under
a second); a folder name caches every file there; ``off`` never reads nor
writes a cache.

An entry is the folder ``ROOT/KEY/``: ``meta.json`` and the pieces
``piece-00000.h5`` ... (:mod:`.csrfile` blocks of consecutive rows: one per
rank that parsed, so the cache and the parts of ``distnewton data split`` are
one format).  ``KEY`` hashes the source's absolute path and the parse options
(``zero_based``, ``n_features``), so other options never meet this entry.
``meta.json`` records the source's size, modification time (ns) and a
fingerprint (sha256 of the size and of 16 samples of 64 KiB spread over the
file, its first and last bytes included) taken before parsing: an entry is
used only when all three still match (an edited or touched file is parsed
again and its entry replaced), and when they changed during the parse the
entry is not written.  ``meta.json`` also keeps the source's sha256 (the
``dataset_sha256`` of results), the rows, columns and non-zeros.

Writing is atomic: the pieces and ``meta.json`` go to ``ROOT/.tmp-KEY-*`` and
the folder is renamed to ``KEY`` only when every piece is written (under MPI,
when every rank's piece is); a killed run leaves a ``.tmp-`` folder that no run
reads and ``distnewton data cache clear`` removes.  A cache that cannot be
written (read-only or full disk) costs a warning and the run goes on without it
(under MPI the share is parsed again, in memory), but for two rare cases that
stop the run with one line: a piece that cannot be closed or an entry that
cannot be renamed after every rank's rows went into it, and a compressed file
under ``mpiexec`` when the cache folder cannot be made.  Two runs that write the
same entry at once: the first rename wins and a valid entry is never replaced
(only a stale one), so a run reading it keeps its rows.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from pathlib import Path

import numpy as np

from . import csrfile
from .registry import cache_root

FORMAT, VERSION = "distnewton-cache", 1
META = "meta.json"
#: ``data.cache: auto`` caches files at least this large (as stored, compressed or not)
MIN_BYTES = 4 << 20
_SAMPLES, _SAMPLE_BYTES = 16, 64 << 10
#: non-zeros per block when a rank reads its rows and sends them to their workers
#: (about 6 MB of CSR: a round of the exchange holds a few such blocks at once)
BLOCK_NNZ = 1 << 19


def default_root() -> Path:
    return cache_root() / "parsed"


def root_for(setting, path) -> Path | None:
    """The cache folder for ``path`` under ``data.cache: setting``, or None (no cache)."""
    if setting is None or setting is False or setting == "off":
        return None
    if setting is True or setting == "auto":
        try:
            return default_root() if os.path.getsize(path) >= MIN_BYTES else None
        except OSError:
            return None
    return Path(os.path.abspath(os.path.expanduser(setting)))


def parse_options(zero_based):
    """The parse options an entry is keyed by: LIBSVM's ``zero_based`` flag, or for
    the other formats the string of :func:`distnewton.data.formats.options` (format
    and label column), passed where LIBSVM passes the flag."""
    return zero_based if isinstance(zero_based, str) else bool(zero_based)


def key(path, zero_based, n_features) -> str:
    text = json.dumps([os.path.abspath(path), parse_options(zero_based), n_features, VERSION])
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:24]


def signature(path) -> dict:
    """The source's size, mtime (ns) and fingerprint."""
    st = os.stat(path)
    h = hashlib.sha256(str(st.st_size).encode())
    with open(path, "rb") as fh:
        span = max(st.st_size - _SAMPLE_BYTES, 0)
        for i in range(_SAMPLES):
            fh.seek(span * i // (_SAMPLES - 1))
            h.update(fh.read(_SAMPLE_BYTES))
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "fingerprint": h.hexdigest()}


class Entry:
    """A valid entry: ``n`` rows, ``n_cols`` columns (the largest index seen + 1,
    or ``n_features``), ``nnz``, the source's ``sha256``; :meth:`rows` reads a range."""

    def __init__(self, folder: Path, meta: dict):
        self.folder, self.meta = folder, meta
        self.n, self.n_cols, self.nnz = meta["n_rows"], meta["n_cols"], meta["nnz"]
        self.sha256 = meta["sha256"]

    def ranges(self, a=0, b=None, nnz_per_block=None):
        """Rows ``[a, b)`` as ``(piece path, lo, hi)`` ranges of about
        ``nnz_per_block`` (default :data:`BLOCK_NNZ`) non-zeros, rows of the piece."""
        b = self.n if b is None else b
        per = BLOCK_NNZ if nnz_per_block is None else nnz_per_block
        step = max(1, int(per * self.n / max(self.nnz, 1)))
        for p in self.meta["pieces"]:
            lo, hi = max(a, p["row0"]), min(b, p["row0"] + p["rows"])
            for s in range(lo, hi, step):
                yield self.folder / p["file"], s - p["row0"], min(s + step, hi) - p["row0"]

    def blocks(self, a=0, b=None, nnz_per_block=None):
        """Rows ``[a, b)`` read in blocks (:meth:`ranges`): ``(data, indices, indptr,
        raw y)`` each."""
        from distnewton.errors import UserError
        try:
            for path, lo, hi in self.ranges(a, b, nnz_per_block):
                yield csrfile.read_rows(path, lo, hi)
        except (OSError, KeyError, ValueError) as exc:
            raise UserError(f"data cache {self.folder}: damaged ({exc}); remove it with "
                            "`distnewton data cache clear`") from None

    def rows(self, a=0, b=None):
        """Rows ``[a, b)`` at once: ``(data, indices, indptr, raw y)``."""
        from .libsvm import concat_parts
        return concat_parts(list(self.blocks(a, b)))


def lookup(root, path, zero_based, n_features) -> Entry | None:
    """The entry for this source and these options when it is valid, else None."""
    folder = Path(root) / key(path, zero_based, n_features)
    try:
        meta = json.loads((folder / META).read_text())
        ok = (meta.get("format") == FORMAT and meta.get("version") == VERSION
              and meta["source"] == os.path.abspath(path)
              and meta["zero_based"] == parse_options(zero_based)
              and meta["n_features"] == n_features
              and all((folder / p["file"]).is_file() for p in meta["pieces"]))
        if not ok or meta["signature"] != signature(path):
            return None
        return Entry(folder, meta)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def begin(root, path, zero_based, n_features) -> Path | None:
    """A fresh temporary folder for a new entry (None, with a warning, if it cannot be made)."""
    tmp = Path(root) / f".tmp-{key(path, zero_based, n_features)}-{uuid.uuid4().hex[:8]}"
    try:
        tmp.mkdir(parents=True)
        PENDING.add(tmp)
        return tmp
    except OSError as exc:
        warn(root, exc)
        return None


#: this process's temporary folders not yet committed or discarded (removed by
#: :func:`discard_pending` when a stop signal ends the loading: no ``.tmp-`` left)
PENDING: set = set()


def discard_pending() -> None:
    for tmp in list(PENDING):
        discard(tmp)


def piece_name(i) -> str:
    return f"piece-{i:05d}.h5"


def open_piece(tmp, i):
    """Piece ``i`` to be appended to as it is parsed (:class:`~.csrfile.Appender`),
    or None (with a warning) if it cannot be created."""
    try:
        return csrfile.Appender(Path(tmp) / piece_name(i), {"format": FORMAT,
                                                             "version": VERSION})
    except OSError as exc:
        warn(tmp, exc)
        return None


def close_piece(appender, i, row0) -> dict | None:
    """The appended piece closed, with its description for :func:`commit` (None
    when it failed)."""
    try:
        appender.close(row0=row0)
    except OSError as exc:
        warn(appender.path, exc)
        return None
    if getattr(appender, "failed", False):
        return None
    return {"file": piece_name(i), "row0": int(row0), "rows": appender.rows,
            "nnz": appender.nnz}


def write_piece(tmp, i, row0, blocks) -> dict | None:
    """Piece ``i``: the row blocks ``[(X_b, raw y_b)]`` from global row ``row0``; its
    description for :func:`commit`, or None on failure."""
    try:
        piece = csrfile.Appender(Path(tmp) / piece_name(i), {"format": FORMAT,
                                                             "version": VERSION})
        for X, y in blocks:
            piece.append(X, y)
        piece.close(row0=row0)
    except OSError as exc:
        warn(tmp, exc)
        return None
    return {"file": piece_name(i), "row0": int(row0), "rows": sum(len(y) for _, y in blocks),
            "nnz": sum(X.nnz for X, _ in blocks)}


def commit(tmp, root, path, zero_based, n_features, sig, pieces, n_cols, sha256) -> bool:
    """Write ``meta.json`` and rename ``tmp`` to the entry (replacing a stale one), unless
    the source changed since ``sig`` was taken; True when the entry is in place."""
    tmp, final = Path(tmp), Path(root) / key(path, zero_based, n_features)
    try:
        if signature(path) != sig:
            discard(tmp)
            return False
        meta = {"format": FORMAT, "version": VERSION, "source": os.path.abspath(path),
                "zero_based": parse_options(zero_based), "n_features": n_features,
                "signature": sig,
                "sha256": sha256, "n_rows": sum(p["rows"] for p in pieces),
                "n_cols": int(n_cols), "nnz": sum(p["nnz"] for p in pieces),
                "pieces": pieces, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        (tmp / META).write_text(json.dumps(meta, indent=1) + "\n")
        if lookup(root, path, zero_based, n_features) is not None:
            discard(tmp)                       # another run wrote it meanwhile: keep
            return True                        # theirs (runs may be reading it)
        if final.exists():                     # stale: out of the way first
            old = final.with_name(f".tmp-{final.name}-old-{uuid.uuid4().hex[:8]}")
            os.replace(final, old)
            shutil.rmtree(old, ignore_errors=True)
        os.replace(tmp, final)
        PENDING.discard(tmp)
        return True
    except OSError as exc:                     # another run won the race, or a full disk
        discard(tmp)
        if not final.is_dir():
            warn(root, exc)
        return False


def store(root, path, zero_based, n_features, sig, X, y, sha256) -> bool:
    """One process: cache the whole parsed file (canonical CSR ``X``, raw ``y``)."""
    tmp = begin(root, path, zero_based, n_features)
    if tmp is None:
        return False
    piece = write_piece(tmp, 0, 0, [(X, y)])
    if piece is None:
        discard(tmp)
        return False
    return commit(tmp, root, path, zero_based, n_features, sig, [piece], X.shape[1], sha256)


def discard(tmp) -> None:
    PENDING.discard(Path(tmp))
    shutil.rmtree(tmp, ignore_errors=True)


def warn(where, exc) -> None:
    from distnewton.errors import echo
    echo(f"distnewton: warning: data cache {where}: not written ({exc}); the run goes on")


# -- `distnewton data cache list|clear` --------------------------------------
def entries(root) -> list[dict]:
    """Every folder in ``root``: its meta (or ``{"incomplete": True}``), its bytes."""
    out = []
    root = Path(root)
    if not root.is_dir():
        return out
    for folder in sorted(root.iterdir()):
        if not folder.is_dir():
            continue
        size = sum(f.stat().st_size for f in folder.iterdir() if f.is_file())
        try:
            meta = json.loads((folder / META).read_text())
            if folder.name.startswith(".tmp-"):
                raise ValueError
        except (OSError, ValueError):
            meta = {"incomplete": True}
        out.append({"folder": folder, "bytes": size, **meta})
    return out


def status(meta) -> str:
    """``ok``, ``stale`` (the source changed), ``missing`` (gone) or ``incomplete``."""
    if meta.get("incomplete"):
        return "incomplete"
    if not os.path.exists(meta["source"]):
        return "missing"
    try:
        return "ok" if signature(meta["source"]) == meta["signature"] else "stale"
    except OSError:
        return "missing"


def clear(root, only_unused=False) -> tuple[int, int]:
    """Remove entries (with ``only_unused``, those not ``ok``); (entries, bytes) freed."""
    count = freed = 0
    for e in entries(root):
        if only_unused and status(e) == "ok":
            continue
        shutil.rmtree(e["folder"], ignore_errors=True)
        count, freed = count + 1, freed + e["bytes"]
    return count, freed


def read_text(path, n_features=None, zero_based=False, setting="auto", fmt="libsvm",
              label_column=None):
    """``(Dataset, sha256, note)`` of a data file through the cache: a valid entry
    is read, else the file is read (:func:`~distnewton.data.formats.read`: LIBSVM
    text, or ``fmt``'s reader with ``label_column``) and the entry written;
    ``note`` says which (``read FOLDER``, ``written FOLDER``, or "" without a cache)."""
    from distnewton.errors import UserError, echo

    from .formats import options, read
    from .registry import file_sha256
    opts = options(fmt, label_column)
    parse_key = zero_based if opts is None else opts
    root = root_for(setting, path)
    sig = None
    if root is not None:
        entry = lookup(root, path, parse_key, n_features)
        if entry is not None:
            try:
                return dataset(entry, path), entry.sha256, f"read {entry.folder}"
            except UserError as exc:           # parse again, and replace the entry
                echo(f"distnewton: warning: {exc}")
        try:
            sig = signature(path)
        except OSError:                        # the reader says what is wrong
            root = None
    ds = read(path, fmt, n_features=n_features, zero_based=zero_based, label_column=label_column)
    sha = file_sha256(path)
    note = ""
    if root is not None and store(root, path, parse_key, n_features, sig, ds.X, ds.y, sha):
        note = f"written {root / key(path, parse_key, n_features)}"
    return ds, sha, note


def dataset(entry, path):
    """The whole entry as a :class:`~distnewton.data.libsvm.Dataset`."""
    import scipy.sparse as sp

    from .libsvm import Dataset
    data, indices, indptr, y = entry.rows()
    itype = np.int32 if max(len(data), entry.n_cols) < 2**31 - 1 else np.int64
    X = sp.csr_matrix((data, indices.astype(itype, copy=False), indptr.astype(itype)),
                      shape=(entry.n, entry.n_cols))
    return Dataset(X=X, y=y, path=os.fspath(path))
