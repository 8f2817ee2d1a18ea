"""Every rank's share of a text file's rows, under MPI: parsed from its byte
range of the file, or read from the binary cache (:mod:`distnewton.data.cache`),
which a parsing job writes collectively; and the collectives by which the ranks
agree on an input error (one message for the whole job, never a hang), which
live in :mod:`distnewton.agreement` and are re-exported here.

Used by :mod:`distnewton.ingest_parallel` (a run) and
:mod:`distnewton.split_parallel` (``data split``).
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from .agreement import Agreed, agree, agree_bcast, fail_if  # noqa: F401 (re-exported)
from .data import cache, csrfile, formats
from .data.sources import (
    RANGED,
    block_parser,
    converted,
    parse_key,
    ranged_text,
    read_ranges,
    table_layout,
)
from .data.libsvm import (
    BLOCK_BYTES,
    _fast_block,
    _scan_block,
    concat_parts,
    decompress_to,
)
from .data.libsvm_arrow import parsing_memory, release_memory
from .data.ranges import byte_range, range_blocks
from .data.registry import file_sha256
from .errors import UserError
from .exchange import Rows, held

COMPRESSED = (".bz2", ".gz", ".xz")


class Phases(dict):
    """Seconds per phase of the setup: ``with phases("parse"): ...`` adds to it."""

    NAMES = ("plan", "read", "parse", "cache_read", "assemble", "cache_write", "hash",
             "labels_partition", "exchange", "test_set")

    @contextlib.contextmanager
    def __call__(self, name):
        t = time.perf_counter()
        try:
            yield
        finally:
            self[name] = self.get(name, 0.0) + time.perf_counter() - t

    def slowest(self, comm):
        """Each phase's seconds on the slowest rank (``Allreduce`` max)."""
        from mpi4py import MPI
        v = np.array([self.get(k, 0.0) for k in self.NAMES])
        comm.Allreduce(MPI.IN_PLACE, v, op=MPI.MAX)
        return {k: round(float(x), 4) for k, x in zip(self.NAMES, v)}


def parse_share(path, rank, P, zero_based, n_features, name=None, phases=None, sink=None,
                parse=None):
    """This rank's lines: (parts, lines read, the first bad line's (local line,
    message) or None).  ``name``: the file named in messages (default ``path``);
    ``sink(part)``, when given, takes each parsed block instead of ``parts``;
    ``parse(block, name, lines before, starts the file)``: a CSV/TSV block's parser
    (:func:`~distnewton.data.csv_ranges.parse_block`) instead of LIBSVM's."""
    name = path if name is None else name
    phases = Phases() if phases is None else phases
    parts, lines = [], 0
    try:
        start, end = byte_range(os.path.getsize(path), rank, P)
        blocks = range_blocks(path, start, end, BLOCK_BYTES)
        while True:
            with phases("read"):
                block = next(blocks, None)
            if block is None:
                break
            with phases("parse"):
                if parse is not None:
                    part = parse(block, name, lines, start == 0 and lines == 0)
                else:
                    part = _fast_block(block, zero_based, n_features)
                if part is None:
                    part = _scan_block(block, name, lines, zero_based, n_features)
            if len(part[1]) and part[1].max() < 2**31 - 1:
                part = (part[0], part[1].astype(np.int32), *part[2:])   # half the bytes
            if sink is None:
                parts.append(part)
            else:
                sink(part)
            lines += block.count(b"\n") + (0 if block.endswith(b"\n") else 1)
    except UserError as exc:
        m = re.match(rf"{re.escape(name)}:(\d+): (.*)", str(exc), re.S)
        if m is None:
            raise
        return parts, lines, (int(m.group(1)), m.group(2))
    except OSError as exc:
        raise UserError(f"{name}: cannot read ({exc})") from None
    return parts, lines, None


def plan(cfg, path):
    """Rank 0: how the rows are read: ``("cache", folder, meta)`` from a valid
    entry, ``("parse", None, None)`` without a cache, or ``("write", tmp, sig)``
    (parse, then write the entry from ``tmp``; a compressed file is first
    decompressed there as ``source.txt``)."""
    dc = cfg["data"]
    nf = dc["n_features"]
    fmt = formats.detect(path, dc["format"])
    if fmt != "libsvm" and fmt not in RANGED and not ranged_text(path, fmt):
        return converted(cfg, path, fmt)       # .npz, compressed CSV/TSV: read whole
    zb = parse_key(cfg, fmt)
    packed = fmt == "libsvm" and str(path).lower().endswith(COMPRESSED)
    root = cache.root_for(dc["cache"], path)
    entry = None if root is None else cache.lookup(root, path, zb, nf)
    if entry is not None:
        return ("cache", str(entry.folder), entry.meta)
    sig = None if root is None else cache.signature(path)
    tmp = None if root is None else cache.begin(root, path, zb, nf)
    if tmp is None:
        fail_if(packed, lambda: f"{path}: a compressed file is read in parallel only through "
                "a data cache it can be written to (data.cache or --cache: a writable folder; "
                "`auto` caches files of 4 MiB or more), or by one process")
        return ("parse", None, None)
    if packed:
        try:
            decompress_to(path, tmp / "source.txt")
        except UserError:
            cache.discard(tmp)
            raise
    return ("write", str(tmp), sig)



