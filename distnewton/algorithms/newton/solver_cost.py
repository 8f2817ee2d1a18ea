"""``solver: auto`` for ``newton``: Cholesky or Hessian-vector rounds, whichever
costs less time.  The Hessian-free side is TRON (:mod:`.tron`; the line-search
Newton-CG with ``cg_precondition: jacobi``), which needs fewer Hessian-vector
rounds where auto goes there (``benchmarks/results/vs_liblinear.md``); the cost
model below is the same for both.

Per Newton iteration (the gradient and line-search rounds are common to both):

* **direct** (Cholesky): every worker forms X_k^T D X_k — on a dense shard (the
  shard keeps a dense copy when that is cheaper, :class:`~distnewton.objectives.Shard`)
  a BLAS syrk of n_k d^2 / 2 flops, on a sparse one ``PAIR_FORM`` per pair of
  non-zeros in a row (the pair map, :mod:`distnewton.pairs`, its build included),
  or where that map is too big ``SPARSE_FORM`` x sum_j nnz(x_j)^2 (scipy's CSR x
  CSR product) — then the d^2 floats per worker go up in the reduction
  (``REDUCE_FLOAT`` flop-equivalents each) and the master factors H (d^3/3 flops,
  ``CHOL_FLOP`` each);
* **CG**: ``CG_EXPECTED`` = min(d, 10) Hessian-vector products, each one round:
  the round's latency plus 2 passes over the largest shard (``SPARSE_HVP`` per
  non-zero on CSR, ``DENSE_HVP`` per entry on a BLAS shard).

With one dense flop taking ``FLOP_SECONDS`` and a round ``latency`` seconds (the
shared-memory MPI round, 0.5 ms, :attr:`~distnewton.runtime.Runtime.round_latency`:
one value for every backend and machine, so that sim and mpi pick the same solver
and give the same iterates; plus ``run.latency_model.per_round`` when a network is
modelled), auto starts with CG when its estimate is smaller.  The CG count is
the one thing the model cannot know in advance (at cg_rtol 0.1 it grows as the
iterates near the optimum: a9a 2, 4, 6, 8, 19, 27, ..., w8a 2, 2, 3, 7, ..., 16),
so auto also watches it: once one CG solve needs more Hessian-vector rounds than
the first direct iteration would cost, its pair maps' build included
(:func:`break_even_hvps`), the run goes to Cholesky for the rest (kept in the
checkpoint).  Auto therefore never pays much more than twice that for an
iteration.  The choice depends only on the data, K, d and the config: the same on
every backend and machine.  Above ``cg_threshold`` auto is always Hessian-free (no
d x d matrix).

The constants are per-operation costs calibrated with one BLAS thread;
``benchmarks/vs_liblinear.py`` shows both solvers' rows next to auto's choice
(there w8a goes Hessian-free; a9a, ijcnn1 and phishing stay with Cholesky).
"""

from __future__ import annotations

import numpy as np

from ...objectives import DENSE_HESSIAN_BYTES, SPARSE_FLOP_COST
from ...pairs import PAIR_BYTES, PAIRS_MAX_BYTES

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
#: flop-equivalents per multiply-add of the sparse X^T (D X) (scipy CSR x CSR, then
#: to dense: 2.1-5 ns per sum_j nnz(x_j)^2 on a9a's and w8a's shards), used where
#: a shard's pair map would be too big
SPARSE_FORM = 10.5
#: flop-equivalents per entry of the pair map (:mod:`distnewton.pairs`): the
#: product P^T D, 1.4-2 ns per pair, plus its one-time build, 18-36 ns per pair,
#: spread over about 8 iterations (a9a, w8a): 18-32; 20 keeps a9a with one worker
#: on Cholesky (22 sent it to CG, then by the break-even rule to Cholesky)
PAIR_FORM = 20.0
#: flop-equivalents per pair of building the map once (:func:`~distnewton.pairs.row_pairs`
#: in chunks: 8-12 ns per pair on a9a and w8a, the first touch of its pages
#: included), charged in full by :func:`break_even_hvps`
PAIR_BUILD = 50.0


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


def _map_pairs(nnz, sq):
    """The pairs of a sparse shard's pair map ((sq + nnz) / 2), or 0 when the map
    would exceed ``PAIRS_MAX_BYTES`` (scipy's CSR product forms H instead)."""
    pairs = (sq + nnz) / 2
    return pairs if PAIR_BYTES * pairs <= PAIRS_MAX_BYTES else 0.0


def _sparse_form(nnz, sq):
    """Flop-equivalents of X_k^T D X_k on a sparse shard: over the pair map
    when it fits (:mod:`distnewton.pairs`), else scipy's CSR product."""
    pairs = _map_pairs(nnz, sq)
    return PAIR_FORM * pairs if pairs else SPARSE_FORM * sq


def direct_seconds(problem):
    """Estimated seconds of forming, reducing and factoring Hess f per iteration."""
    d = problem.d
    form = max((n * d * d / 2 if _dense(n, z, d) else _sparse_form(z, sq))
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


def map_build_seconds(problem):
    """Estimated seconds of building the largest sparse shard's pair map (0 when no
    shard uses one: dense shards, maps over ``PAIRS_MAX_BYTES``)."""
    d = problem.d
    return FLOP_SECONDS * PAIR_BUILD * max(
        (0.0 if _dense(n, z, d) else _map_pairs(z, sq) for n, z, sq in shard_stats(problem)),
        default=0.0)


def break_even_hvps(problem, latency):
    """Hessian-vector rounds that cost as much as the direct iteration that would
    replace them, the first one, which also builds the pair maps (a run on the
    Hessian-free path has none): a CG solve that needed more sends ``auto`` to
    Cholesky for the rest of the run."""
    return ((direct_seconds(problem) + map_build_seconds(problem))
            / (cg_seconds(problem, latency) / CG_EXPECTED))


def row_nnz_sq(X, parts):
    """sum_j nnz(x_j)^2 and nnz per part (for :class:`~distnewton.problem.Problem`)."""
    counts = np.diff(X.indptr).astype(np.float64)
    return (tuple(float(np.sum(counts[p] ** 2)) for p in parts),
            tuple(int(np.sum(counts[p])) for p in parts))
