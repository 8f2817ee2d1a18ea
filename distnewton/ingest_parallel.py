"""Parallel ingestion under MPI: every rank parses its own part of the text file.

Used by :class:`~distnewton.session.Session` when ``data.train`` is an
uncompressed LIBSVM file (:func:`applies`); otherwise rank 0 reads the file and
scatters the shards (:mod:`distnewton.ingest`).  Every rank of the job:

1. parses the lines that start in its byte range (:mod:`distnewton.data.ranges`,
   the block parsers of :mod:`distnewton.data.libsvm`);
2. agrees with the others on the first bad line (``FILE:LINE`` with the global
   line number, from an ``Exscan`` of the ranks' line counts), on d
   (``Allreduce`` max of the indices), n and the rows before it (``Exscan``),
   the label set (``allgather`` of each rank's distinct labels) and so the label
   mapping, all as rank 0 alone would have found them;
3. computes the partition (``data.partition``, ``data.seed``) from n (and, for
   ``label_skew``, the labels, ``Allgatherv``) exactly as rank 0 would;
4. sends each of its rows to the rank hosting the row's worker (``Alltoallv``
   of the CSR row lengths, indices, values and labels) and builds its workers'
   shards from what it receives, rows in increasing global order as in
   ``X[parts[k]]``: the same shards, so the same iterates, as the rank-0 path.

No rank holds the whole matrix: a rank holds its parsed share, the rows it sends
and then its shards; besides, O(n) small vectors (the owner of every row, 4 bytes
each; for ``label_skew`` the labels, 8 bytes each).  Rank 0 keeps no rows unless
``run.master_shard`` gives it workers.  The master's :class:`~distnewton.problem.Setup`
(``X``, ``y`` None) carries the problem, the test set (rank 0 reads it), the
label map and the file's sha256.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from .data import cache, map_labels, partition
from .data.libsvm import BLOCK_BYTES, _fast_block, _scan_block, concat_parts, decompress_to
from .data.ranges import byte_range, range_blocks
from .data.registry import file_sha256, resolve_path
from .errors import UserError
from .ingest import read_test, with_intercept
from .problem import Problem, Setup, add_intercept, free_intercept, keep_rows, lambda_value

COMPRESSED = (".bz2", ".gz", ".xz")


def applies(cfg, arrays=None) -> bool:
    """The parallel path reads this run's data: an uncompressed text file, and
    none of the options that need every row on one rank (row weights, class
    weights, one-vs-rest, generated data, pre-split shards)."""
    dc, mc = cfg["data"], cfg["model"]
    if arrays is not None or dc["shards"] or dc["synth"] is not None or dc["weights"]:
        return False
    if mc["class_weight"] is not None or mc["multiclass"] is not None:
        return False
    if os.environ.get("DISTNEWTON_PARALLEL_INGEST", "1") == "0":
        return False
    try:
        path = resolve_path(dc["train"], "data.train")
    except UserError:
        return False                           # the rank-0 path says why, once
    if not os.path.isfile(path):
        return False
    return not str(path).lower().endswith(COMPRESSED) or \
        cache.root_for(dc["cache"], path) is not None


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


def parse_share(path, rank, P, zero_based, n_features, name=None):
    """This rank's lines: (parts, lines read, the first bad line's (local line,
    message) or None).  ``name``: the file named in messages (default ``path``)."""
    name = path if name is None else name
    start, end = byte_range(os.path.getsize(path), rank, P)
    parts, lines = [], 0
    try:
        for block in range_blocks(path, start, end, BLOCK_BYTES):
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


def local_rows(comm, cfg, path):
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
    how, where, extra = agree_bcast(comm, lambda: plan(cfg, path))
    if how == "cache":
        entry = cache.Entry(Path(where), extra)
        n = entry.n
        data, indices, indptr, raw_y = agree(
            comm, lambda: entry.rows(n * rank // P, n * (rank + 1) // P))
        top, sha = entry.n_cols - 1, entry.sha256 if rank == 0 else None
        note = f"read {where}"
    else:
        text = os.path.join(where, "source.txt") if how == "write" and \
            str(path).lower().endswith(COMPRESSED) else path
        parts, lines, bad = parse_share(text, rank, P, zb, nf, name=path)
        line0 = comm.exscan(lines) or 0       # lines before this rank's first
        try:
            agree(comm, lambda: fail_if(bad is not None,
                                        lambda: f"{path}:{line0 + bad[0]}: {bad[1]}"))
        except UserError:
            if rank == 0 and how == "write":
                cache.discard(where)
            raise
        data, indices, indptr, raw_y = concat_parts(parts)
        del parts
        top = comm.allreduce(int(indices.max()) if len(indices) else -1, op=MPI.MAX)
        sha, note = None, ""
    d = nf if nf is not None else top + 1
    X = sp.csr_matrix((data, indices.astype(np.int32 if d < 2**31 - 1 else np.int64,
                                            copy=False), indptr), shape=(len(raw_y), d))
    del data, indices
    if how != "cache":
        X.sort_indices()
        X.eliminate_zeros()
    if how == "write":
        sha, note = write_entry(comm, cfg, path, where, extra, X, raw_y, d)
    return X, raw_y, sha, note


def write_entry(comm, cfg, path, tmp, sig, X, raw_y, d):
    """Every rank writes its piece; rank 0 commits the entry (or drops it when a
    piece failed): ``(the source's sha256, the cache note)`` on rank 0."""
    rank = comm.Get_rank()
    row0 = comm.exscan(len(raw_y)) or 0
    piece = cache.write_piece(tmp, rank, row0, X.data, X.indices, X.indptr, raw_y)
    pieces = comm.gather(piece, root=0)
    if rank != 0:
        return None, ""
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


def global_rows(comm, raw_y, path):
    """(n, the rows before this rank's, every distinct raw label); no rows is an error."""
    n = comm.allreduce(len(raw_y))
    agree(comm, lambda: fail_if(n == 0, lambda: f"{path}: no data rows"))
    return (n, comm.exscan(len(raw_y)) or 0,
            np.unique(np.concatenate(comm.allgather(np.unique(raw_y)))))


def ingest(comm, cfg, K, blocks):
    """Every rank: (the master's Setup on rank 0 else None, the Problem (the same
    on every rank: it is computed from collectives), this rank's [(X, y, None)]
    per hosted worker, bytes exchanged)."""
    rank = comm.Get_rank()
    dc, mc = cfg["data"], cfg["model"]
    path = resolve_path(dc["train"], "data.train")
    X, raw_y, sha, note = local_rows(comm, cfg, path)
    n_r = len(raw_y)
    n, row0, values = global_rows(comm, raw_y, path)
    _, label_map = agree(comm, lambda: map_labels(values, mc["loss"], dc["positive_labels"],
                                                  source=path))
    y, _ = map_labels(raw_y, mc["loss"], reference=label_map, source=path)
    del raw_y
    if mc["fit_intercept"]:
        X = add_intercept(X)
    all_y = y if dc["partition"] != "label_skew" else gather_labels(comm, y, n)
    parts = agree(comm, lambda: split_rows(cfg, n, K, all_y if dc["partition"] == "label_skew"
                                           else None))
    owner = np.full(n, -1, np.int32)
    for k, p in enumerate(parts):
        owner[p] = k
    mine = owner[row0:row0 + n_r]
    pieces, sent = exchange(comm, X, y, mine, owner, blocks)
    problem = shared_problem(comm, cfg, X, mine, parts)
    setup = None
    if rank == 0:
        setup = agree(comm, lambda: master_setup(cfg, path, sha, problem, parts, label_map))
        setup.cache = note
    else:
        agree(comm, lambda: None)
    return setup, problem, pieces, comm.allreduce(sent)


def gather_labels(comm, y, n):
    """Every row's mapped label on every rank (``label_skew`` needs them all)."""
    from mpi4py import MPI
    counts = np.array(comm.allgather(len(y)), np.int64)
    out = np.empty(n)
    comm.Allgatherv(np.ascontiguousarray(y), [out, counts, np.concatenate([[0], np.cumsum(
        counts)[:-1]]), MPI.DOUBLE])
    return out


def split_rows(cfg, n, K, labels):
    """``data.partition`` of n rows over K workers, as :func:`~distnewton.ingest.finish_setup`
    computes it (``labels`` only for label_skew)."""
    dc = cfg["data"]
    y = labels if labels is not None else np.zeros(n)
    parts = partition(y, K, dc["partition"], seed=dc["seed"], alpha=dc["partition_alpha"])
    if dc.get("rows_per_worker"):
        parts = keep_rows(parts, int(dc["rows_per_worker"]), dc["seed"])
    return parts


def exchange(comm, X, y, mine, owner, blocks):
    """Send every row to the rank hosting its worker (``Alltoallv``); this rank's
    [(X, y, None)] for each worker it hosts, and the bytes it sent."""
    from mpi4py import MPI
    P = comm.Get_size()
    rank_of = np.empty(sum(map(len, blocks)), np.int64)     # worker k -> its rank
    for r, ks in enumerate(blocks):
        rank_of[np.asarray(ks, np.int64)] = r
    keep = mine >= 0
    dest = np.where(keep, rank_of[np.maximum(mine, 0)], P)
    order = np.argsort(dest, kind="stable")[:int(keep.sum())]   # by rank, rows in order
    rows = X[order]
    row_counts = np.bincount(dest[order], minlength=P).astype(np.int64)
    nnz_counts = np.bincount(dest[order], weights=np.diff(rows.indptr),
                             minlength=P).astype(np.int64)
    recv_rows, recv_nnz = np.empty(P, np.int64), np.empty(P, np.int64)
    comm.Alltoall(row_counts, recv_rows)
    comm.Alltoall(nnz_counts, recv_nnz)

    def a2a(send, scounts, rcounts, dtype, mpitype):
        out = np.empty(int(rcounts.sum()), dtype)
        comm.Alltoallv([np.ascontiguousarray(send, dtype), scounts, displs(scounts), mpitype],
                       [out, rcounts, displs(rcounts), mpitype])
        return out
    lengths = a2a(np.diff(rows.indptr), row_counts, recv_rows, np.int64, MPI.INT64_T)
    idx = a2a(rows.indices, nnz_counts, recv_nnz, np.int64, MPI.INT64_T)
    val = a2a(rows.data, nnz_counts, recv_nnz, np.float64, MPI.DOUBLE)
    lab = a2a(y[order], row_counts, recv_rows, np.float64, MPI.DOUBLE)
    sent = int(row_counts.sum() * 16 + nnz_counts.sum() * 16 + 16 * P)
    indptr = np.concatenate([[0], np.cumsum(lengths)])
    got = sp.csr_matrix((val, idx.astype(rows.indices.dtype), indptr),
                        shape=(len(lab), X.shape[1]))
    ks = [int(k) for k in blocks[comm.Get_rank()]]
    held = np.flatnonzero(np.isin(owner, ks))            # my workers' rows, global order
    if len(held) != len(lab):
        raise RuntimeError(f"rank {comm.Get_rank()} received {len(lab)} rows, its workers "
                           f"own {len(held)}")
    return [(got[owner[held] == k], lab[owner[held] == k], None) for k in ks], sent


def displs(counts):
    return np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)