@dataclass
class Share:
    """This rank's share: ``blocks`` of consecutive rows
    (:class:`~distnewton.exchange.Rows` with the raw labels; canonical CSR with
    ``d`` columns, held in memory or read from the binary cache when sent), the
    source's ``sha`` (rank 0, when known) and the cache ``note``
    (:func:`distnewton.data.cache.read_text`)."""

    blocks: list
    d: int
    sha: str | None
    note: str

    @property
    def n_rows(self) -> int:
        return sum(r.n for r in self.blocks)

    def raw_y(self) -> np.ndarray:
        return np.concatenate([r.y for r in self.blocks] or [np.zeros(0)])


def stored(entry, a, b, d):
    """Rows ``[a, b)`` of a cache entry as :class:`~distnewton.exchange.Rows` whose
    matrices are read only when sent (their row lengths and labels now)."""
    out = []
    try:
        for path, lo, hi in entry.ranges(a, b):
            ptr, y = csrfile.read_index(path, lo, hi)
            out.append(Rows(np.diff(ptr), y, load=functools.partial(load_block, path, lo, hi,
                                                                     d)))
    except (OSError, KeyError, ValueError) as exc:
        raise UserError(f"data cache {entry.folder}: damaged ({exc}); remove it with "
                        "`distnewton data cache clear`") from None
    return out


def load_block(path, lo, hi, d):
    return canonical(csrfile.read_rows(path, lo, hi), d)[0]


def index_dtype(d):
    return np.int32 if d < 2**31 - 1 else np.int64


def canonical(part, d):
    """A parsed block ``(data, indices, indptr, y)`` as ``(CSR with d columns, y)``:
    sorted indices, no explicit zeros, 32-bit indices when d allows (``d`` None:
    the block's own largest index + 1)."""
    data, indices, indptr, y = part
    if d is None:
        d = int(indices.max()) + 1 if len(indices) else 1
    it = index_dtype(d)
    if len(data) >= 2**31 - 1:
        it = np.int64
    X = sp.csr_matrix((data, indices.astype(it, copy=False), indptr.astype(it, copy=False)),
                      shape=(len(y), d))
    unsorted, zeros = not X.has_sorted_indices, not data.all()
    if (unsorted or zeros) and not (data.flags.writeable and X.indices.flags.writeable):
        X.data, X.indices = data.copy(), X.indices.copy()   # Arrow's buffers are read-only
    if unsorted:
        X.sort_indices()
    if zeros:
        X.eliminate_zeros()
    return X, y


def grouped(parts, d, nnz_per_block=None):
    """The parsed blocks (consumed) as canonical blocks of about ``nnz_per_block``
    (default :data:`~distnewton.data.cache.BLOCK_NNZ`) non-zeros: fewer, larger
    blocks for the exchange's rounds, one group in memory twice at a time."""
    per = cache.BLOCK_NNZ if nnz_per_block is None else nnz_per_block
    out, group, size = [], [], 0
    while parts:
        p = parts.pop(0)
        group.append(p)
        size += len(p[0])
        if size >= per or not parts:
            out.append(held(*canonical(concat_parts(group) if len(group) > 1 else group[0],
                                       d)))
            group, size = [], 0
    return out


