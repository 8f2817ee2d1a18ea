"""LIBSVM block parser on Apache Arrow's compute kernels: the fastest path of :mod:`.libsvm`.

:func:`parse_block` splits a block of whole lines into lines and tokens and
casts the labels, indices and values with Arrow's C++ kernels (one thread),
returning what the line scanner ``libsvm._scan_block`` would return, or None
whenever the block holds anything it does not handle itself: then the numpy
parser (:mod:`.libsvm_fast`) and, failing that, the scanner (the authority on
errors, which names the file and line) read the block.

Handled here: ``#`` comments, any ASCII whitespace, CRLF, empty lines, explicit
zeros, and numbers made of the bytes ``0-9 + - . e E``.  Declined (None): any
other byte (so ``qid:``, letters, NaN, infinities, non-ASCII), a label with a
``:``, a feature token without exactly one inner ``:``, a number Arrow does not
read, a value that overflows to infinity, an index that is not plain digits,
0 in a 1-based file, an index above ``n_features`` or ``MAX_INDEX``, indices not
strictly increasing within a row.

Numbers are exact: Arrow reads decimal text into float64 with correct rounding
(its ``fast_float`` reader), as Python's ``float`` does; ``tests/test_parsers.py``
checks the two agree on every number of a random corpus, long mantissas,
subnormals and the overflow edge included.
"""

from __future__ import annotations

import contextlib
import re

import numpy as np

from .libsvm_fast import MAX_INDEX

_ALLOWED = b"0123456789+-.eE: \t\n\r\v\f"
_DIGITS = np.zeros(256, bool)
_DIGITS[list(b"0123456789")] = True
_COMMENT = re.compile(rb"#[^\n]*")


@contextlib.contextmanager
def parsing_memory():
    """While a file is read, and from then on: Arrow allocates from the system allocator (its
    default, mimalloc, keeps freed arenas: measured on an 85 MB share, the peak
    above the share's parsed rows was 109 against 91 MB), and at the end the heap's
    free pages go back to the system (:func:`release_memory`).  Not done: glibc's
    mmap threshold fixed at 256 KiB (freed temporaries returned at once) held 14 MB
    less at the peak of a 125 MB share but parsed at 37 instead of 60 MB/s, and
    ``malloc_trim`` after every block at 42 MB/s.  ``ARROW_DEFAULT_MEMORY_POOL``
    set by the user wins."""
    import os
    if available() and not os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        import pyarrow as pa
        pa.set_memory_pool(pa.system_memory_pool())
    try:
        yield
    finally:
        release_memory()


def release_memory() -> None:
    """Hand the heap's free pages back to the system (glibc's ``malloc_trim``; a
    no-op elsewhere): after the share is written to the cache and dropped."""
    import ctypes
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def available() -> bool:
    """pyarrow imports (it is a dependency; a broken install falls back to numpy)."""
    try:
        import pyarrow.compute  # noqa: F401
    except ImportError:
        return False
    return True


def _buffers(arr):
    """(offsets int64, data uint8) of a (large_)string array."""
    bufs = arr.buffers()
    otype = np.int64 if str(arr.type).startswith("large") else np.int32
    offs = np.frombuffer(bufs[1], otype)[arr.offset:arr.offset + len(arr) + 1]
    data = np.frombuffer(bufs[2], np.uint8) if bufs[2] is not None else np.zeros(0, np.uint8)
    return offs.astype(np.int64), data


def parse_block(block: bytes, zero_based: bool, n_features):
    """``(data, indices, indptr, y)`` of ``block`` (0-based int64 indices), or None."""
    import pyarrow as pa
    import pyarrow.compute as pc
    text = _COMMENT.sub(b"", block) if b"#" in block else block
    if text.translate(None, _ALLOWED):      # a byte outside the allowed ones
        return None
    whole = pa.Array.from_buffers(pa.large_binary(), 1, [None, pa.py_buffer(
        np.array([0, len(text)], np.int64)), pa.py_buffer(text)])       # no copy
    lines = pc.split_pattern(whole, b"\n").flatten()
    lines = pc.ascii_trim_whitespace(lines.cast(pa.large_string()))
    lines = lines.filter(pc.greater(pc.binary_length(lines), 0))
    toks = pc.ascii_split_whitespace(lines)
    counts = pc.list_value_length(toks).to_numpy().astype(np.int64)
    flat = toks.flatten()
    first = np.zeros(len(flat) + 1, bool)
    first[np.concatenate([[0], np.cumsum(counts)[:-1]])] = True
    first = first[:-1] if len(flat) else first[:0]
    mask = pa.array(~first)
    feats = flat.filter(mask)
    try:
        y = pc.cast(flat.filter(pa.array(first)), pa.float64()).to_numpy()
        pairs = pc.split_pattern(feats, ":", max_splits=1)   # a label with a ':', a value
        if len(pairs) and pc.min(pc.list_value_length(pairs)).as_py() != 2:   # with one
            return None                  # more, or a token without one: not numbers
        idx_s = pc.list_element(pairs, 0)
        val_s = pc.list_element(pairs, 1)
        vals = pc.cast(val_s, pa.float64()).to_numpy()
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    offs, data = _buffers(idx_s)
    lens = np.diff(offs)
    if len(lens) and (lens.min() < 1 or lens.max() > 10 or not _DIGITS[data[offs[0]:offs[-1]]].all()):
        return None                      # empty, signed, too long: the other readers decide
    try:
        idx = pc.cast(idx_s, pa.int64()).to_numpy()
    except pa.ArrowInvalid:
        return None
    if not (np.isfinite(y).all() and np.isfinite(vals).all()):
        return None
    nfeat = counts - 1
    indptr = np.zeros(len(counts) + 1, np.int64)
    np.cumsum(nfeat, out=indptr[1:])
    if len(idx):
        row_start = np.zeros(len(idx), bool)
        row_start[indptr[:-1][nfeat > 0]] = True
        if ((idx[1:] <= idx[:-1]) & ~row_start[1:]).any():
            return None                  # unsorted or repeated in a row: the scanner decides
        top = idx.max()
        if (not zero_based and idx.min() == 0) or top > MAX_INDEX or (
                n_features is not None and top - (0 if zero_based else 1) >= n_features):
            return None
    return vals, idx - (0 if zero_based else 1), indptr, y