def shared_problem(comm, cfg, X, mine, parts):
    """The :class:`~distnewton.problem.Problem`, identical on every rank (the
    shards' non-zero counts from an ``Allreduce``)."""
    from mpi4py import MPI
    K, counts = len(parts), np.diff(X.indptr).astype(np.float64)
    keep = mine >= 0
    nnz = np.bincount(mine[keep], weights=counts[keep], minlength=K)
    sq = np.bincount(mine[keep], weights=counts[keep] ** 2, minlength=K)
    both = np.concatenate([nnz, sq])
    comm.Allreduce(MPI.IN_PLACE, both, op=MPI.SUM)
    n = sum(len(p) for p in parts)
    return Problem(n=n, d=X.shape[1], lam=lambda_value(cfg, n), loss=cfg["model"]["loss"],
                   sizes=tuple(len(p) for p in parts), free_intercept=free_intercept(cfg),
                   weighted=False, nnz=tuple(int(v) for v in both[:K]),
                   row_nnz_sq=tuple(float(v) for v in both[K:]))


def master_setup(cfg, path, sha, problem, parts, label_map):
    """Rank 0's Setup: no rows; the test set, the label map, the file's sha256."""
    d = problem.d - (1 if cfg["model"]["fit_intercept"] else 0)
    test = with_intercept(cfg, read_test(cfg, d, label_map))
    return Setup(None, None, parts, problem, test, path, sha or file_sha256(path), label_map)
