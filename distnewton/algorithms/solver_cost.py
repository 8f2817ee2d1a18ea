"""``solver: auto`` for ``newton``: Cholesky or Newton-CG, whichever costs less time.

Per Newton iteration (the gradient and line-search rounds are common to both):

* **direct** (Cholesky): every worker forms X_k^T D X_k — on a dense shard (the
  shard keeps a dense copy when that is cheaper, :class:`~distnewton.objectives.Shard`)
  a BLAS syrk of n_k d^2 / 2 flops, on a sparse one about
  ``SPARSE_FLOP_COST`` x sum_j nnz(x_j)^2 flop-equivalents (scipy's CSR x CSR
  product) — then the d^2 floats per worker go up in the reduction
  (``REDUCE_FLOAT`` flop-equivalents each) and the master factors H (d^3/3 flops,
  ``CHOL_FLOP`` each);
* **CG**: ``CG_EXPECTED`` = min(d, 10) Hessian-vector products, each one round:
  the round's latency plus 2 passes over the largest shard (``SPARSE_HVP`` per
  non-zero on CSR, ``DENSE_HVP`` per entry on a BLAS shard).

With one dense flop taking ``FLOP_SECONDS`` and a round ``latency`` seconds (the
runtime's estimate of its own wait — larger when ranks outnumber cores — plus
``run.latency_model.per_round`` when a network is modelled), auto takes CG when
its estimate is smaller.  The outer iterations are about as many either way
(measured with the CG path's default cg_rtol 0.1: a9a 7 against 6, w8a 9 / 9,
ijcnn1 6 / 6, phishing 6 / 5), so they cancel.  The constants were measured on
the project's 2-core machine (one BLAS thread; ``benchmarks/vs_liblinear.py``
shows the rows of both solvers next to auto's choice): a9a and w8a (sparse
rows, forming H costs 60 hvp) go to CG, ijcnn1 and phishing (dense shards, d = 22
and 68: H costs a few hvp) stay with Cholesky.  Above ``cg_threshold`` auto is
always CG (no d x d matrix), as before.
"""

from __future__ import annotations

import numpy as np

from ..objectives import DENSE_HESSIAN_BYTES, SPARSE_FLOP_COST

#: seconds per dense BLAS flop, one thread (syrk of ijcnn1's dense shard: 0.19 ns)
FLOP_SECONDS = 0.2e-9
#: Cholesky flop-equivalents per d^3/3 (LAPACK dpotrf at d = 123..300: 0.4-3.5)
CHOL_FLOP = 2.0
#: flop-equivalents per float of the d x d reduction (shared-memory MPI, d = 300)
REDUCE_FLOAT = 20.0
#: flop-equivalents of a Hessian-vector product per non-zero (CSR X v and X^T r:
#: 1.6-2.5 ns per non-zero on a9a and w8a) and per entry of a dense BLAS shard
SPARSE_HVP, DENSE_HVP = 10.0, 1.25
#: CG iterations expected per Newton iteration at cg_rtol 0.1 (measured 5-14)
CG_EXPECTED = 10


def shard_stats(problem):
    """[(n_k, nnz_k, sum_j nnz(x_j)^2)] per shard; without the counts (a Problem made
    by hand) dense rows are assumed."""
    nnz = problem.nnz or tuple(n * problem.d for n in problem.sizes)
    sq = problem.row_nnz_sq or tuple(z * z / max(n, 1) for n, z in zip(problem.sizes, nnz))
    return list(zip(problem.sizes, nnz, sq))


def _dense(n, nnz, d):
    """The shard's own choice (:class:`~distnewton.objectives.Shard`): a dense copy?"""
    r = nnz / max(n, 1)
    return n * d * 8 <= DENSE_HESSIAN_BYTES and d * d / 2 <= SPARSE_FLOP_COST * r * r


def direct_seconds(problem):
    """Estimated seconds of forming, reducing and factoring Hess f per iteration."""
    d = problem.d
    form = max((n * d * d / 2 if _dense(n, z, d) else SPARSE_FLOP_COST * sq)
               for n, z, sq in shard_stats(problem))
    return FLOP_SECONDS * (form + REDUCE_FLOAT * d * d + CHOL_FLOP * d ** 3 / 3)


def cg_seconds(problem, latency):
    """Estimated seconds of the Hessian-vector-product rounds per iteration."""
    d = problem.d
    hvp = max((DENSE_HVP * n * d if _dense(n, z, d) and z >= 0.25 * n * d else SPARSE_HVP * z)
              for n, z, _ in shard_stats(problem))
    return min(d, CG_EXPECTED) * (latency + FLOP_SECONDS * hvp)


def prefer_cg(problem, latency):
    """True when Newton-CG is estimated faster than Cholesky (see the module docstring)."""
    return bool(cg_seconds(problem, latency) < direct_seconds(problem))


def row_nnz_sq(X, parts):
    """sum_j nnz(x_j)^2 and nnz per part (for :class:`~distnewton.problem.Problem`)."""
    counts = np.diff(X.indptr).astype(np.float64)
    return (tuple(float(np.sum(counts[p] ** 2)) for p in parts),
            tuple(int(np.sum(counts[p])) for p in parts))
