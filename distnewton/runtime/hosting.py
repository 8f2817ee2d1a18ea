"""Logical workers: K clients over the P - 1 worker ranks of an MPI job.

``run.workers: K`` under ``mpiexec -n P`` runs K logical workers (the papers'
80 to 142 clients) on P - 1 ranks: rank r hosts a contiguous block of them
(:func:`host_blocks`, ``numpy.array_split`` of 0..K-1), each with its own
shard, RNG stream (``worker_rng(seed, k)``) and state, exactly as worker k of
the sim backend.  A round reaches every rank once; the rank runs its clients'
tasks one after another (increasing k) and replies their sum (a reduction)
or their replies one after another (a gather).  Counting is done by
:class:`~distnewton.runtime.Runtime` over the K logical workers, so rounds and
bytes are those of K workers (the star model's per-client traffic), whatever
P is; only the wall time shows that P - 1 ranks did the work.

With one client per rank (K = P - 1, the default) nothing differs from the
plain MPI backend.  This module also distributes the shards at set-up.

``run.master_shard`` (:func:`master_hosts`): rank 0 hosts the first block
too, so K = P workers run on P ranks (``mpiexec -n 2`` with 2 workers on a
2-core laptop: no rank waits idle on a core a worker needs).  The master
runs its block's tasks between sending a round and receiving it, while the
other ranks compute theirs; the reduction adds its part in place.  Worker k
is the same wherever it is hosted (shard, stream, state), so the iterates
are those of the sim backend (to rounding: the sums' order differs).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def host_blocks(K, ranks):
    """The logical workers of each worker rank: ``ranks`` int arrays over 0..K-1."""
    return [np.asarray(b, dtype=np.int64) for b in np.array_split(np.arange(K), ranks)]


def master_hosts(setting, K, P):
    """``run.master_shard`` resolved for K logical workers on P ranks: ``auto``
    hosts on the master when there are at least as many workers as ranks
    (K >= P), where it would otherwise wait idle while a worker rank runs two
    or more workers one after another."""
    return K >= P if setting == "auto" else bool(setting)


def rank_blocks(K, P, on_master):
    """The logical workers of every rank 0..P-1: ``numpy.array_split`` of
    0..K-1 over the P ranks (``on_master``) or over ranks 1..P-1 (rank 0: none)."""
    if on_master:
        return host_blocks(K, P)
    return [np.zeros(0, dtype=np.int64)] + host_blocks(K, P - 1)


def send_shards(comm, X, y, parts, hosts=None, weights=None):
    """Master: give every rank the rows of its logical workers' parts as CSR buffers
    (and the rows' ``weights`` when given).

    ``parts[k]``: the row indices of logical worker k; ``hosts``: the blocks of
    :func:`host_blocks` (default: one worker per rank).  A rank receives its
    parts' rows one after another and the part sizes.  Returns the bytes sent.
    Only rank 0 ever holds the whole matrix.
    """
    from mpi4py import MPI
    hosts = hosts or [[k] for k in range(len(parts))]
    rows = [np.concatenate([parts[k] for k in ks]) for ks in hosts]
    pieces = [X[idx] for idx in rows]
    meta = np.zeros((comm.Get_size(), 4), dtype=np.int64)
    meta[1:, 0] = [p.shape[0] for p in pieces]
    meta[1:, 1] = [p.nnz for p in pieces]
    meta[1:, 2] = X.shape[1]
    meta[1:, 3] = [len(ks) for ks in hosts]
    comm.Scatter(meta, np.empty(4, np.int64), root=0)
    sent = meta.nbytes

    def scatterv(arrays, dtype, mpitype):
        nonlocal sent
        counts = np.array([0] + [a.size for a in arrays], dtype=np.int64)
        displs = np.concatenate([[0], np.cumsum(counts)[:-1]])
        buf = np.concatenate([np.asarray(a, dtype=dtype) for a in arrays])
        comm.Scatterv([buf, counts, displs, mpitype], np.empty(0, dtype), root=0)
        sent += buf.nbytes

    scatterv([np.array([len(parts[k]) for k in ks]) for ks in hosts], np.int64, MPI.INT64_T)
    scatterv([p.indptr for p in pieces], np.int64, MPI.INT64_T)
    scatterv([p.indices for p in pieces], np.int64, MPI.INT64_T)
    scatterv([p.data for p in pieces], np.float64, MPI.DOUBLE)
    scatterv([y[idx] for idx in rows], np.float64, MPI.DOUBLE)
    if weights is not None:
        scatterv([weights[idx] for idx in rows], np.float64, MPI.DOUBLE)
    return sent


def receive_shards(comm, weighted=False):
    """Worker rank: its logical workers' (X, y, weights or None), one per worker,
    from :func:`send_shards`."""
    meta = np.empty(4, np.int64)
    comm.Scatter(None, meta, root=0)
    n, nnz, d, m = (int(v) for v in meta)
    sizes = np.empty(m, np.int64)
    indptr, indices = np.empty(n + 1, np.int64), np.empty(nnz, np.int64)
    data, y = np.empty(nnz), np.empty(n)
    s = np.empty(n) if weighted else None
    for buf in (sizes, indptr, indices, data, y) + ((s,) if weighted else ()):
        comm.Scatterv(None, buf, root=0)
    X = sp.csr_matrix((data, indices, indptr), shape=(n, d))
    cuts = np.concatenate([[0], np.cumsum(sizes)])
    return [(X[a:b], y[a:b], None if s is None else s[a:b])
            for a, b in zip(cuts[:-1], cuts[1:])]


def receive_shard(comm, weighted=False):
    """Worker rank with one logical worker: its (X, y, weights or None)."""
    (X, y, s), = receive_shards(comm, weighted)
    return X, y, s
