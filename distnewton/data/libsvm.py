"""Read, check and describe LIBSVM / SVMlight sparse text files.

Format: one sample per line, ``label idx:val idx:val ...``; indices are 1-based
unless ``zero_based=True``.  Accepted: plain, ``.gz``, ``.bz2`` and ``.xz`` files (by
extension), an optional ``qid:N`` right after the label (ignored), ``#``
comments (whole line or trailing), blank lines, CRLF line endings, no final
newline.  Numbers are read with Python's ``float``/``int`` grammar, except that
``_`` digit separators, non-ASCII characters, NaN and infinities are rejected.

Policy for odd rows:

* explicit zeros (``16:0.000000``) are accepted and dropped from the matrix
  (they still count towards the largest index seen, hence ``n_features``);
* indices out of order within a row are accepted (and sorted);
* the same index twice in one row is an error.

Speed: the file is decompressed in blocks of whole lines and each block is
parsed by Arrow's compute kernels (:func:`.libsvm_arrow.parse_block`), or when
they decline it by the vectorised numpy reader :func:`.libsvm_fast.parse_block`.
Only when both decline a block (anything but plain well-formed rows: odd bytes,
non-finite values, odd ``qid`` tokens, an index above ``n_features``, unsorted
rows, ...) is the block re-read by the pure-Python scanner :func:`_scan_block`,
which is the authority: it raises ``UserError("FILE:LINE: what")`` for the
first bad line, or returns the block (so blocks with unsorted rows load, slowly).
"""

from __future__ import annotations

import lzma
import os
import zlib
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from distnewton.data import libsvm_arrow
from distnewton.data.libsvm_fast import MAX_INDEX, parse_block
from distnewton.data.libsvm_write import open_by_extension as _open
from distnewton.data.libsvm_write import write_libsvm  # noqa: F401 (re-exported)
from distnewton.errors import UserError
from distnewton.objectives import LOSSES, is_classification

#: pyarrow is there (a dependency; the numpy parser takes over if its import fails)
ARROW = libsvm_arrow.available()

#: decompressed text parsed per block: Arrow's temporaries are many times the
#: block.  Measured on a 124 MB share of the 1 GB e2e set (61 MB parsed, CPU
#: seconds, the peak above the parsed rows): 1 MB 2.2 s / 24 MB, 2 MB 1.4 s /
#: 40 MB, 4 MB 1.8 s / 83 MB, 16 MB 1.9 s / 253 MB
BLOCK_BYTES = 2 << 20


@dataclass
class Dataset:
    """A labelled sparse data set as read from ``path``.

    ``X`` is a float64 CSR matrix in canonical format (sorted indices, no
    duplicates) without explicit zeros; ``y`` holds the raw labels (float64).
    """

    X: sp.csr_matrix
    y: np.ndarray
    path: str

    @property
    def n_samples(self) -> int:
        return self.X.shape[0]

    @property
    def n_features(self) -> int:
        return self.X.shape[1]

    @property
    def nnz(self) -> int:
        return self.X.nnz


def _blocks(path: str):
    """Yield the decompressed file in blocks that end at a line boundary."""
    with _open(path, "rb") as f:
        tail = b""
        while chunk := f.read(BLOCK_BYTES):
            buf = tail + chunk
            cut = buf.rfind(b"\n") + 1
            tail = buf[cut:]
            if cut:
                yield buf[:cut]
        if tail:
            yield tail


def decompress_to(path: str, dest) -> None:
    """Write the decompressed text of ``path`` (bz2, gz, xz by extension) to ``dest``."""
    try:
        with _open(path, "rb") as src, open(dest, "wb") as out:
            while chunk := src.read(BLOCK_BYTES):
                out.write(chunk)
    except (OSError, EOFError, zlib.error, lzma.LZMAError) as e:
        raise UserError(f"{path}: cannot read or decompress: {e}") from None


