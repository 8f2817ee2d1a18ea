"""Moving rows to the ranks that host their workers, a block at a time.

Every rank holds its share of the rows as blocks of consecutive rows (as parsed,
or as read from the cache).  :func:`exchange` sends each row to the rank hosting
its worker in rounds, one block per rank per round (``Alltoallv`` of the rows'
lengths, column indices, values, labels and weights), and writes what it
receives straight into its workers' shards, preallocated from the counts that
the ranks swap first (one ``Alltoall``): a rank holds its shards, what is left
of its share and one block in flight, never a second copy of either.

Each shard's rows are in increasing global order (rank r's rows come before rank
r + 1's, and a rank's blocks are in file order), so a shard is ``X[parts[k]]``
of the whole matrix, exactly as the rank-0 path builds it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import scipy.sparse as sp


@dataclass
class Rows:
    """A block of consecutive rows for :func:`exchange`: its ``n`` rows' non-zero
    counts, labels and weights, and the matrix, held (``X``) or read when the
    block's round comes (``load()``, e.g. from the binary cache)."""

    row_nnz: np.ndarray
    y: np.ndarray
    s: np.ndarray | None = None
    X: object = None
    load: Callable | None = None

    @property
    def n(self) -> int:
        return len(self.y)

    def take(self):
        """The matrix, once: the block lets go of it."""
        X, self.X = (self.X if self.X is not None else self.load()), None
        return X


def held(X, y, s=None) -> Rows:
    return Rows(np.diff(X.indptr), y, s, X=X)


def displs(counts):
    return np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)


def _mpi_type(dtype):
    from mpi4py import MPI
    return {np.dtype(np.int32): MPI.INT32_T, np.dtype(np.int64): MPI.INT64_T,
            np.dtype(np.float64): MPI.DOUBLE}[np.dtype(dtype)]


class _Layout:
    """Who sends what in which round: ``meta[r, b, j] = (rows, nnz)`` that rank r
    sends in round b to this rank's j-th worker; and where each lands."""

    def __init__(self, recv_meta):
        self.meta = recv_meta                          # (P, B, kmax, 2)
        P, B, kmax, _ = recv_meta.shape
        flat = recv_meta.transpose(2, 0, 1, 3).reshape(kmax, P * B, 2)
        self.rows = flat[:, :, 0].sum(axis=1)          # per worker slot
        self.nnz = flat[:, :, 1].sum(axis=1)
        # offsets of segment (r, b) of slot j, segments in (r, b) order
        self.row_at = np.concatenate([np.zeros((kmax, 1), np.int64),
                                      np.cumsum(flat[:, :, 0], axis=1)], axis=1)
        self.nnz_at = np.concatenate([np.zeros((kmax, 1), np.int64),
                                      np.cumsum(flat[:, :, 1], axis=1)], axis=1)
        self.B = B


