"""Parallel ingestion under MPI: every rank parses its own part of the text file.

Used by :class:`~distnewton.session.Session` when ``data.train`` is a LIBSVM
file or an uncompressed CSV/TSV file (its byte ranges), either compressed and
cached, a NumPy ``.npy``, Parquet or HDF5 CSR file, or an ``.npz`` file with a
cache (:func:`applies`); otherwise rank 0 reads the
file and scatters the shards (:mod:`distnewton.ingest`).  Every rank of the job:

1. reads its share of the rows (:mod:`distnewton.shares`): the lines that start
   in its byte range (:mod:`distnewton.data.ranges`, the block parsers of
   :mod:`distnewton.data.libsvm`), its rows or row groups of a file read by range
   (:mod:`distnewton.data.sources`), or rows ``[n i / R, n (i+1) / R)`` of the
   binary cache (:mod:`distnewton.data.cache`), i of the R ranks that host workers;
2. agrees with the others on the first bad line (``FILE:LINE`` with the global
   line number, from an ``Exscan`` of the ranks' line counts), on d
   (``Allreduce`` max of the indices), n and the rows before it (``Exscan``),
   the label set (``allgather`` of each rank's distinct labels) and so the label
   mapping, all as rank 0 alone would have found them;
3. computes the partition (``data.partition``, ``data.seed``) from n (and, for
   ``label_skew``, the labels, ``Allgatherv``) exactly as rank 0 would (a held-out
   ``data.validation`` fraction is drawn from the global row ids first, the same
   draw on every rank, and its rows go to rank 0: the validation set);
4. sends each of its rows to the rank hosting the row's worker (``Alltoallv``
   of the CSR row lengths, indices, values and labels) and builds its workers'
   shards from what it receives, rows in increasing global order as in
   ``X[parts[k]]``: the same shards, so the same iterates, as the rank-0 path
   (with ``model.class_weight: balanced`` and fractional ``data.weights`` the class
   masses are summed per rank, so the weights may differ in the last bit);
5. agrees on the largest |x_ij| (and ridge |y_i|) of the received rows
   (``Allreduce`` max of two floats): values whose squares overflow float64 are
   refused naming the file, as on the rank-0 path (:func:`distnewton.checks.magnitude`).

No rank holds the whole matrix: a rank holds its parsed share, the rows it sends
and then its shards; besides, O(n) small vectors (the owner of every row, 4 bytes
each; for ``label_skew`` the labels, 8 bytes each).  Rank 0 keeps no rows unless
``run.master_shard`` gives it workers.  The master's :class:`~distnewton.problem.Setup`
(``X``, ``y`` None) carries the problem, the test set (rank 0 reads it), the
label map and the file's sha256.
"""

from __future__ import annotations

import functools
import os

import numpy as np

from . import checks
from .data import cache, formats, map_labels, partition, runsets
from .data.libsvm import check_counts
from .data.registry import file_sha256, resolve_path
from .data.sources import RANGED, ranged_text
from .errors import UserError
from .data.libsvm_arrow import parsing_memory
from .exchange import Rows, displs, exchange
from .ingest import read_test, read_validation, with_intercept
from .problem import (
    Problem,
    Setup,
    add_intercept,
    free_intercept,
    keep_rows,
    l1_value,
    lambda_value,
)
from .shares import COMPRESSED, Phases, agree, fail_if, index_dtype, local_rows
from .validation import hold_out, is_fraction
from .weights import read_weights, row_weights


def applies(cfg, arrays=None) -> bool:
    """The parallel path reads this run's data: a text file (uncompressed, or
    compressed with a cache to decompress it into), and none of the options that
    need every row on one rank (one-vs-rest, generated data, pre-split shards),
    nor a registered set still to fetch (rank 0 alone fetches, on the other path)."""
    dc, mc = cfg["data"], cfg["model"]
    if arrays is not None or dc["shards"] or dc["synth"] is not None:
        return False
    if mc["multiclass"] is not None:
        return False
    if os.environ.get("DISTNEWTON_PARALLEL_INGEST", "1") == "0":
        return False
    if runsets.missing_sets(cfg):
        return False                           # rank 0 fetches them first (data.fetch: auto)
    try:
        path = resolve_path(dc["train"], "data.train")
    except UserError:
        return False                           # the rank-0 path says why, once
    if not os.path.isfile(path):
        return False
    try:
        fmt = formats.detect(path, dc["format"])
    except UserError:
        return False                           # the rank-0 path says why, once
    if fmt in RANGED:                          # every rank reads its own rows
        return True
    if ranged_text(path, fmt):                 # CSV/TSV: by byte ranges, as LIBSVM text
        return True
    if fmt != "libsvm":                        # read once into the cache, then by ranges
        return cache.root_for(dc["cache"], path) is not None
    return not str(path).lower().endswith(COMPRESSED) or \
        cache.root_for(dc["cache"], path) is not None


