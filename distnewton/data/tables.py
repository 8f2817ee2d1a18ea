"""Readers of the tabular and array formats (:mod:`.formats`): CSV/TSV and Parquet
through pyarrow (multi-threaded C++ parsing, already a dependency for the LIBSVM
parser), NumPy through numpy/scipy, HDF5 CSR through h5py.  Each returns a
:class:`~distnewton.data.libsvm.Dataset` in canonical CSR with the raw labels;
every input error is one :class:`~distnewton.errors.UserError` naming the file and
the column (and, for CSV, the line where pyarrow reports it).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from distnewton.errors import UserError

#: bytes of a file's head read to detect its format and a CSV header
HEAD_BYTES = 1 << 16
#: Parquet label columns tried, in order, when ``data.label_column`` is not set
LABEL_NAMES = ("label", "labels", "y", "target", "class")


#: formats whose rows a rank can read by range (the others are read whole, by rank 0)
RANGED = ("npy", "parquet", "hdf5")


def read(path, fmt, n_features=None, label_column=None):
    from .libsvm import Dataset
    reader = {"csv": read_csv, "tsv": read_csv, "npy": read_npy, "npz": read_npz,
              "parquet": read_parquet, "hdf5": read_hdf5}[fmt]
    with library_errors(path, fmt):
        X, y = reader(path, label_column, **({"delimiter": "\t"} if fmt == "tsv" else {}))
    return Dataset(X=finish(path, X, y, n_features), y=y, path=path)


def read_share(path, fmt, i, R, n_features=None, label_column=None):
    """Rows ``[n i / R, n (i + 1) / R)`` of a :data:`RANGED` file (Parquet: its row
    groups ``[G i / R, G (i + 1) / R)``): ``(X, y)``, X canonical CSR with the file's
    column count; the concatenation over i is :func:`read`'s matrix."""
    reader = {"npy": npy_share, "parquet": parquet_share, "hdf5": hdf5_share}[fmt]
    with library_errors(path, fmt):
        X, y, row0 = reader(path, label_column, i, R)
    return finish(path, X, y, n_features, row0=row0, empty_ok=True), y


class library_errors:
    """A library's own exception while reading becomes one UserError line naming the
    file and the format (a UserError or MemoryError passes as it is)."""

    def __init__(self, path, fmt):
        self.path, self.fmt = path, fmt

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if exc is None or isinstance(exc, (UserError, MemoryError)):
            return False
        if not isinstance(exc, Exception):
            return False
        text = " ".join(str(exc).split())
        raise UserError(f"{self.path}: not readable as {self.fmt}: {text[:300]}") from None


def finish(path, X, y, n_features, row0=0, empty_ok=False):
    """Canonical float64 CSR with ``n_features`` columns; labels checked (rows
    named from ``row0`` + 1)."""
    X = sp.csr_matrix(X, dtype=np.float64)
    if X.shape[0] == 0 and not empty_ok:
        raise UserError(f"{path}: no data rows")
    if not np.all(np.isfinite(y)):
        row = int(np.flatnonzero(~np.isfinite(y))[0])
        raise UserError(f"{path}: row {row0 + row + 1}: label {y[row]} is not a finite number")
    if X.nnz and not np.all(np.isfinite(X.data)):
        row = int(np.searchsorted(X.indptr, np.flatnonzero(~np.isfinite(X.data))[0],
                                  side="right")) - 1
        raise UserError(f"{path}: row {row0 + row + 1}: a feature value is not a finite number")
    if n_features is not None:
        if X.shape[1] > n_features:
            raise UserError(f"{path}: {X.shape[1]} feature columns: exceeds n_features "
                            f"{n_features}")
        X = sp.csr_matrix((X.data, X.indices, X.indptr), shape=(X.shape[0], n_features))
    X.sum_duplicates()
    X.sort_indices()
    X.eliminate_zeros()
    itype = np.int32 if max(X.nnz, X.shape[1]) < 2**31 - 1 else np.int64
    X.indices, X.indptr = X.indices.astype(itype), X.indptr.astype(itype)
    return X


