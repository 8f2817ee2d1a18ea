"""Write LIBSVM text: :func:`write_libsvm`, formatted by Apache Arrow's kernels.

Every number is written so that Python's ``float`` (and :func:`.libsvm.read_libsvm`)
reads back the identical float64: feature values in the *shortest* decimal that
round-trips (Arrow's float64 -> string cast, which is double-conversion's
``ToShortest``: ``0.1``, ``-1.5``, ``1e-7``, ``1e+22``, ``5e-324``), indices
1-based as integers, labels as integers when integral (``1``, ``-1``, ``0``;
below 2**63 in magnitude) and otherwise in the same shortest form.  Zeros are
omitted (so a row may be just its label), NaN and infinities are refused, and
``.gz``/``.bz2``/``.xz`` paths are compressed.  ``tests/test_write.py`` checks the round
trip bit for bit on random normals, random bit patterns over the whole float64
range, subnormals and the extremes.

How: the matrix is cut into chunks of whole rows (at most :data:`CHUNK_NNZ`
non-zeros and :data:`CHUNK_ROWS` rows, so memory stays bounded); per chunk the
values are cast to strings, the indices looked up in a table of ``"1" .. "d"``
(three times faster than a cast), joined into ``i:v`` tokens
(``binary_join_element_wise``), the tokens of each row joined with spaces over a
list view of the CSR offsets (``binary_join``), and each row joined to its label,
which carries the newline in front (``"\\n" + label``; an empty row is a null,
skipped).  The chunk's text is then the contiguous data buffer of that string
array, less its leading newline, plus a final one.
The kernels release the GIL: chunks are formatted by :func:`writer_threads`
threads (the cores this process may use, at most 4) while the main thread
writes them in order.

Why Arrow: measured on 2 cores (one thread each, 4M values of N(0, 1/20)):
Arrow's float cast ~140-220 ns per value, Python's ``"%.17g" %`` (the previous
writer) ~1 us per ``i:v`` token with its joins, ``repr`` ~1.9 us,
``numpy.char.mod`` ~5 us.  Polars' cast (~55 ns, Ryu) is not a dependency.  A
vectorised numpy shortest-digits algorithm would need 128-bit arithmetic
emulated over some 50 passes of 40M elements: no faster, and far riskier.
The 2,000,000 x 1,000 synthetic set (40M non-zeros, 1 GB, ``distnewton data
synth``): 12-14 s of CPU instead of 43-50 s, of which generation 2-2.4 s and
formatting 9-11 s (the float cast about half of it); wall 13-21 s instead of
44-80 s on 2 cores shared with other jobs.  Splitting the rows over MPI ranks
(each writing at its offset) was not built: on 2 cores the threads already use
both, and every rank would have to generate the whole set.

Without pyarrow (a dependency; a broken install) the old pure-Python writer
(``%.17g``) runs: slower, and other bytes, but the same numbers.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.sparse as sp

from distnewton.data import libsvm_arrow

#: most non-zeros formatted at once (the temporaries are ~100 bytes per value)
CHUNK_NNZ = 1 << 18
#: most rows formatted at once
CHUNK_ROWS = 1 << 15
#: pyarrow imports (a dependency); else the pure-Python fallback formats
ARROW = libsvm_arrow.available()
#: indices are looked up in a table of their strings up to this many columns
MAX_NAMES = 1 << 22
#: integral labels below this magnitude are written as integers (int64 range)
_INT_LABEL = 2.0 ** 63


def open_by_extension(path: str, mode: str):
    """``open``, or ``bz2``/``gzip``/``lzma.open`` for ``.bz2``/``.gz``/``.xz`` paths
    (to read: a regular file only, :func:`distnewton.inputs.require_regular`)."""
    if "r" in mode:
        from ..inputs import require_regular
        require_regular(path)
    low = path.lower()
    if low.endswith(".bz2"):
        return bz2.open(path, mode)
    if low.endswith(".gz"):
        return gzip.open(path, mode)
    if low.endswith(".xz"):
        return lzma.open(path, mode)
    return open(path, mode)


def writer_threads() -> int:
    """Threads that format chunks: the cores this process may run on, 1 to 4."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:                      # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(4, cores))


def canonical(X, y):
    """``(X, y)`` as a canonical float64 CSR without zeros and float64 labels.

    Raises ``ValueError`` for a row/label count mismatch or non-finite numbers.
    """
    X = sp.csr_matrix(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).ravel()
    if X.shape[0] != len(y):
        raise ValueError(f"X has {X.shape[0]} rows but y has {len(y)} labels")
    if not X.has_canonical_format or not X.data.all():     # else no copy
        X = X.copy()
        X.sum_duplicates()
        X.eliminate_zeros()
    if not (np.isfinite(X.data).all() and np.isfinite(y).all()):
        raise ValueError("cannot write NaN or infinite values")
    return X, y


def chunk_bounds(indptr, start: int = 0, stop: int | None = None) -> list[int]:
    """Row boundaries ``[start, ..., stop]`` of chunks of at most
    :data:`CHUNK_ROWS` rows and :data:`CHUNK_NNZ` non-zeros (or one row)."""
    stop = len(indptr) - 1 if stop is None else stop
    bounds = [start]
    while bounds[-1] < stop:
        r0 = bounds[-1]
        r1 = int(np.searchsorted(indptr, indptr[r0] + CHUNK_NNZ, side="right")) - 1
        bounds.append(min(stop, r0 + CHUNK_ROWS, max(r0 + 1, r1)))
    return bounds