def _show(tok: bytes) -> str:
    s = tok.decode("ascii", "backslashreplace")
    return repr(s if len(s) <= 40 else s[:37] + "...")


def _number(tok: bytes, conv):
    """``conv(tok)`` (float or int), or None when ``tok`` is not a number."""
    if not tok.isascii() or b"_" in tok:
        return None
    try:
        return conv(tok)
    except ValueError:
        return None


def _scan_block(block: bytes, path: str, line0: int, zero_based: bool, n_features):
    """Parse one block line by line; the slow, authoritative reader.

    ``line0`` is the number of lines before the block.  Returns
    ``(data, indices, indptr, y)`` with 0-based int64 indices, or raises
    ``UserError(f"{path}:{line}: ...")`` for the first bad line.
    """
    data, indices, indptr, labels = [], [], [0], []
    ln = line0

    def bad(what):
        raise UserError(f"{path}:{ln}: {what}")

    for ln, line in enumerate(block.split(b"\n"), start=line0 + 1):
        hash_at = line.find(b"#")
        toks = (line[:hash_at] if hash_at >= 0 else line).split()
        if not toks:
            continue
        if b":" in toks[0]:
            bad(f"missing label: the line starts with the feature {_show(toks[0])}")
        label = _number(toks[0], float)
        if label is None:
            bad(f"label {_show(toks[0])} is not a number")
        if not np.isfinite(label):
            bad(f"label {_show(toks[0])} is not finite")
        feats = toks[1:]
        if feats and feats[0].startswith(b"qid"):
            name, _, qid = feats[0].partition(b":")
            if name != b"qid" or _number(qid, int) is None:
                bad(f"{_show(feats[0])} is not a valid qid:N token")
            feats = feats[1:]
        row = []
        for tok in feats:
            i_s, colon, v_s = tok.partition(b":")
            if not colon:
                bad(f"token {_show(tok)} is not of the form index:value")
            if i_s == b"qid":
                bad("qid:N must come right after the label")
            idx = _number(i_s, int)
            if idx is None:
                bad(f"feature index {_show(i_s)} is not an integer")
            if idx < 0:
                bad(f"feature index {idx} is negative")
            if idx == 0 and not zero_based:
                bad("feature index 0 in a file read with 1-based indices; "
                    "use zero_based=True if the file's indices start at 0")
            if n_features is not None and idx > n_features - int(zero_based):
                extra = " (zero-based)" if zero_based else ""
                bad(f"feature index {idx} exceeds n_features={n_features}{extra}")
            if idx > MAX_INDEX:
                bad(f"feature index {idx} is too large (at most {MAX_INDEX})")
            val = _number(v_s, float)
            if val is None:
                bad(f"value {_show(v_s)} of feature {idx} is not a number")
            if not np.isfinite(val):
                bad(f"value {_show(v_s)} of feature {idx} is not finite")
            row.append(idx)
            data.append(val)
        if any(b <= a for a, b in zip(row, row[1:])):
            seen = set()
            for idx in row:
                if idx in seen:
                    bad(f"feature index {idx} appears more than once in the row")
                seen.add(idx)
        indices.extend(row)
        indptr.append(len(indices))
        labels.append(label)
    ind = np.array(indices, dtype=np.int64) - (0 if zero_based else 1)
    return (np.array(data, dtype=np.float64), ind,
            np.array(indptr, dtype=np.int64), np.array(labels, dtype=np.float64))


def _fast_block(block: bytes, zero_based: bool, n_features):
    """Parse one block vectorised (Arrow's kernels, else numpy); None when the
    block needs the scanner."""
    if ARROW:
        part = libsvm_arrow.parse_block(block, zero_based, n_features)
        if part is not None:
            return part
    return parse_block(block, zero_based, n_features)