def share_range(n, i, R):
    return n * i // R, n * (i + 1) // R


def split_label(path, M, label_column, names=None):
    """(features, labels) of a dense 2-D array whose ``label_column`` (an index, or a
    name among ``names``; default the first column) holds the labels."""
    M = np.asarray(M)
    if M.ndim != 2 or M.shape[1] < 1:
        raise UserError(f"{path}: expected a 2-D array of rows (a label column and the "
                        f"features), got shape {M.shape}")
    j = column_index(path, label_column, M.shape[1], names)
    y = np.asarray(M[:, j], dtype=np.float64)
    X = np.delete(M, j, axis=1)
    return dense_rows(path, X), y


def column_index(path, label_column, n_cols, names=None):
    """The label column's index: 0 by default; a negative index counts from the end."""
    if label_column is None:
        return 0
    if isinstance(label_column, str):
        if names is None or label_column not in names:
            have = f" (columns: {', '.join(map(str, names[:10]))})" if names else \
                " (the file has no header: give a column number)"
            raise UserError(f"data.label_column: no column {label_column!r} in {path}{have}")
        return list(names).index(label_column)
    if not -n_cols <= label_column < n_cols:
        raise UserError(f"data.label_column: column {label_column} is out of range: {path} "
                        f"has {n_cols} columns")
    return label_column % n_cols


def dense_rows(path, X):
    if X.dtype == object or not np.issubdtype(X.dtype, np.number):
        raise UserError(f"{path}: the feature columns are not all numbers ({X.dtype})")
    return sp.csr_matrix(np.asarray(X, dtype=np.float64))


# -- text ----------------------------------------------------------------------
def head(path, size=HEAD_BYTES) -> bytes:
    """The first ``size`` bytes of the file, decompressed (bz2/gz/xz by extension)."""
    import os

    from .libsvm_write import open_by_extension
    try:
        with open_by_extension(os.fspath(path), "rb") as fh:
            return fh.read(size)
    except Exception:                        # noqa: BLE001  (the reader says what is wrong)
        return b""


def has_header(path, delimiter) -> bool:
    """A first line with a field that is not a number is a header: the first line
    pyarrow reads (empty lines are skipped), a leading UTF-8 byte order mark and the
    quotes around a field not part of it (pyarrow reads ``"1"`` as the number 1), and an
    empty field no sign of a header, so that a headerless file's first row is data (a
    row with a missing value is refused naming it, not read as the column names)."""
    lines = head(path).removeprefix(b"\xef\xbb\xbf").split(b"\n")
    first = next((ln.strip() for ln in lines if ln.rstrip(b"\r")), b"")
    for field in first.split(delimiter.encode()):
        text = field.strip().strip(b'"')
        if not text:                      # a missing value (1,,3) or pandas' index (,a,b)
            continue
        try:
            float(text)
        except ValueError:
            return True
    return False


def read_csv(path, label_column, delimiter=","):
    import pyarrow as pa
    import pyarrow.csv as pcsv
    header = has_header(path, delimiter)
    table = pcsv.read_csv(path, read_options=pcsv.ReadOptions(autogenerate_column_names=not header),
                          parse_options=pcsv.ParseOptions(delimiter=delimiter))
    if table.num_rows == 0:
        raise UserError(f"{path}: no data rows")
    names = table.column_names if header else None
    j = column_index(path, label_column, table.num_columns, names)
    columns = []
    for i, col in enumerate(table.columns):
        if col.null_count:
            row = int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0])
            raise UserError(f"{path}:{row + 1 + header}: column {table.column_names[i]!r} "
                            "is empty")
        if not (pa.types.is_integer(col.type) or pa.types.is_floating(col.type)
                or pa.types.is_boolean(col.type)):
            row, value = first_not_number(col)
            raise UserError(f"{path}:{row + 1 + header}: column {table.column_names[i]!r}: "
                            f"{value!r} is not a number")
        columns.append(col.to_numpy().astype(np.float64, copy=False))
    y = columns.pop(j)
    X = np.column_stack(columns) if columns else np.zeros((len(y), 0))
    return sp.csr_matrix(X), y


