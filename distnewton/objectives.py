"""Objectives on CSR shards: L2-regularised logistic regression, ridge, the L2-loss SVM
and Poisson regression (the loss classes: :mod:`distnewton.losses`).

Notation (used throughout the package): the training set has ``n`` rows
``x_j`` with labels ``y_j``, split over ``K`` workers; worker ``k`` holds
``n_k`` rows.  With a per-sample loss ``l(z, y)`` of the margin ``z = x_j.w``,

    global objective   f(w)   = (1/n)   sum_j        l(x_j.w, y_j) + (lambda/2) ||w||^2
    local objective    f_k(w) = (1/n_k) sum_{j in k} l(x_j.w, y_j) + (lambda/2) ||w||^2

so ``f = sum_k (n_k/n) f_k``.  ``logistic``: l(z, y) = log(1 + exp(-y z)) with
y in {-1, +1}; ``ridge``: l(z, y) = (z - y)^2 / 2, i.e. f(w) = ||Xw - y||^2/(2n)
+ (lambda/2)||w||^2; ``squared_hinge`` (the L2-loss SVM, LIBLINEAR ``-s 2``):
l(z, y) = max(0, 1 - y z)^2 with y in {-1, +1}, whose Hessian is the generalised
one (2/n) X_A^T X_A + lambda I over the active rows A = {j: y_j x_j.w < 1};
``poisson`` (log link): l(z, y) = exp(z) - y z with y >= 0 (the negative
log-likelihood without its constant log(y!)), l'' = exp(z) unbounded.

A :class:`Shard` returns *sums* over its rows (``loss_sum``, ``grad_sum``,
``hess_sum``) so that the master can form exact global quantities by one
reduction and a division by ``n``; the ``local_*`` methods give f_k and its
derivatives for algorithms that work on the local problem (GIANT,
LocalNewton).  Everything is vectorised over rows (sparse BLAS), no Python loop
over samples.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .losses import (  # noqa: F401 (re-exported: they lived here)
    CLASSIFICATION_LOSSES, LOSSES, REGRESSION_LOSSES, Logistic, Poisson, Ridge, SquaredHinge,
    is_classification)
from .pairs import PAIR_BYTES, PAIRS_MAX_BYTES, pair_count, row_pairs, unpack

#: Shards whose dense copy fits in this many bytes may keep one for BLAS Hessians.
DENSE_HESSIAN_BYTES = 64 * 2**20
#: Cost of one sparse multiply-add relative to one dense BLAS flop (measured:
#: scipy's CSR x CSR product against numpy's syrk-backed B.T @ B, one thread).
SPARSE_FLOP_COST = 30.0


class LocalObjective:
    """The local objective f_k = (1/n_k) sum_{j in k} l_j + (1/2) w.(lambda w) and its
    derivatives, from a shard's sums (``loss_sum``, ``loss_grad_sum``, ``hess_sum``),
    its row count ``n`` and its ``penalty``: shared by :class:`Shard` and
    :class:`~distnewton.softmax.SoftmaxShard` (GIANT's and LocalNewton's local
    problems)."""

    def local_value(self, w):
        return global_value(self.loss_sum(w), self.n, self.penalty, w)

    def local_grad(self, w):
        return self.loss_grad_sum(w)[1] / self.n + self.penalty * w

    def local_hessian(self, w):
        H = self.hess_sum(w) / self.n
        H[np.diag_indices_from(H)] += self.penalty
        return H


class Shard(LocalObjective):
    """One worker's rows ``X`` (CSR, n_k x d), labels ``y`` and the loss.

    Parameters
    ----------
    X : scipy.sparse CSR matrix
    y : labels (already mapped to {-1, +1} for logistic and squared_hinge)
    loss : a key of :data:`LOSSES` (``"logistic"``, ``"ridge"``, ``"squared_hinge"``,
        ``"poisson"``)
    lam : lambda, the L2 regularisation weight
    free_intercept : the last column is an intercept left out of the penalty
        (``model.regularize_intercept: false``); ``penalty`` is then the vector
        lambda (1, ..., 1, 0), else the number lambda
    weights : per-row weights s_j >= 0 (``data.weights``, ``model.class_weight``),
        or None; every sum over rows is then sum_j s_j (...) (:mod:`distnewton.weights`)
    """

    def __init__(self, X, y, loss, lam, free_intercept=False, weights=None):
        self.X = sp.csr_matrix(X, dtype=np.float64)
        self.y = np.ascontiguousarray(y, dtype=np.float64)
        self.loss = LOSSES[loss]
        self.lam = float(lam)
        self.n, self.d = self.X.shape
        self.penalty = penalty_weights(self.lam, self.d, free_intercept)
        self.s = None if weights is None else np.ascontiguousarray(weights, dtype=np.float64)
        self._dense_T = self._XT = self._X2 = None   # _dense_T: X^T as a dense d x n array
        self._Xt = None                         # X^T as a CSC view of X's arrays (_tmul)
        self._pairs = self._triu = None         # the pair map (pair_map), triu_indices(d)
        self._at = self._z = self._D = None     # margins (and curvature) at the last w
        # Hessian X^T D X: dense BLAS costs n d^2/2 flops, the sparse product
        # about n (nnz per row)^2 multiply-adds: keep a dense copy when cheaper.
        row_nnz = self.X.nnz / max(self.n, 1)
        if (self.n * self.d * 8 <= DENSE_HESSIAN_BYTES
                and self.d * self.d / 2 <= SPARSE_FLOP_COST * row_nnz * row_nnz):
            # stored as X^T (d x n, rows contiguous): scaling the columns by
            # sqrt(D) and the syrk B B^T run 10-30% faster than on n x d
            self._dense_T = np.ascontiguousarray(self.X.toarray().T)
        # products with X and X^T: BLAS on the dense copy beats CSR when at
        # least a quarter of the entries are non-zeros (ijcnn1, phishing)
        self._blas = self._dense_T is not None and self.X.nnz >= 0.25 * self.n * self.d

    def _mul(self, v):
        """X v."""
        return self._dense_T.T @ v if self._blas else self.X @ v

    def _tmul(self, r):
        """X^T r (on CSR: a CSC view of the same arrays, made once: a new one per
        call cost about 0.1 ms of a 0.9 ms product on w8a)."""
        if self._blas:
            return self._dense_T @ r
        if self._Xt is None:
            self._Xt = self.X.T
        return self._Xt @ r

    # -- sums over the shard's rows (no regularisation) -----------------
    def margins(self, w):
        """z = X w, remembered for the last w: a round at the same w as the
        previous one (loss/gradient, then Hessian-vector products and the line
        search at that w) skips the pass over the rows."""
        if self._at is None or not np.array_equal(w, self._at):
            self._z, self._D = self._mul(w), None
            self._at = np.array(w, dtype=np.float64)
        return self._z

    def curvature(self, w):
        """D = l''(x_j.w) for every row (remembered with the margins)."""
        z = self.margins(w)
        if self._D is None:
            self._D = self.weigh(self.loss.deriv2(z, self.y))
        return self._D

    def set_targets(self, y):
        """New targets for the same rows (``model.multiclass: ovr``): the cached
        margins and curvature are dropped."""
        self.y = np.ascontiguousarray(y, dtype=np.float64)
        self._at = self._z = self._D = None

    def weigh(self, per_row):
        """``per_row`` times the row weights s_j (unchanged without weights)."""
        return per_row if self.s is None else per_row * self.s

    def loss_sum(self, w, z=None):
        z = self.margins(w) if z is None else z
        return float(self.weigh(self.loss.value(z, self.y)).sum())

    def loss_grad_sum(self, w):
        """(sum_j l_j, sum_j grad l_j) in one pass over the rows (the curvature
        l''_j at w comes from the same exponentials and is remembered)."""
        z = self.margins(w)
        value, deriv, D = self.loss.parts(z, self.y)
        self._D = self.weigh(D)
        return float(self.weigh(value).sum()), self._tmul(self.weigh(deriv))

    def hess_sum(self, w):
        """sum_j l''_j x_j x_j^T = X^T D X as a dense d x d array.

        Dense shards: B = X^T D^{1/2} (d x n), then B B^T (one BLAS syrk);
        sparse shards: P^T D over the pair map (:mod:`distnewton.pairs`, 4-5x
        faster), or the CSR product X^T (D X) when the map would be too big.  l'' >= 0 for
        every loss.
        """
        D = self.curvature(w)
        if self._dense_T is not None:
            B = self._dense_T * np.sqrt(D)
            return B @ B.T
        P = self.pair_map()
        if P is not False:
            return unpack(P[0].T @ D[P[1]], self.d, self.triu())
        if self._XT is None:
            self._XT = self.X.T.tocsr()
        return (self._XT @ self.X.multiply(D[:, None]).tocsr()).toarray()

    def pair_map(self):
        """The shard's pair map (P, order) (:mod:`distnewton.pairs`), built at the first
        Hessian, or False: dense shards whose syrk is cheaper (40 x pairs > n d^2,
        a pair costing ~1.5-4 ns against ~0.2 ns per BLAS flop: phishing), and
        maps over ``PAIRS_MAX_BYTES``."""
        if self._pairs is None:
            count = pair_count(self.X)
            dense_first = self._dense_T is not None and 40 * count > self.n * self.d ** 2
            self._pairs = (False if dense_first or PAIR_BYTES * count > PAIRS_MAX_BYTES
                           or self.d * (self.d + 1) // 2 >= 2**31 else row_pairs(self.X))
        return self._pairs

    def triu(self):
        """``numpy.triu_indices(d)``, made once."""
        if self._triu is None:
            self._triu = np.triu_indices(self.d)
        return self._triu

    def hess_upper_sum(self, w):
        """The upper triangle of X^T D X (``numpy.triu_indices`` order, d(d+1)/2
        entries): P^T D over the shard's pair map, or the triangle of
        :meth:`hess_sum` where there is none."""
        P = self.pair_map()
        if P is False:
            return self.hess_sum(w)[self.triu()]
        return P[0].T @ self.curvature(w)[P[1]]

    def hvp_sum(self, w, v, D=None):
        """sum_j l''_j x_j (x_j.v): Hessian-vector product without forming H."""
        D = self.curvature(w) if D is None else D
        return self._tmul(D * self._mul(v))

    def hess_diag_sum(self, w):
        """diag(X^T D X) = sum_j l''_j x_j^2 (elementwise): Jacobi preconditioner sums."""
        if self._X2 is None:
            self._X2 = sp.csr_matrix((self.X.data ** 2, self.X.indices, self.X.indptr),
                                     shape=self.X.shape)
        return self._X2.T @ self.curvature(w)

    def line_losses(self, w, p, steps):
        """sum_j l(x_j.(w - a p)) for every a in ``steps``: one pass for Xw, Xp."""
        z, u = self.margins(w), self._mul(p)
        return np.array([self.weigh(self.loss.value(z - a * u, self.y)).sum() for a in steps])

    # -- the local objective f_k: value, gradient, Hessian from LocalObjective --
    def local_hvp_operator(self, w):
        """v -> Hess f_k(w) v, with the curvature weights computed once."""
        D = self.curvature(w)          # never modified in place: safe to keep
        penalty = self.penalty
        return lambda v: self.hvp_sum(w, v, D) / self.n + penalty * v


def penalty_weights(lam, d, free_intercept=False):
    """The L2 weights of the d coordinates: the number lambda, or with
    ``free_intercept`` the vector lambda (1, ..., 1, 0) (the intercept, the last
    column, unpenalised).  Every objective, gradient, Hessian and line search
    takes the penalty as ``lam * w`` / ``w @ (lam * w)`` / ``H + diag(lam)``, so
    both forms work in the same code."""
    if not free_intercept:
        return float(lam)
    out = np.full(d, float(lam))
    out[-1] = 0.0
    return out



def global_value(loss_sum, n, lam, w):
    """f(w) from the reduced data term: (1/n) sum_j l_j + (1/2) w.(lambda w)
    (``lam``: a number, or per-coordinate weights, :func:`penalty_weights`)."""
    if np.ndim(lam):
        return loss_sum / n + 0.5 * float(w @ (lam * w))
    return loss_sum / n + 0.5 * lam * float(w @ w)


def regularise(grad_sum, n, lam, w):
    """grad f(w) = (1/n) sum_j grad l_j + lambda w (``lam`` as for global_value)."""
    return grad_sum / n + lam * w
