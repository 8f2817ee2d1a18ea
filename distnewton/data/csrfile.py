"""A block of parsed rows in one HDF5 file: the format of the cache's pieces
(:mod:`.cache`) and of the parts of ``distnewton data split`` (:mod:`.split`).

Datasets (contiguous, uncompressed, so that any row range reads at disk speed):

* ``indptr`` (int64, rows + 1, starting at 0), ``indices`` (int32: the parser's
  largest 0-based index, 2**31 - 2, fits; 0-based, sorted within each row), ``data`` (float64, no
  explicit zeros): the rows as CSR;
* ``y`` (float64): the raw labels as written in the text file (not yet mapped
  to -1/+1);
* ``rows`` (int64, optional): the rows' line-order indices in the source file
  (the parts of a split; a cache piece holds consecutive rows from ``row0``).

Attributes say what the block is (``format``, ``version`` and the caller's own).
"""

from __future__ import annotations

import numpy as np


def write_rows(path, data, indices, indptr, y, attrs, rows=None) -> None:
    """Write one block (the caller makes it atomic: a temporary name, then a rename)."""
    import h5py
    itype = np.int32 if (len(indices) == 0 or int(indices.max()) < 2**31 - 1) else np.int64
    with h5py.File(path, "w") as f:
        f.attrs.update(attrs)
        f["indptr"] = np.asarray(indptr, np.int64)
        f["indices"] = np.asarray(indices, itype)
        f["data"] = np.asarray(data, np.float64)
        f["y"] = np.asarray(y, np.float64)
        if rows is not None:
            f["rows"] = np.asarray(rows, np.int64)


class Appender:
    """One block file written a row block at a time (resizable, chunked datasets):
    a parser's rows go to disk as they come and no block is held twice."""

    CHUNK = 1 << 18

    def __init__(self, path, attrs):
        import h5py
        self.path = path
        self.f = h5py.File(path, "w")
        self.f.attrs.update(attrs)

        def column(name, dtype):
            return self.f.create_dataset(name, (0,), dtype, maxshape=(None,),
                                         chunks=(self.CHUNK,))
        self.indptr, self.indices = column("indptr", np.int64), column("indices", np.int32)
        self.data, self.y = column("data", np.float64), column("y", np.float64)
        self.indptr.resize((1,))
        self.indptr[0] = 0
        self.rows = self.nnz = 0
        self.top = -1                                  # the largest column index seen

    def append(self, X, y):
        n, m = X.shape[0], X.nnz
        self.indptr.resize((self.rows + n + 1,))
        self.indptr[self.rows + 1:] = self.nnz + X.indptr[1:].astype(np.int64)
        self.y.resize((self.rows + n,))
        self.y[self.rows:] = y
        if m:
            for ds, values in ((self.indices, X.indices), (self.data, X.data)):
                ds.resize((self.nnz + m,))
                ds[self.nnz:] = values
            self.top = max(self.top, int(X.indices.max()))
        self.rows, self.nnz = self.rows + n, self.nnz + m

    def close(self, **attrs):
        if self.f.id.valid:
            self.f.attrs.update(attrs)
            self.f.close()


def read_rows(path, a=0, b=None):
    """Rows ``[a, b)`` of the block (all by default): ``(data, indices, indptr, y)``,
    indptr from 0.  Raises OSError/KeyError for a damaged file (the callers name it)."""
    import h5py
    with h5py.File(path, "r") as f:
        n = len(f["y"])
        b = n if b is None else min(b, n)
        ptr = f["indptr"][a:b + 1]
        lo, hi = int(ptr[0]), int(ptr[-1])
        return (f["data"][lo:hi], f["indices"][lo:hi], ptr - lo, f["y"][a:b])


def read_index(path, a, b):
    """``(indptr[a:b + 1], y[a:b])`` of the block: the rows' shape without their values."""
    import h5py
    with h5py.File(path, "r") as f:
        return f["indptr"][a:b + 1], f["y"][a:b]


def attrs_of(path) -> dict:
    import h5py
    with h5py.File(path, "r") as f:
        return dict(f.attrs)