def first_not_number(column):
    """(row, value) of the first cell of a text column that is not a number."""
    for row, value in enumerate(column.to_pylist()):
        try:
            float(value)
        except (TypeError, ValueError):
            return row, str(value)[:40]
    return 0, ""


# -- arrays --------------------------------------------------------------------
def read_npy(path, label_column):
    return split_label(path, np.load(path, allow_pickle=False), label_column)


def npy_share(path, label_column, i, R):
    M = np.load(path, mmap_mode="r", allow_pickle=False)
    if M.ndim != 2:
        return (*split_label(path, M, label_column), 0)      # its one-line refusal
    a, b = share_range(M.shape[0], i, R)
    return (*split_label(path, np.array(M[a:b]), label_column), a)


def read_npz(path, label_column):
    with np.load(path, allow_pickle=False) as z:
        keys = set(z.files)
        if {"data", "indices", "indptr", "shape", "format"} <= keys:
            M = sp.load_npz(path).tocsc()
            j = column_index(path, label_column, M.shape[1])
            y = M[:, j].toarray().ravel()
            keep = np.delete(np.arange(M.shape[1]), j)
            return M[:, keep].tocsr(), y
        if {"X", "y"} <= keys:
            X, y = z["X"], np.asarray(z["y"], dtype=np.float64).ravel()
            if X.ndim != 2 or X.shape[0] != len(y):
                raise UserError(f"{path}: X has shape {X.shape} but y has {len(y)} labels")
            return dense_rows(path, X), y
        if len(keys) == 1:
            return split_label(path, z[next(iter(keys))], label_column)
    raise UserError(f"{path}: an .npz needs arrays X and y, scipy.sparse's save_npz "
                    f"arrays, or one 2-D array; it has {', '.join(sorted(keys))}")


def read_hdf5(path, label_column):
    X, y, _ = hdf5_share(path, label_column, 0, 1)
    return X, y


def hdf5_share(path, label_column, i, R):
    """Rows ``[a, b)`` of an HDF5 CSR file: their slice of ``indptr`` and the
    ``indices``/``data`` it points at (the file's structure checked where it is read)."""
    import h5py
    with h5py.File(path, "r") as f:
        need = [k for k in ("indptr", "indices", "data") if k not in f]
        label = next((k for k in ("y", "label", "labels") if k in f), None)
        if need or label is None:
            raise UserError(f"{path}: an HDF5 data file needs CSR datasets indptr, indices, "
                            f"data and labels y; missing {', '.join(need + ['y'][:label is None])}")
        n, nnz = len(f[label]), len(f["data"])
        ends = f["indptr"][[0, -1]] if len(f["indptr"]) else np.zeros(2, np.int64)
        if len(f["indptr"]) != n + 1 or ends[0] != 0 or ends[1] != nnz or \
                len(f["indices"]) != nnz:
            raise UserError(f"{path}: indptr, indices, data and y do not describe {n} CSR rows")
        a, b = share_range(n, i, R)
        ptr = np.asarray(f["indptr"][a:b + 1], dtype=np.int64)
        indices = f["indices"][ptr[0]:ptr[-1]]
        data = f["data"][ptr[0]:ptr[-1]]
        y = np.asarray(f[label][a:b], dtype=np.float64).ravel()
        n_cols = int(f.attrs["n_cols"]) if "n_cols" in f.attrs else (
            int(f.attrs["shape"][-1]) if "shape" in f.attrs else 0)
    ptr = ptr - ptr[0]
    if np.any(np.diff(ptr) < 0):
        raise UserError(f"{path}: indptr decreases (rows {a + 1}..{b})")
    if len(indices) and indices.min() < 0:
        raise UserError(f"{path}: a negative column index")
    d = max(n_cols, int(indices.max()) + 1 if len(indices) else 0)
    return sp.csr_matrix((data, indices, ptr), shape=(b - a, d)), y, a


