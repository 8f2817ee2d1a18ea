"""Every rank's share of a text file's rows, under MPI: parsed from its byte
range of the file, or read from the binary cache (:mod:`distnewton.data.cache`),
which a parsing job writes collectively; and the collectives by which the ranks
agree on an input error (one message for the whole job, never a hang).

Used by :mod:`distnewton.ingest_parallel` (a run) and
:mod:`distnewton.split_parallel` (``data split``).
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from .data import cache
from .data.libsvm import (
    BLOCK_BYTES,
    _fast_block,
    _scan_block,
    concat_parts,
    decompress_to,
)
from .data.ranges import byte_range, range_blocks
from .data.registry import file_sha256
from .errors import UserError

COMPRESSED = (".bz2", ".gz", ".xz")


def agree(comm, fn):
    """``fn()`` on this rank; when any rank raises a UserError, every rank raises
    the lowest rank's (one message for the whole job, never a hang)."""
    err, out = None, None
    try:
        out = fn()
    except UserError as exc:
        err = str(exc)
    errors = comm.allgather(err)
    first = next((e for e in errors if e), None)
    if first is not None:
        raise UserError(first)
    return out



def fail_if(condition, message):
    """UserError(message()) when ``condition``."""
    if condition:
        raise UserError(message())



def agree_bcast(comm, fn):
    """``fn()`` on rank 0, its value on every rank; a UserError there is raised
    on every rank."""
    out = None
    if comm.Get_rank() == 0:
        try:
            out = (None, fn())
        except UserError as exc:
            out = (str(exc), None)
    err, value = comm.bcast(out, root=0)
    if err is not None:
        raise UserError(err)
    return value



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



def parse_share(path, rank, P, zero_based, n_features, name=None, phases=None):
    """This rank's lines: (parts, lines read, the first bad line's (local line,
    message) or None).  ``name``: the file named in messages (default ``path``)."""
    name = path if name is None else name
    phases = Phases() if phases is None else phases
    start, end = byte_range(os.path.getsize(path), rank, P)
    parts, lines = [], 0
    blocks = range_blocks(path, start, end, BLOCK_BYTES)
    try:
        while True:
            with phases("read"):
                block = next(blocks, None)
            if block is None:
                break
            with phases("parse"):
                part = _fast_block(block, zero_based, n_features)
                if part is None:
                    part = _scan_block(block, name, lines, zero_based, n_features)
            parts.append(part)
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
    zb, nf = dc["zero_based"], dc["n_features"]
    root = cache.root_for(dc["cache"], path)
    if root is None:
        return ("parse", None, None)
    entry = cache.lookup(root, path, zb, nf)
    if entry is not None:
        return ("cache", str(entry.folder), entry.meta)
    sig = cache.signature(path)
    tmp = cache.begin(root, path, zb, nf)
    if tmp is None:
        if str(path).lower().endswith(COMPRESSED):
            raise UserError(f"{path}: the cache folder {root} cannot be written, and a "
                            "compressed file is read in parallel only through it: set "
                            "data.cache to a writable folder")
        return ("parse", None, None)
    if str(path).lower().endswith(COMPRESSED):
        try:
            decompress_to(path, tmp / "source.txt")
        except UserError:
            cache.discard(tmp)
            raise
    return ("write", str(tmp), sig)



def local_rows(comm, cfg, path, phases=None):
    """This rank's share of the training rows and what all ranks agree on:
    ``(X canonical CSR with d columns, raw labels, sha256 on rank 0 else None,
    the cache note of :func:`~distnewton.ingest.read_cached`)``.

    From a valid cache entry each rank reads rows ``[n r / P, n (r+1) / P)``;
    else each parses its byte range (errors agreed: the first bad line, by its
    global line number) and, with a cache, writes its piece of a new entry, which
    rank 0 commits once every piece is written."""
    from mpi4py import MPI
    rank, P = comm.Get_rank(), comm.Get_size()
    dc = cfg["data"]
    zb, nf = dc["zero_based"], dc["n_features"]
    ph = Phases() if phases is None else phases
    with ph("plan"):
        how, where, extra = agree_bcast(comm, lambda: plan(cfg, path))
    if how == "cache":
        entry = cache.Entry(Path(where), extra)
        n = entry.n
        with ph("cache_read"):
            data, indices, indptr, raw_y = agree(
                comm, lambda: entry.rows(n * rank // P, n * (rank + 1) // P))
        top, sha = entry.n_cols - 1, entry.sha256 if rank == 0 else None
        note = f"read {where}"
    else:
        text = os.path.join(where, "source.txt") if how == "write" and \
            str(path).lower().endswith(COMPRESSED) else path
        parts, lines, bad = parse_share(text, rank, P, zb, nf, name=path, phases=ph)
        line0 = comm.exscan(lines) or 0       # lines before this rank's first
        try:
            agree(comm, lambda: fail_if(bad is not None,
                                        lambda: f"{path}:{line0 + bad[0]}: {bad[1]}"))
        except UserError:
            if rank == 0 and how == "write":
                cache.discard(where)
            raise
        with ph("assemble"):
            data, indices, indptr, raw_y = concat_parts(parts)
        del parts
        top = comm.allreduce(int(indices.max()) if len(indices) else -1, op=MPI.MAX)
        sha, note = None, ""
    d = nf if nf is not None else top + 1
    with ph("assemble"):
        X = sp.csr_matrix((data, indices.astype(np.int32 if d < 2**31 - 1 else np.int64,
                                                copy=False), indptr), shape=(len(raw_y), d))
        del data, indices
        if how != "cache":
            X.sort_indices()
            X.eliminate_zeros()
    if how == "write":
        sha, note = write_entry(comm, cfg, path, where, extra, X, raw_y, d, ph)
    return X, raw_y, sha, note



def write_entry(comm, cfg, path, tmp, sig, X, raw_y, d, ph):
    """Every rank writes its piece; rank 0 commits the entry (or drops it when a
    piece failed): ``(the source's sha256, the cache note)`` on rank 0."""
    rank = comm.Get_rank()
    row0 = comm.exscan(len(raw_y)) or 0
    with ph("cache_write"):
        piece = cache.write_piece(tmp, rank, row0, X.data, X.indices, X.indptr, raw_y)
        pieces = comm.gather(piece, root=0)
    if rank != 0:
        return None, ""
    with ph("hash"):
        sha = file_sha256(path)
    source = Path(tmp) / "source.txt"
    if source.exists():
        source.unlink()
    dc, root = cfg["data"], Path(tmp).parent
    if any(p is None for p in pieces):
        cache.discard(tmp)
        return sha, ""
    done = cache.commit(tmp, root, path, dc["zero_based"], dc["n_features"], sig, pieces, d, sha)
    return sha, (f"written {root / cache.key(path, dc['zero_based'], dc['n_features'])}"
                 if done else "")