def exchange(comm, share, row0, owner, blocks, d, index_dtype):
    """Send every row of ``share`` to the rank hosting its worker.

    ``share``: this rank's blocks of consecutive rows from global row ``row0``
    (:class:`Rows`; each block's matrix is dropped once sent, and a block that
    is not held is read only in its round);
    ``owner[i]``: the worker of global row i (-1: left out); ``blocks[r]``: the
    workers of rank r; ``d`` columns.  Returns this rank's ``[(X_k, y_k, s_k)]``
    for its workers in ``blocks[rank]`` order, and the bytes it sent.
    """
    from mpi4py import MPI
    P, me = comm.Get_size(), comm.Get_rank()
    K = sum(map(len, blocks))
    rank_of, slot = np.empty(K, np.int64), np.empty(K, np.int64)
    for r, ks in enumerate(blocks):
        rank_of[np.asarray(ks, np.int64)] = r
        slot[np.asarray(ks, np.int64)] = np.arange(len(ks))
    kmax = max(1, max(map(len, blocks)))
    weighted = bool(comm.allreduce(any(r.s is not None for r in share), op=MPI.LOR))
    B = comm.allreduce(len(share), op=MPI.MAX)

    keys, send_meta, start = [], np.zeros((P, B, kmax, 2), np.int64), row0
    for b, rows in enumerate(share):
        w = owner[start:start + rows.n]
        start += rows.n
        key = np.where(w >= 0, rank_of[np.maximum(w, 0)] * kmax + slot[np.maximum(w, 0)], -1)
        keys.append(key)
        keep = key >= 0
        send_meta[:, b, :, 0] = np.bincount(key[keep], minlength=P * kmax).reshape(P, kmax)
        send_meta[:, b, :, 1] = np.bincount(key[keep], weights=rows.row_nnz[keep],
                                            minlength=P * kmax).reshape(P, kmax)
    recv_meta = np.empty_like(send_meta)
    comm.Alltoall(send_meta, recv_meta)
    lay = _Layout(recv_meta)
    ks = blocks[me]
    out = [_Shard(lay.rows[j], lay.nnz[j], d, index_dtype, weighted) for j in range(len(ks))]
    sent = int(send_meta.size * 8)
    for b in range(B):
        if b < len(share):
            X, y, s = share[b].take(), share[b].y, share[b].s
            if X.shape[0] != len(y) or X.nnz != int(share[b].row_nnz.sum()):
                raise RuntimeError(f"rank {me}: block {b} read back as {X.shape[0]} rows, "
                                   f"{X.nnz} non-zeros; {len(y)} rows, "
                                   f"{int(share[b].row_nnz.sum())} announced")
            share[b] = None                             # this block leaves the share
            key = keys[b]
            order = np.argsort(key, kind="stable")[int((key < 0).sum()):]
            X, y = X[order], y[order]
            s = None if s is None else s[order]
        else:
            X = sp.csr_matrix((0, d), dtype=np.float64)
            X.indices = X.indices.astype(index_dtype)
            y = np.zeros(0)
            s = None
        if weighted and s is None:
            s = np.ones(len(y))
        send_rows = send_meta[:, b, :, 0].sum(axis=1)
        send_nnz = send_meta[:, b, :, 1].sum(axis=1)
        recv_rows = recv_meta[:, b, :, 0].sum(axis=1)
        recv_nnz = recv_meta[:, b, :, 1].sum(axis=1)

        def a2a(buf, sc, rc, dtype):
            got = np.empty(int(rc.sum()), dtype)
            t = _mpi_type(dtype)
            comm.Alltoallv([np.ascontiguousarray(buf, dtype), sc, displs(sc), t],
                           [got, rc, displs(rc), t])
            return got
        lengths = a2a(np.diff(X.indptr), send_rows, recv_rows, np.int64)
        idx = a2a(X.indices, send_nnz, recv_nnz, index_dtype)
        val = a2a(X.data, send_nnz, recv_nnz, np.float64)
        lab = a2a(y, send_rows, recv_rows, np.float64)
        wts = a2a(s, send_rows, recv_rows, np.float64) if weighted else None
        sent += int(send_rows.sum() * (24 if weighted else 16)
                    + send_nnz.sum() * (8 + np.dtype(index_dtype).itemsize))
        del X, y, s
        r_at, z_at = 0, 0                               # through the received buffers
        for r in range(P):
            for j in range(len(ks)):
                nr, nz = (int(v) for v in recv_meta[r, b, j])
                if nr:
                    seg = r * lay.B + b
                    out[j].put(lay.row_at[j, seg], lay.nnz_at[j, seg],
                               lengths[r_at:r_at + nr], idx[z_at:z_at + nz],
                               val[z_at:z_at + nz], lab[r_at:r_at + nr],
                               None if wts is None else wts[r_at:r_at + nr])
                r_at, z_at = r_at + nr, z_at + nz
    return [o.done() for o in out], sent


class _Shard:
    """One worker's shard, preallocated and filled segment by segment."""

    def __init__(self, rows, nnz, d, index_dtype, weighted):
        rows, nnz = int(rows), int(nnz)
        itype = index_dtype if max(nnz, rows) < 2**31 - 1 else np.int64
        self.d = d
        self.data = np.empty(nnz, np.float64)
        self.indices = np.empty(nnz, itype)
        self.indptr = np.zeros(rows + 1, itype)
        self.y = np.empty(rows, np.float64)
        self.s = np.empty(rows, np.float64) if weighted else None

    def put(self, row_at, nnz_at, lengths, idx, val, y, s):
        n = len(lengths)
        self.data[nnz_at:nnz_at + len(val)] = val
        self.indices[nnz_at:nnz_at + len(idx)] = idx
        self.indptr[row_at + 1:row_at + 1 + n] = nnz_at + np.cumsum(lengths)
        self.y[row_at:row_at + n] = y
        if self.s is not None:
            self.s[row_at:row_at + n] = s

    def done(self):
        X = sp.csr_matrix((self.data, self.indices, self.indptr),
                          shape=(len(self.y), self.d), copy=False)
        X.has_sorted_indices = True                     # the rows arrive canonical
        return X, self.y, self.s
