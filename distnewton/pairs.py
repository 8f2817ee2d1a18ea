"""The pair map of a sparse shard: X^T D X as one sparse matrix-vector product.

For a row x_j with non-zeros at columns c_1 < ... < c_k, the Hessian sum
sum_j D_j x_j x_j^T touches only the k(k+1)/2 entries (c_a, c_b), a <= b, of the
upper triangle.  The pair map P (n x d(d+1)/2, CSR) holds, in row j, the
products x_{j c_a} x_{j c_b} at the packed index of (c_a, c_b) in
``numpy.triu_indices(d)`` order, so that

    upper triangle of X^T diag(D) X  =  P^T D        (one pass over the pairs).

(P's rows are X's in the order of :func:`row_pairs`.)  Built once per shard,
at its first Hessian (vectorised per group of rows with the same number of
non-zeros, in chunks of ``BUILD_CHUNK`` pairs; about 5-15 products' worth) and
kept: 12 bytes per pair (``PAIR_BYTES``).  One product P^T D costs
sum_j k_j (k_j + 1)/2 multiply-adds against scipy's CSR product X^T (D X);
the measured speed-up is in ``benchmarks/results/`` (``vs_liblinear``).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

#: bytes a pair takes in the map (float64 value, int32 index)
PAIR_BYTES = 12
#: above this size of map a shard forms X^T D X with scipy's CSR product instead
PAIRS_MAX_BYTES = 128 * 2**20
#: pairs per temporary array of the build: small temporaries are reused from the
#: heap instead of fresh pages from the OS (about 2-5x faster than one
#: temporary per row group)
BUILD_CHUNK = 1 << 16


def pair_count(X):
    """sum_j k_j (k_j + 1) / 2: the map's entries (k_j: non-zeros of row j)."""
    nnz = np.diff(X.indptr).astype(np.int64)
    return int(np.sum(nnz * (nnz + 1) // 2))


def row_pairs(X):
    """The pair map of CSR ``X``: (P, order), P's row i holding the pairs of X's
    row ``order[i]`` (rows sorted by their number of non-zeros, so that each
    group of equal counts fills one contiguous block of P), hence
    upper triangle of X^T diag(D) X = P^T D[order]."""
    X = X.copy()
    X.sort_indices()
    n, d = X.shape
    k_row = np.diff(X.indptr)
    order = np.argsort(k_row, kind="stable")
    ks = k_row[order].astype(np.int64)
    indptr = np.zeros(n + 1, np.int64)
    np.cumsum(ks * (ks + 1) // 2, out=indptr[1:])
    packed = d * (d + 1) // 2
    itype = np.int32 if max(packed, int(indptr[-1])) < 2**31 else np.int64
    ctype = np.int32 if 2 * d * d < 2**31 else np.int64      # (c, 0)'s index in range
    indices, data = np.empty(indptr[-1], itype), np.empty(indptr[-1])
    edges = np.flatnonzero(np.diff(ks)) + 1
    for lo, hi in zip(np.r_[0, edges], np.r_[edges, n]):
        k = int(ks[lo])
        if k == 0:
            continue
        a, b = np.triu_indices(k)                                 # a <= b, row-major
        step = max(1, BUILD_CHUNK // a.size)
        for s in range(lo, hi, step):                             # rows s..e-1 of the group
            e = min(hi, s + step)
            take = X.indptr[order[s:e]][:, None] + np.arange(k)   # rows x k positions
            cols, vals = X.indices[take].astype(ctype), X.data[take]
            start = cols * (2 * d - cols + 1) // 2 - cols         # packed index of (c, 0)
            block = slice(indptr[s], indptr[e])
            np.add(start[:, a], cols[:, b], out=indices[block].reshape(e - s, a.size),
                   casting="unsafe")
            np.multiply(vals[:, a], vals[:, b], out=data[block].reshape(e - s, a.size))
    P = sp.csr_matrix((data, indices, indptr.astype(itype)), shape=(n, packed))
    P.has_sorted_indices = True            # packed indices grow with (c_a, c_b)
    return P, order


def unpack(upper, d, triu=None):
    """The symmetric d x d array of a packed upper triangle."""
    triu = np.triu_indices(d) if triu is None else triu
    H = np.empty((d, d))
    H[triu] = upper
    H.T[triu] = upper
    return H