def global_rows(comm, raw_y, path):
    """(n, the rows before this rank's, every distinct raw label); no rows is an error."""
    n = comm.allreduce(len(raw_y))
    agree(comm, lambda: fail_if(n == 0, lambda: f"{path}: no data rows"))
    return (n, comm.exscan(len(raw_y)) or 0,
            np.unique(np.concatenate(comm.allgather(np.unique(raw_y)))))


def ingest(comm, cfg, K, blocks):
    """Every rank: (the master's Setup on rank 0 else None, the Problem (the same
    on every rank: it is computed from collectives), this rank's [(X, y, s)]
    per hosted worker, bytes exchanged)."""
    with parsing_memory():                    # and the freed share handed back at the end
        return _ingest(comm, cfg, K, blocks)


def _ingest(comm, cfg, K, blocks):
    rank = comm.Get_rank()
    dc, mc = cfg["data"], cfg["model"]
    path = resolve_path(dc["train"], "data.train")
    ph = Phases()
    share = local_rows(comm, cfg, path, ph, readers=[r for r, ks in enumerate(blocks) if len(ks)])
    raw_y = share.raw_y()
    n_r = len(raw_y)
    with ph("labels_partition"):
        n, row0, values = global_rows(comm, raw_y, path)
        if mc["loss"] == "poisson":             # the file's first negative row, not a value's
            agree(comm, lambda y=raw_y: check_counts(y, path, row0))
        _, label_map = agree(comm, lambda: map_labels(values, mc["loss"],
                                                      dc["positive_labels"], source=path))
        y, _ = map_labels(raw_y, mc["loss"], reference=label_map, source=path)
        s = share_weights(comm, cfg, raw_y, y, label_map, n)
        del raw_y
        all_y = y if dc["partition"] != "label_skew" else gather_labels(comm, y, n)
        parts, global_parts, held = agree(comm, lambda: held_out_split(
            cfg, n, K, all_y if dc["partition"] == "label_skew" else None))
        owner = np.full(n, -1, np.int32)
        for k, p in enumerate(global_parts):
            owner[p] = k
        if held is not None:                  # data.validation's rows: to rank 0
            owner[held] = K
        del global_parts
        all_y = None
        sizes = [len(p) for p in parts]
        if rank != 0:                         # only the master's Setup keeps them
            parts = None
    rows = blockwise(share, y, s, intercept=mc["fit_intercept"])
    d = share.d + (1 if mc["fit_intercept"] else 0)
    row_nnz = np.concatenate([r.row_nnz for r in rows] or [np.zeros(0)])
    problem = shared_problem(comm, cfg, d, row_nnz, owner[row0:row0 + n_r], sizes,
                             weighted=s is not None)
    del row_nnz, y, s
    with ph("exchange"):
        pieces, sent = exchange(comm, rows, row0, owner, with_validation(blocks, held),
                                d, index_dtype(d))
    largest(comm, pieces, n, mc["loss"], path)
    validation = pieces.pop()[:2] if held is not None and rank == 0 else None
    setup = None
    with ph("test_set"):
        if rank == 0:
            setup = agree(comm, lambda: master_setup(cfg, path, share.sha, problem, parts,
                                                     label_map, validation))
        else:
            agree(comm, lambda: None)
    times = ph.slowest(comm)
    if rank == 0:
        setup.cache, setup.timings = share.note, times
    return setup, problem, pieces, comm.allreduce(sent)


def largest(comm, pieces, n, loss, path):
    """Values too large for float64 (:func:`distnewton.checks.magnitude`), over
    every rank's received rows: one Allreduce (MAX) of two floats."""
    from mpi4py import MPI
    big = np.array([checks.largest(X, y) for X, y, _ in pieces] or [(0.0, 0.0)]).max(axis=0)
    comm.Allreduce(MPI.IN_PLACE, big, op=MPI.MAX)
    agree(comm, lambda: checks.magnitude(tuple(big), n, loss, path))