def read_libsvm(path, n_features=None, zero_based=False) -> Dataset:
    """Read a LIBSVM file (plain, .gz, .bz2) into a :class:`Dataset`.

    ``n_features``: number of columns; default the largest index seen (plus
    one for ``zero_based`` files).  Any bad input raises ``UserError`` naming
    the file and the 1-based line number of the first bad line.
    """
    path = os.fspath(path)
    if n_features is not None and (isinstance(n_features, bool) or
                                   not isinstance(n_features, (int, np.integer))
                                   or n_features < 1):
        raise UserError(f"{path}: n_features must be a positive integer, "
                        f"got {n_features!r}")
    if not os.path.exists(path):
        raise UserError(f"{path}: no such file")
    if os.path.isdir(path):
        raise UserError(f"{path}: is a directory, not a data file")
    parts, line0 = [], 0
    try:
        with libsvm_arrow.parsing_memory():
            for block in _blocks(path):
                part = _fast_block(block, zero_based, n_features)
                if part is None:
                    part = _scan_block(block, path, line0, zero_based, n_features)
                parts.append(part)
                line0 += block.count(b"\n")
    except PermissionError as e:
        raise UserError(f"{path}: cannot read ({e.strerror})") from None
    except (OSError, EOFError, zlib.error, lzma.LZMAError) as e:
        raise UserError(f"{path}: cannot read or decompress: {e}") from None
    data, indices, indptr, y = concat_parts(parts)
    n_rows = len(y)
    if n_rows == 0:
        raise UserError(f"{path}: no data rows")
    if n_features is None:
        n_features = int(indices.max()) + 1 if len(indices) else 0
    itype = np.int32 if max(len(data), n_features) < 2**31 - 1 else np.int64
    X = sp.csr_matrix((data, indices.astype(itype), indptr.astype(itype)),
                      shape=(n_rows, n_features))
    X.sort_indices()
    X.eliminate_zeros()
    return Dataset(X=X, y=y, path=path)


def concat_parts(parts):
    """The blocks' ``(data, indices, indptr, y)`` as one (indptr int64, y float64)."""
    if not parts:
        return np.zeros(0), np.zeros(0, np.int64), np.zeros(1, np.int64), np.zeros(0)
    data = np.concatenate([p[0] for p in parts])
    indices = np.concatenate([p[1] for p in parts])
    offsets = np.cumsum([0] + [p[2][-1] for p in parts[:-1]])
    indptr = np.concatenate([[0]] + [p[2][1:] + o for p, o in zip(parts, offsets)])
    return (data, indices, indptr.astype(np.int64),
            np.concatenate([p[3] for p in parts]).astype(np.float64))


def _label_key(v: float):
    """A label as an int when integral, else as a float (for printing)."""
    return int(v) if float(v).is_integer() else float(v)


def check_counts(y, source, first_row=0):
    """UserError naming ``source`` and the first data row (counted from 1; the rows
    before this block: ``first_row``; None: ``y`` holds distinct values, not rows)
    whose label is negative or not finite: Poisson regression's targets are counts or
    rates y >= 0."""
    bad = np.flatnonzero(~((y >= 0) & np.isfinite(y)))
    if bad.size:
        where = "" if first_row is None else f" data row {first_row + int(bad[0]) + 1}:"
        v = y[bad[0]]
        what = "is negative" if v < 0 else "is not finite"
        raise UserError(f"{source}:{where} label {_label_key(v)} {what}: loss "
                        f"poisson needs counts or rates >= 0")