def _labels(y):
    """Arrow strings of labels: integers when integral, else shortest floats."""
    import pyarrow as pa
    import pyarrow.compute as pc
    integral = (np.trunc(y) == y) & (np.abs(y) < _INT_LABEL)
    ints = pc.cast(pa.array(np.where(integral, y, 0).astype(np.int64)), pa.large_string())
    if integral.all():
        return ints
    return pc.if_else(pa.array(integral), ints, pc.cast(pa.array(y), pa.large_string()))


def index_names(d: int):
    """Arrow strings ``"1" .. "d"`` (looked up faster than cast), or None for
    d > :data:`MAX_NAMES` or without pyarrow."""
    if not ARROW or d > MAX_NAMES:
        return None
    import pyarrow as pa
    import pyarrow.compute as pc
    return pc.cast(pa.array(np.arange(1, d + 1, dtype=np.int64)), pa.large_string())


def format_chunk(X, y, r0: int, r1: int, names=None) -> bytes | memoryview:
    """The LIBSVM text of rows ``r0:r1`` of canonical ``X``, newline-terminated
    (``names``: :func:`index_names` of ``X``'s columns, else indices are cast)."""
    if not ARROW:
        return _format_python(X, y, r0, r1)
    import pyarrow as pa
    import pyarrow.compute as pc
    ptr = X.indptr
    a, b = int(ptr[r0]), int(ptr[r1])
    text = pa.large_string()
    space = pa.scalar(" ", text)
    if names is not None:
        idx = names.take(pa.array(X.indices[a:b]))
    else:
        idx = pc.cast(pa.array(np.add(X.indices[a:b], 1, dtype=np.int64)), text)
    tok = pc.binary_join_element_wise(idx, pc.cast(pa.array(X.data[a:b]), text),
                                      pa.scalar(":", text))
    offs = np.asarray(ptr[r0:r1 + 1], dtype=np.int64) - a
    valid = np.packbits(offs[1:] > offs[:-1], bitorder="little")      # empty rows: null
    lists = pa.Array.from_buffers(pa.large_list(text), r1 - r0, [pa.py_buffer(valid),
                                  pa.py_buffer(offs)], children=[tok])
    rows = pc.binary_join(lists, space)
    heads = pc.binary_join_element_wise(pa.scalar("\n", text), _labels(y[r0:r1]), pa.scalar("", text))
    lines = pc.binary_join_element_wise(heads, rows, space, null_handling="skip")
    o = np.frombuffer(lines.buffers()[1], np.int64)[lines.offset:lines.offset + len(lines) + 1]
    body = memoryview(lines.buffers()[2])[int(o[0]) + 1:int(o[-1])]     # less the first "\n"
    return b"".join((body, b"\n"))


def _format_python(X, y, r0: int, r1: int) -> bytes:
    """The same rows by Python's ``%`` formatting (``%.17g``): the fallback."""
    labels = ["%d" % v if v.is_integer() else "%.17g" % v for v in y[r0:r1].tolist()]
    a, b = X.indptr[r0], X.indptr[r1]
    toks = list(map("%d:%.17g".__mod__,
                    zip((X.indices[a:b] + 1).tolist(), X.data[a:b].tolist())))
    off = (X.indptr[r0:r1 + 1] - a).tolist()
    lines = [" ".join([labels[r]] + toks[off[r]:off[r + 1]]) for r in range(r1 - r0)]
    return ("\n".join(lines) + "\n").encode("ascii")


def formatted(X, y, start: int = 0, stop: int | None = None, threads: int | None = None):
    """Yield the text of rows ``start:stop`` chunk by chunk, in order, formatted
    by ``threads`` threads (default :func:`writer_threads`) a few chunks ahead."""
    bounds = chunk_bounds(X.indptr, start, stop)
    spans = list(zip(bounds[:-1], bounds[1:]))
    threads = writer_threads() if threads is None else threads
    names = index_names(X.shape[1])
    if threads <= 1 or len(spans) <= 1:
        for r0, r1 in spans:
            yield format_chunk(X, y, r0, r1, names)
        return
    with ThreadPoolExecutor(threads) as pool:
        ahead = 2 * threads                                # bounded memory
        futures = [pool.submit(format_chunk, X, y, *s, names) for s in spans[:ahead]]
        for i in range(len(spans)):
            if i + ahead < len(spans):
                futures.append(pool.submit(format_chunk, X, y, *spans[i + ahead], names))
            yield futures[i].result()
            futures[i] = None


def write_libsvm(path, X, y) -> None:
    """Write ``X`` (sparse or dense) and ``y`` as LIBSVM text, 1-based indices.

    Every value is written in a form that reads back to the identical float64
    (see the module docstring), zeros are omitted, integral labels are written
    as ints; ``.gz``/``.bz2``/``.xz`` compress by extension.  ``ValueError`` for NaN,
    infinities or a label count that does not match the rows.  The text goes
    to ``.tmp-*-NAME`` beside ``path`` first, renamed when complete: a run
    stopped while writing (``data.synth``, a signal) leaves no partial file.
    """
    import uuid
    path = os.fspath(path)
    X, y = canonical(X, y)
    head, name = os.path.split(path)
    tmp = os.path.join(head, f".tmp-{uuid.uuid4().hex[:8]}-{name}")
    try:
        with open_by_extension(tmp, "wb") as f:
            for text in formatted(X, y):
                f.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