def blockwise(share, y, s, intercept=False):
    """The share's blocks (:class:`~distnewton.exchange.Rows`) with their mapped
    labels ``y`` and weights ``s`` (the intercept column appended block by block,
    when the block is sent); the share gives its blocks up."""
    out, at = [], 0
    while share.blocks:
        r = share.blocks.pop(0)
        n = r.n
        load = r.take if not intercept else functools.partial(with_column, r.take)
        out.append(Rows(r.row_nnz + (1 if intercept else 0), y[at:at + n],
                        None if s is None else s[at:at + n], load=load))
        at += n
    return out


def with_column(take):
    return add_intercept(take())


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


def held_out_split(cfg, n, K, labels):
    """(parts numbered over the rows trained on, as the rank-0 path numbers them;
    the same parts in global row ids; the held-out global rows or None):
    ``data.validation``'s fraction is drawn from the n rows first
    (:func:`~distnewton.validation.hold_out`), then the rest are partitioned."""
    value = cfg["data"].get("validation")
    if not is_fraction(value):
        parts = split_rows(cfg, n, K, labels)
        return parts, parts, None
    keep, held = hold_out(n, value, cfg["data"]["seed"])
    parts = split_rows(cfg, len(keep), K, None if labels is None else labels[keep])
    return parts, [keep[p] for p in parts], held


def with_validation(blocks, held):
    """The exchange's hosting: ``blocks``, and with held-out rows a worker K more
    on rank 0 whose shard is the validation set (it never serves a round)."""
    if held is None:
        return blocks
    return [list(blocks[0]) + [sum(map(len, blocks))], *blocks[1:]]


def share_weights(comm, cfg, raw_y, y, label_map, n):
    """This rank's rows' weights s_j (:func:`~distnewton.weights.row_weights`):
    ``data.weights`` read by rank 0 and scattered (``Scatterv``), times
    ``model.class_weight`` (``balanced`` from global class masses, ``Allreduce``);
    None when neither is set."""
    from mpi4py import MPI
    dc = cfg["data"]
    if dc["weights"] is None and cfg["model"]["class_weight"] is None:
        return None
    sample = np.ones(len(y))
    if dc["weights"] is not None:
        rank = comm.Get_rank()
        whole = agree(comm, lambda: read_weights(dc["weights"], n) if rank == 0 else None)
        counts = np.array(comm.allgather(len(y)), np.int64)
        comm.Scatterv([whole, counts, displs(counts), MPI.DOUBLE] if rank == 0 else None,
                      sample, root=0)

    def total(v):
        out = np.array(v, np.float64)
        comm.Allreduce(MPI.IN_PLACE, out, op=MPI.SUM)
        return out
    return row_weights(cfg, raw_y, y, label_map, sample=sample, total=total)


def shared_problem(comm, cfg, d, row_nnz, mine, sizes, weighted=False):
    """The :class:`~distnewton.problem.Problem`, identical on every rank (the
    shards' non-zero counts from an ``Allreduce``); ``sizes``: the shards' rows."""
    from mpi4py import MPI
    K, counts = len(sizes), np.asarray(row_nnz, np.float64)
    keep = (mine >= 0) & (mine < K)           # not the left-out nor the held-out rows
    nnz = np.bincount(mine[keep], weights=counts[keep], minlength=K)
    sq = np.bincount(mine[keep], weights=counts[keep] ** 2, minlength=K)
    both = np.concatenate([nnz, sq]).astype(np.float64)   # bincount of nothing is int64
    comm.Allreduce(MPI.IN_PLACE, both, op=MPI.SUM)
    n = sum(sizes)
    return Problem(n=n, d=d, lam=lambda_value(cfg, n), l1=l1_value(cfg, n), loss=cfg["model"]["loss"],
                   sizes=tuple(int(v) for v in sizes), free_intercept=free_intercept(cfg),
                   weighted=weighted, nnz=tuple(int(v) for v in both[:K]),
                   row_nnz_sq=tuple(float(v) for v in both[K:]))


def master_setup(cfg, path, sha, problem, parts, label_map, validation=None):
    """Rank 0's Setup: no rows; the test set, the validation set (``validation``:
    the held-out rows it received; else read from data.validation's file), the
    label map, the file's sha256."""
    d = problem.d - (1 if cfg["model"]["fit_intercept"] else 0)
    test = with_intercept(cfg, read_test(cfg, d, label_map))
    if validation is None:
        validation = with_intercept(cfg, read_validation(cfg, d, label_map))
    return Setup(None, None, parts, problem, test, path, sha or file_sha256(path), label_map,
                 validation=validation)