def local_rows(comm, cfg, path, phases=None, readers=None) -> Share:
    """This rank's :class:`Share` of the training rows.

    ``readers``: the ranks that read (default all; a run passes the ranks that
    host workers, so a master without workers holds no rows and hashes the file
    meanwhile).  Reader i of R reads rows ``[n i / R, n (i+1) / R)`` of a valid
    cache entry in blocks, or else parses its byte range (errors agreed: the
    first bad line, by its global line number) and, with a cache, writes its
    piece of a new entry, which rank 0 commits once every piece is written."""
    from mpi4py import MPI
    rank = comm.Get_rank()
    readers = list(range(comm.Get_size())) if readers is None else list(readers)
    me, R = (readers.index(rank), len(readers)) if rank in readers else (None, len(readers))
    dc = cfg["data"]
    nf = dc["n_features"]
    fmt = formats.detect(path, dc.get("format", "libsvm"))
    zb = dc["zero_based"]
    ph = Phases() if phases is None else phases
    with ph("plan"):
        lay = agree_bcast(comm, lambda: table_layout(cfg, path, fmt))   # CSV/TSV header
        how, where, extra = agree_bcast(comm, lambda: plan(cfg, path))
    if how == "write":                        # any rank stopped by a signal removes it
        cache.PENDING.add(Path(where))
    if how == "cache":
        entry = cache.Entry(Path(where), extra)
        n = entry.n
        d = nf if nf is not None else entry.n_cols
        with ph("cache_read"):
            blocks = agree(comm, lambda: [] if me is None else stored(
                entry, n * me // R, n * (me + 1) // R, d))
        return Share(blocks, d, entry.sha256 if rank == 0 else None, f"read {where}")
    text = os.path.join(where, "source.txt") if how == "write" and \
        str(path).lower().endswith(COMPRESSED) else path
    parts, lines, bad, sha, piece, err = [], 0, None, None, None, None
    width, parse = (0, None) if lay is None else (lay.width, block_parser(lay))
    if me is not None:
        if how == "write":                    # parsed rows go straight to the cache
            piece = cache.open_piece(where, rank)
        sink = None if piece is None else functools.partial(append_part, piece)
        try:
            if fmt in RANGED:
                with ph("read"):
                    parts, lines, bad, width = read_ranges(path, fmt, me, R, cfg, sink)
            else:
                with parsing_memory():
                    parts, lines, bad = parse_share(text, me, R, zb, nf, name=path,
                                                    phases=ph, sink=sink, parse=parse)
        except UserError as exc:              # unreadable here: every rank hears of it
            err = str(exc)
    elif rank == 0:                           # while the readers parse
        with ph("hash"):
            sha = file_sha256(path)
    line0 = comm.exscan(lines) or 0           # lines before this rank's first
    try:
        agree(comm, lambda: fail_if(err is not None, lambda: err))
        agree(comm, lambda: fail_if(bad is not None,
                                    lambda: f"{path}:{line0 + bad[0]}: {bad[1]}"))
    except UserError:
        if piece is not None:
            piece.close()
        if rank == 0 and how == "write":
            cache.discard(where)
        raise
    top = max([int(p[1].max()) for p in parts if len(p[1])] +
              [piece.top if piece is not None else -1, width - 1], default=-1)
    top = comm.allreduce(top, op=MPI.MAX)
    d = nf if nf is not None else top + 1
    written = me is None or piece is not None and not getattr(piece, "failed", False)
    if how == "write" and comm.allreduce(written, op=MPI.LAND):
        return cached_share(comm, cfg, path, where, extra, piece, sha, d, ph)
    if how == "write":                        # a piece could not be written: no cache
        if piece is not None:                 # its rows went to disk (some of them):
            piece.close()                     # read them again
            if fmt in RANGED:
                parts = read_ranges(path, fmt, me, R, cfg)[0]
            else:
                with parsing_memory():
                    parts, _, _ = parse_share(text, me, R, zb, nf, name=path, phases=ph,
                                              parse=parse)
        comm.Barrier()                        # (a decompressed text is read from tmp)
        if rank == 0:
            cache.discard(where)
    with ph("assemble"):
        return Share(grouped(parts, d), d, sha, "")


def append_part(piece, part):
    """A parsed block to the cache piece (canonical rows).  A piece that cannot take
    it is marked ``failed``: the share is then parsed again, with no cache."""
    if not getattr(piece, "failed", False):
        try:
            piece.append(*canonical(part, None))
        except OSError as exc:
            piece.failed = True
            cache.warn(piece.path, exc)


def cached_share(comm, cfg, path, tmp, sig, piece, sha, d, ph):
    """Every reader's rows are in its piece: commit the entry (rank 0), and the
    share is its rows there, read a block at a time when sent."""
    rank = comm.Get_rank()
    rows = piece.rows if piece is not None else 0
    row0 = comm.exscan(rows) or 0
    with ph("cache_write"):
        desc = "none"
        if piece is not None and rows:
            desc = cache.close_piece(piece, rank, row0)
        elif piece is not None:               # no rows here: no piece in the entry
            piece.close()
            Path(piece.path).unlink(missing_ok=True)
        descs = comm.gather(desc, root=0)
    note, meta = "", None
    if rank == 0:
        sha, note, meta = commit_entry(cfg, path, tmp, sig, descs, d, sha, ph)
    meta = comm.bcast(meta, root=0)
    if meta is None:
        raise UserError(f"{path}: its parsed rows went to the data cache {Path(tmp).parent}, "
                        "which could not keep them (the file changed while it was read, or "
                        "the folder was taken away): run again, or with data.cache: off")
    entry = cache.Entry(Path(meta["folder"]), meta)
    blocks = agree(comm, lambda: stored(entry, row0, row0 + rows, d))
    release_memory()
    return Share(blocks, d, sha, note)


def commit_entry(cfg, path, tmp, sig, descs, d, sha, ph):
    """Rank 0: the entry committed: ``(sha256, note, meta with its "folder")``, or
    ``(sha256, "", None)`` when a piece failed or the commit did."""
    with ph("hash"):
        sha = sha or file_sha256(path)
    source = Path(tmp) / "source.txt"
    if source.exists():
        source.unlink()
    pieces = [p for p in descs if p != "none"]
    dc, root = cfg["data"], Path(tmp).parent
    zb, nf = parse_key(cfg, formats.detect(path, dc.get("format", "libsvm"))), dc["n_features"]
    ok = all(p is not None for p in pieces) and cache.commit(tmp, root, path, zb, nf, sig,
                                                             pieces, d, sha)
    if not ok:
        cache.discard(tmp)
    entry = cache.lookup(root, path, zb, nf)  # ours, or another run's written meanwhile
    if entry is None:
        return sha, "", None
    note = f"{'written' if ok else 'read'} {entry.folder}"
    return sha, note, {**entry.meta, "folder": str(entry.folder)}