# -- Parquet -------------------------------------------------------------------
def read_parquet(path, label_column):
    import pyarrow.parquet as pq
    return table_rows(path, pq.read_table(path), label_column)


def parquet_share(path, label_column, i, R):
    """Row groups ``[G i / R, G (i + 1) / R)`` of a Parquet file."""
    import pyarrow.parquet as pq
    pf = pq.ParquetFile(path)
    g0, g1 = share_range(pf.num_row_groups, i, R)
    table = (pf.read_row_groups(list(range(g0, g1))) if g1 > g0
             else pf.schema_arrow.empty_table())
    row0 = sum(pf.metadata.row_group(g).num_rows for g in range(g0))
    X, y = table_rows(path, table, label_column)
    return X, y, row0


def table_rows(path, table, label_column):
    """(X, y) of an Arrow table: the label column, then one vector column or else
    every other column, dense."""
    names = table.column_names
    if label_column is None:
        label_column = next((n for n in LABEL_NAMES if n in names), 0)
    j = column_index(path, label_column, len(names), names)
    y = np.asarray(table.column(j).to_numpy(zero_copy_only=False), dtype=np.float64)
    rest = [i for i in range(len(names)) if i != j]
    vectors = [i for i in rest if _is_vector(table.column(i).type)]
    if vectors:
        if len(vectors) > 1 or len(rest) > 1:
            raise UserError(f"{path}: one vector column (a Spark ML vector or a list) is "
                            f"read beside the label; found {', '.join(names[i] for i in rest)}")
        return vector_rows(path, table.column(vectors[0]), len(y)), y
    return dense_rows(path, np.column_stack(
        [table.column(i).to_numpy(zero_copy_only=False) for i in rest]) if rest
        else np.zeros((len(y), 0))), y


def _is_vector(t) -> bool:
    import pyarrow as pa
    return pa.types.is_list(t) or pa.types.is_large_list(t) or (
        pa.types.is_struct(t) and {"values"} <= {t.field(i).name for i in range(t.num_fields)})


def vector_rows(path, column, n):
    """CSR rows of a list column (dense vectors) or of a Spark ML vector struct
    (``type`` 0: sparse, ``size``, ``indices``, ``values``; 1: dense ``values``)."""
    import pyarrow as pa
    column = column.combine_chunks()
    is_list = pa.types.is_list(column.type) or pa.types.is_large_list(column.type)
    values = column if is_list else column.field("values")
    vlen = np.asarray(values.value_lengths().fill_null(0), dtype=np.int64)
    vals = np.asarray(values.flatten(), dtype=np.float64)
    starts = np.concatenate([[0], np.cumsum(vlen)])
    row_of = np.repeat(np.arange(n), vlen)
    cols = np.arange(len(vals), dtype=np.int64) - starts[row_of]     # dense: 0, 1, ...
    size = np.zeros(n, np.int64)
    names = set() if is_list else {column.type.field(i).name
                                   for i in range(column.type.num_fields)}
    if "indices" in names:
        idx = column.field("indices")
        ilen = np.asarray(idx.value_lengths().fill_null(0), dtype=np.int64)
        sparse_row = ilen > 0
        bad = np.flatnonzero(sparse_row & (ilen != vlen))
        if len(bad):
            r = int(bad[0])
            raise UserError(f"{path}: row {r + 1}: {ilen[r]} indices for {vlen[r]} values")
        istarts = np.concatenate([[0], np.cumsum(ilen)])
        on = sparse_row[row_of]
        flat = np.asarray(idx.flatten(), dtype=np.int64)
        cols[on] = flat[istarts[row_of[on]] + cols[on]]
        if "size" in names:
            size = np.asarray(column.field("size").fill_null(0), dtype=np.int64)
    if len(cols) and cols.min() < 0:
        raise UserError(f"{path}: a negative vector index")
    d = int(max(size.max(initial=0), cols.max(initial=-1) + 1))
    return sp.csr_matrix((vals, (row_of, cols)), shape=(n, d))
