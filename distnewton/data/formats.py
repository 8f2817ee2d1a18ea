"""Which format a data file is in, and reading it into a
:class:`~distnewton.data.libsvm.Dataset` (CSR rows and raw labels).

Formats (``data.format``; ``auto`` decides by content, then by extension):

========  =====================================  =========================================
format    recognised by                          rows, labels
========  =====================================  =========================================
libsvm    text whose rows are ``label i:v ...``  :mod:`.libsvm` (plain, .bz2, .gz, .xz)
csv       text with ``,`` between numbers        one row per line, dense; an optional
tsv       text with tabs between numbers         header line; the label column is
                                                 ``data.label_column`` (default the first)
npy       ``\\x93NUMPY``                          a 2-D array; the label column as for csv
npz       ``PK\\x03\\x04`` (a zip of arrays)        ``X`` (2-D) and ``y``; or scipy.sparse's
                                                 ``save_npz`` (the label column is a column
                                                 of the matrix); or one 2-D array
parquet   ``PAR1``                               the label column (default ``label`` if
                                                 present, else the first); features: a
                                                 Spark ML vector column (struct with
                                                 ``indices`` and ``values``), a list column,
                                                 or every other numeric column
hdf5      ``\\x89HDF``                            CSR datasets ``indptr``, ``indices``,
                                                 ``data`` and labels ``y`` (the format of
                                                 ``distnewton data split``'s parts)
========  =====================================  =========================================

A file that is none of these (binary content with no known signature) is refused
with one line naming the formats, instead of a parse error about its first label.
The readers are in :mod:`.tables`; every format goes through the same binary cache
as LIBSVM text (:func:`distnewton.data.cache.read_text`). Under MPI the ranks read in
parallel (:mod:`distnewton.shares`): an uncompressed CSV/TSV by byte ranges as LIBSVM
text (:mod:`.csv_ranges`), ``.npy``/Parquet/HDF5 by row ranges, the rest (``.npz``,
compressed CSV/TSV) through the cache entry rank 0 writes.
"""

from __future__ import annotations

import os

from distnewton.errors import UserError

FORMATS = ("libsvm", "csv", "tsv", "npy", "npz", "parquet", "hdf5")
TEXT = ("libsvm", "csv", "tsv")
MAGIC = ((b"PAR1", "parquet"), (b"\x93NUMPY", "npy"), (b"PK\x03\x04", "npz"),
         (b"\x89HDF\r\n\x1a\n", "hdf5"))
EXTENSIONS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".npy": "npy", ".npz": "npz",
              ".parquet": "parquet", ".pq": "parquet", ".h5": "hdf5", ".hdf5": "hdf5",
              ".hdf": "hdf5", ".svm": "libsvm", ".libsvm": "libsvm"}
PACKED = (".bz2", ".gz", ".xz")
NAMES = ("LIBSVM text, CSV/TSV text, NumPy .npy/.npz (scipy.sparse save_npz included), "
         "Parquet or HDF5 CSR")


def detect(path, setting="auto", key="data.train") -> str:
    """The format of ``path`` under ``data.format: setting``."""
    from .tables import head
    if setting != "auto":
        return setting
    raw = head(path)
    for magic, fmt in MAGIC:
        if raw.startswith(magic):
            return fmt
    name = os.fspath(path).lower()
    for ext in PACKED:
        if name.endswith(ext):
            name = name[:-len(ext)]
    ext = EXTENSIONS.get(os.path.splitext(name)[1])
    if ext in TEXT:
        return ext
    if b"\0" in raw or not _is_text(raw):
        raise UserError(f"{key}: {path}: not a data format distnewton reads ({NAMES}); "
                        f"data.format names one")
    return sniff_text(raw)


def _is_text(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
        return True
    except UnicodeDecodeError as exc:        # a multi-byte character cut by the head
        return exc.start >= len(raw) - 4


def sniff_text(raw: bytes) -> str:
    """libsvm, csv or tsv from the first lines: a ``:`` after the first field is
    LIBSVM; else a ``,`` is CSV and a tab TSV; else LIBSVM (labels alone)."""
    lines = [ln for ln in raw.split(b"\n")[:20] if ln.strip() and not ln.startswith(b"#")]
    for line in lines[1:] or lines:          # past a CSV header line, which may hold ':'
        fields = line.split()
        if any(b":" in f for f in fields[1:]):
            return "libsvm"
        if b"," in line:
            return "csv"
        if b"\t" in line.strip():
            return "tsv"
    return "libsvm"


#: the revision of the CSV/TSV header rule (:func:`.tables.has_header`) that a CSV/TSV
#: cache entry was parsed by: 2, the first non-empty line, a BOM, quotes around a field
#: and empty fields not counted (under revision 1 a headerless file's first row of
#: quoted numbers, with a missing value, or after an empty first line, was a header)
HEADER_RULE = "header-rule-2"


def options(fmt, label_column) -> str | None:
    """What the cache key holds besides the path for a non-LIBSVM format (None for
    LIBSVM, whose key stays as before: its ``zero_based`` flag)."""
    if fmt == "libsvm":
        return None
    if fmt in ("csv", "tsv"):                 # the first-line rule changed: old entries
        return f"{fmt}:label_column={label_column!r}:{HEADER_RULE}"   # are not read
    return f"{fmt}:label_column={label_column!r}"


def read(path, fmt, n_features=None, zero_based=False, label_column=None):
    """The :class:`~distnewton.data.libsvm.Dataset` of ``path`` in format ``fmt``."""
    from . import tables
    from .libsvm import read_libsvm
    if fmt == "libsvm":
        return read_libsvm(path, n_features=n_features, zero_based=zero_based)
    if not os.path.exists(path):
        raise UserError(f"{path}: no such file")
    return tables.read(os.fspath(path), fmt, n_features, label_column)