def map_labels(y, loss, positive_labels=None, source="labels", reference=None):
    """Map raw labels to what ``loss`` expects; return ``(labels, mapping)``.

    ``ridge``: labels unchanged; ``poisson``: unchanged, and every one must be
    >= 0 (:func:`check_counts`).  ``logistic`` and ``squared_hinge`` (targets
    -1/+1, :data:`~distnewton.objectives.CLASSIFICATION_LOSSES`), first rule
    that applies:

    0. fewer than two distinct labels: ``UserError`` (one class; a test set,
       mapped with ``reference``, may hold one);
    1. ``positive_labels`` given: labels in that list -> +1, others -> -1;
    2. all labels in {-1, +1}: kept as they are;
    3. exactly two distinct labels: the smaller -> -1, the larger -> +1
       (so {0, 1} and {1, 2} work);
    4. otherwise ``UserError`` naming ``source`` and asking for
       ``data.positive_labels``.

    ``mapping`` is a plain dict (JSON/YAML safe) recording the rule and the
    table ``{"<raw label>": mapped}``.  Pass the training set's mapping as
    ``reference`` for a test set: the same table is applied (``positive_labels``
    is then ignored) and labels it does not know raise ``UserError``.
    """
    y = np.asarray(y, dtype=np.float64)
    if loss == "ridge":
        return y.copy(), {"loss": "ridge", "rule": "identity"}
    if loss == "poisson":
        check_counts(y, source)
        return y.copy(), {"loss": "poisson", "rule": "identity"}
    if not is_classification(loss):
        raise UserError(f"unknown loss {loss!r}: choose one of {', '.join(LOSSES)}")
    values = np.unique(y)
    if reference is not None:
        if not is_classification(reference.get("loss")):
            raise ValueError(f"reference mapping is for loss {reference.get('loss')!r}")
        table = {float(k): float(v) for k, v in reference["map"].items()}
        unknown = [_label_key(v) for v in values if float(v) not in table]
        if unknown:
            raise UserError(f"{source}: label(s) {unknown[:10]} do not occur in the "
                            f"training labels {sorted(_label_key(k) for k in table)}")
        rule, pos = reference["rule"], reference.get("positive_labels")
    elif len(values) < 2:
        raise UserError(f"{source}: every label is {[_label_key(v) for v in values]}: "
                        f"{loss} loss needs two classes in the training set")
    elif positive_labels is not None:
        pos = sorted(float(p) for p in np.atleast_1d(positive_labels))
        table = {float(v): (1.0 if v in pos else -1.0) for v in values}
        if len(set(table.values())) < 2:
            which = "no" if -1.0 in table.values() else "every"
            raise UserError(f"{source}: data.positive_labels {[_label_key(p) for p in pos]}"
                            f" match {which} label (labels present: "
                            f"{[_label_key(v) for v in values[:20]]})")
        rule, table = "positive_labels", {**table, **{p: 1.0 for p in pos}}
    elif set(values.tolist()) <= {-1.0, 1.0}:
        rule, pos, table = "plus_minus_one", None, {-1.0: -1.0, 1.0: 1.0}
    elif len(values) == 2:
        rule, pos = "two_labels", None
        table = {float(values[0]): -1.0, float(values[1]): 1.0}
    else:
        shown = [_label_key(v) for v in values[:10]] + (["..."] if len(values) > 10 else [])
        raise UserError(f"{source}: {len(values)} distinct labels {shown}; {loss} "
                        "loss needs two classes: set data.positive_labels to the "
                        "labels that count as +1, or model.multiclass: ovr")
    keys = np.array(sorted(table))
    out = np.array([table[k] for k in keys])[np.searchsorted(keys, y)]
    mapping = {"loss": loss, "rule": rule, "positive_labels":
               None if pos is None else [_label_key(p) for p in pos],
               "map": {str(_label_key(k)): table[k] for k in keys}}
    return out, mapping


def dataset_info(path, zero_based=False) -> dict:
    """Read and check ``path``; return its shape, nnz, density, label counts and size."""
    ds = read_libsvm(path, zero_based=zero_based)
    values, counts = np.unique(ds.y, return_counts=True)
    cells = ds.n_samples * ds.n_features
    return {"path": ds.path, "n_samples": ds.n_samples, "n_features": ds.n_features,
            "nnz": ds.nnz, "density": ds.nnz / cells if cells else 0.0,
            "labels": {_label_key(v): int(c) for v, c in zip(values, counts)},
            "file_bytes": os.path.getsize(ds.path)}

