"""CSV/TSV read by byte ranges: every MPI rank parses the lines that start in its
byte range (:mod:`.ranges`, exactly as for LIBSVM text), in blocks of whole lines.

What a rank needs to know beyond its lines is the file's :class:`Layout` (the
delimiter, whether the first line is a header, the column names, the column count
and the label column), which rank 0 reads once from the first line and every rank
receives (:func:`distnewton.shares.local_rows`), so the ranks agree on the feature
count and the label column as the one-process reader (:func:`.tables.read_csv`)
finds them.

A block is parsed by pyarrow's CSV reader, every column typed float64, one thread
per rank (:func:`fast_block`); a block it refuses, or with an empty cell, a value
that is not finite, or an odd number of quotes on a line, is scanned line by line
(:func:`scan_block`), which names the first bad line (``FILE:LINE``).  Supported: a
row per line, an optional header (the first line only, when one of its fields is
not a number), ``\\n`` or ``\\r\\n`` endings, empty lines (skipped), quoted numbers, a
UTF-8 byte order mark (skipped, as pyarrow skips it).  Not supported: a quoted field
with a newline inside, which no byte range can place (a line with an odd number of
``"`` is refused naming it), and a ``\\r`` inside a line (``\\r``-only endings: refused
naming the line, where the csv module would raise its own error).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass

import numpy as np

from distnewton.errors import UserError

#: formats read by byte ranges here (uncompressed)
TABLES = ("csv", "tsv")
#: pyarrow's boolean spellings, which the one-process reader takes as 1 and 0
#: the UTF-8 byte order mark a file may start with (Excel's "CSV UTF-8")
BOM = b"\xef\xbb\xbf"
BOOLEANS = {"true": 1.0, "True": 1.0, "TRUE": 1.0, "false": 0.0, "False": 0.0, "FALSE": 0.0}


@dataclass(frozen=True)
class Layout:
    """The columns of a CSV/TSV file, from its first line."""

    delimiter: str
    header: bool
    names: tuple
    label: int

    @property
    def width(self) -> int:
        """The feature columns: every column but the label."""
        return len(self.names) - 1


def layout(path, fmt, label_column=None, n_features=None) -> Layout:
    """Rank 0: the file's :class:`Layout` (the label column by name needs a header;
    by index, negative from the end; default the first), as :func:`.tables.read_csv`
    reads it."""
    from .tables import column_index, has_header
    delimiter = "\t" if fmt == "tsv" else ","
    with open(path, "rb") as fh:
        raw = fh.readline()
    first = raw.rstrip(b"\r\n").removeprefix(BOM)
    if not raw.removeprefix(BOM):                # as the other readers say of it
        raise UserError(f"{path}: no data rows (an empty file)")
    if not first.strip():
        raise UserError(f"{path}:1: the first line is empty (a CSV file starts with its "
                        "header or its first row)")
    header = has_header(path, delimiter)
    fields = split_line(first, delimiter, f"{path}:1")
    names = tuple(fields) if header else tuple(f"f{i}" for i in range(len(fields)))
    j = column_index(path, label_column, len(names), names if header else None)
    lay = Layout(delimiter, header, names, j)
    if n_features is not None and lay.width > n_features:
        raise UserError(f"{path}: {lay.width} feature columns: exceeds n_features {n_features}")
    return lay


def split_line(raw: bytes, delimiter: str, where: str) -> list:
    """The fields of one line (quotes as the csv module reads them); a UserError
    naming ``where`` for a line the csv module refuses (a ``\\r`` inside it)."""
    if b"\r" in raw:
        raise UserError(f"{where}: a carriage return (\\r) inside the line: lines end with "
                        "\\n or \\r\\n")
    text = raw.decode("utf-8", errors="replace")
    try:
        return next(csv.reader([text], delimiter=delimiter), [])
    except csv.Error as exc:
        raise UserError(f"{where}: {exc}") from None


def parse_block(lay, block: bytes, name, lines_before: int, first: bool):
    """``(data, indices, indptr, y)`` of a block of whole lines; ``first``: the block
    starts the file (its header line, if any, is skipped); ``lines_before``: the
    lines of this share before the block (error lines are counted from there)."""
    if first:
        block = block.removeprefix(BOM)
    if first and lay.header:
        cut = block.find(b"\n") + 1 or len(block)
        block, lines_before = block[cut:], lines_before + 1
    part = fast_block(lay, block)
    return part if part is not None else scan_block(lay, block, name, lines_before)


def fast_block(lay, block: bytes):
    """The block through pyarrow (float64 columns, one thread); None when it needs
    the scanner: pyarrow refuses it, a cell is empty or not finite, a quote is open,
    a ``\\r`` is not before a ``\\n`` (pyarrow would end a row there)."""
    import pyarrow as pa
    import pyarrow.csv as pcsv
    if not block.strip(b"\r\n"):
        return rows_of(lay, np.zeros((0, len(lay.names))))
    if b'"' in block and any(ln.count(b'"') % 2 for ln in block.split(b"\n")):
        return None
    if b"\r" in block and block.count(b"\r") != block.count(b"\r\n"):
        return None
    cols = [f"c{i}" for i in range(len(lay.names))]
    try:
        table = pcsv.read_csv(
            pa.py_buffer(block),
            read_options=pcsv.ReadOptions(column_names=cols, use_threads=False,
                                          block_size=max(1 << 20, len(block) + 1)),
            parse_options=pcsv.ParseOptions(delimiter=lay.delimiter),
            convert_options=pcsv.ConvertOptions(column_types={c: pa.float64() for c in cols}))
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    if any(col.null_count for col in table.columns):
        return None
    M = np.column_stack([col.to_numpy() for col in table.columns]) if table.num_rows \
        else np.zeros((0, len(cols)))
    if not np.all(np.isfinite(M)):
        return None
    return rows_of(lay, M)


def rows_of(lay, M):
    """A dense block (rows x every column) as ``(data, indices, indptr, y)``: the
    label column's values and the other columns' non-zeros."""
    y = np.ascontiguousarray(M[:, lay.label], dtype=np.float64)
    X = np.delete(M, lay.label, axis=1)
    nz = X != 0
    indptr = np.concatenate([[0], np.cumsum(nz.sum(axis=1))]).astype(np.int64)
    indices = np.nonzero(nz)[1].astype(np.int32 if X.shape[1] < 2**31 - 1 else np.int64)
    return X[nz].astype(np.float64), indices, indptr, y


def scan_block(lay, block: bytes, name, lines_before: int):
    """The block line by line: its rows, or a UserError ``NAME:LINE: what`` at the
    first bad line (``LINE`` counted from the share's start)."""
    n_cols, rows = len(lay.names), []
    for k, raw in enumerate(block.split(b"\n")):
        line = raw.rstrip(b"\r")
        if not line:
            continue                          # an empty line, as pyarrow skips it
        where = f"{name}:{lines_before + k + 1}"
        if line.count(b'"') % 2:
            raise UserError(f"{where}: a quoted field goes on past the end of the line "
                            "(CSV fields with a newline inside quotes are not read)")
        fields = split_line(line, lay.delimiter, where)
        if len(fields) != n_cols:
            raise UserError(f"{where}: {len(fields)} fields, expected {n_cols} "
                            f"(as on the {'header' if lay.header else 'first'} line)")
        rows.append([number(where, lay.names[i], f) for i, f in enumerate(fields)])
    return rows_of(lay, np.array(rows, dtype=np.float64).reshape(len(rows), n_cols))


def number(where, column, field: str) -> float:
    """One cell as a finite float, else a UserError naming the line and column."""
    text = field.strip()
    if not text:
        raise UserError(f"{where}: column {column!r} is empty")
    if text in BOOLEANS:                      # a boolean column (the scanner reads it)
        return BOOLEANS[text]
    try:
        if "_" in text or not text.isascii():  # Python's float takes 1_0 and other scripts'
            raise ValueError(text)             # digits (\u0661); a CSV reader neither
        value = float(text)
    except ValueError:
        raise UserError(f"{where}: column {column!r}: {text[:40]!r} is not a number") from None
    if not math.isfinite(value):
        raise UserError(f"{where}: column {column!r}: {text[:40]!r} is not a finite number")
    return value
