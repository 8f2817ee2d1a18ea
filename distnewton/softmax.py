"""``model.multiclass: multinomial``: softmax logistic regression over C classes.

In the notation of :mod:`distnewton.objectives` (n rows x_j of p features, the
intercept column counted in p, row weights s_j, 1 without weights), the labels
y_j are class indices 0..C-1 (the sorted raw training labels) and the model is
W (C x p), row c class c's weights.  With the scores z_j = W x_j (C of them),

    f(W) = (1/n) sum_j s_j [logsumexp(z_j) - z_j[y_j]] + (lambda/2) ||W||_F^2.

The optimisation vector is W flattened CLASS-MAJOR, w[c p:(c+1) p] = W[c], so
that ``w.reshape(C, p)`` is the ``/model/w`` layout of one-vs-rest and the
algorithms see one vector of d = p C floats (``MultinomialProblem.d``: every
vector a round moves is these d floats, counted exactly).  With P the n x C softmax probabilities and Y the one-hot
labels:

- gradient sum: X^T S (P - Y), as the C x p matrix (P - Y)^T S X;
- Hessian: the C x C blocks H[c, c'] = X^T S diag(p_c (delta_cc' - p_c')) X;
- Hessian-vector product (no Hessian formed): for V = v.reshape(C, p),
  U = X V^T, R = P*U - P*rowsum(P*U), product X^T S R.

log-sum-exp subtracts each row's largest score: no overflow for any W.

The intercept (``model.regularize_intercept: false``): the C intercepts b_c are
then left out of the penalty, and adding one constant to all of them changes
nothing (the softmax is shift invariant), so the Hessian is singular along
u = (the indicator of the C intercept entries).  The gradient is always
orthogonal to u (sum_c (p_jc - [y_j = c]) = 0 for every row), so every
gradient iterate from w = 0 keeps sum_c b_c = 0; for the Newton systems each
shard adds the rank-one term n_k/(4C) u u^T to its Hessian sums and
Hessian-vector products (its Jacobi diagonal instead gives the C intercept
entries one value, their mean: :meth:`SoftmaxShard.hess_diag_sum`).  That makes the systems nonsingular
without changing any direction: with H0 u = 0 and g orthogonal to u,
(H0 + a u u^T)^{-1} g = H0^+ g, the step that keeps the intercepts' sum at
zero.  f itself is unchanged, so the optimum value is scikit-learn's (which
also leaves the intercepts unpenalised).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .objectives import DENSE_HESSIAN_BYTES, LocalObjective, penalty_weights


#: the largest eigenvalue of a row's curvature diag(p) - p p^T over all p: 1/2 (two
#: classes at p = (1/2, 1/2)), twice the binary logistic's l'' <= 1/4; so
#: lambda_max(f'') <= lambda + (1/2) sum_j s_j ||x_j||^2 / n (DiSCO's L)
CURVATURE_MAX = 0.5


class Softmax:
    """The multinomial logistic loss (a name for :attr:`SoftmaxShard.loss`)."""

    name = "multinomial"


def softmax_parts(Z):
    """(logsumexp per row, probabilities P) of scores Z (n x C), stably."""
    top = Z.max(axis=1, keepdims=True)
    E = np.exp(Z - top)
    total = E.sum(axis=1, keepdims=True)
    return (np.log(total) + top).ravel(), E / total


def class_penalty(lam, p, C, free_intercept):
    """The L2 weights of the d = p C coordinates: the number lambda, or with a free
    intercept lambda (1, ..., 1, 0) per class (every class's last entry unpenalised)."""
    if not free_intercept:
        return float(lam)
    return np.tile(penalty_weights(lam, p, True), C)


def intercept_direction(p, C):
    """u: 1 on the C intercept entries (class c's entry c p + p - 1), else 0."""
    u = np.zeros(p * C)
    u[p - 1::p] = 1.0
    return u


def null_direction(prob):
    """q = u / sqrt(C), u the indicator of the C intercepts, for a multinomial
    problem with a free intercept (the module docstring); None otherwise."""
    C = getattr(prob, "classes", 0)
    if not C or not prob.free_intercept:
        return None
    return intercept_direction(prob.d // C, C) / np.sqrt(C)


def without_null(H, q):
    """(I - q q^T) H (I - q q^T) + q q^T / 4: a learnt Hessian (FedNL's) restricted to the
    directions orthogonal to q, plus the shards' rank-one term (sum_k n_k/(4C) u u^T
    / n = q q^T / 4) exactly.  A learnt H_i is not exactly singular along q, so with
    the term in it the step had a component along q that depended on the term's
    weight; on this matrix g (orthogonal to q) gives a step orthogonal to q, and the
    term never acts (the Newton solves' property, the module docstring)."""
    Hq = H @ q
    return (H - np.outer(q, Hq) - np.outer(Hq, q)
            + (float(q @ Hq) + 0.25) * np.outer(q, q))


class SoftmaxShard(LocalObjective):
    """One worker's rows for the multinomial objective, with :class:`~distnewton.
    objectives.Shard`'s interface: sums over the rows of the loss, gradient,
    Hessian (exact d x d, d = p C), Hessian-vector products and the diagonal;
    the local objective f_k and its derivatives; ``n``, ``d``, ``penalty``.

    ``y``: class indices 0..C-1 (as floats); ``classes``: C.
    """

    def __init__(self, X, y, classes, lam, free_intercept=False, weights=None):
        self.X = sp.csr_matrix(X, dtype=np.float64)
        self.y = np.ascontiguousarray(y, dtype=np.float64)
        self.C = int(classes)
        self.loss = Softmax
        self.lam = float(lam)
        self.n, self.p = self.X.shape
        self.d = self.p * self.C
        self.penalty = class_penalty(self.lam, self.p, self.C, free_intercept)
        self.s = None if weights is None else np.ascontiguousarray(weights, dtype=np.float64)
        self._idx = self.y.astype(np.int64)
        self._rows = np.arange(self.n)
        # the null direction of a free intercept, weighted n_k/(4C): see the module docstring
        self._u = intercept_direction(self.p, self.C) if free_intercept else None
        self._tau = self.n / (4.0 * self.C)
        self._dense = None
        if self.n * self.p * 8 <= DENSE_HESSIAN_BYTES and self.X.nnz >= 0.25 * self.n * self.p:
            self._dense = self.X.toarray()
        self._Xt = self._X2 = self._triu = None
        self._at = self._Z = self._lse = self._P = None

    # -- products with X -------------------------------------------------------
    def _mul(self, v):
        """X V^T (n x C) for the class-major vector v."""
        V = np.asarray(v, dtype=np.float64).reshape(self.C, self.p)
        A = self._dense if self._dense is not None else self.X
        return np.asarray(A @ V.T)

    def _tmul(self, R):
        """X^T R (p x C) as the class-major vector (R^T X).ravel()."""
        if self._dense is not None:
            return (self._dense.T @ R).T.ravel()
        if self._Xt is None:
            self._Xt = self.X.T
        return np.asarray(self._Xt @ R).T.ravel()

    def weigh(self, per_row):
        """``per_row`` (a vector, or rows of a matrix) times the row weights s_j."""
        if self.s is None:
            return per_row
        return per_row * (self.s if np.ndim(per_row) == 1 else self.s[:, None])

    def scores(self, w):
        """(Z, logsumexp, P) at w, remembered for the last w (a round at the same w
        as the previous one skips the pass over the rows)."""
        if self._at is None or not np.array_equal(w, self._at):
            self._Z = self._mul(w)
            self._lse, self._P = softmax_parts(self._Z)
            self._at = np.array(w, dtype=np.float64)
        return self._Z, self._lse, self._P

    def _row_losses(self, Z, lse=None):
        if lse is None:
            lse = softmax_parts(Z)[0]
        return lse - Z[self._rows, self._idx]

    # -- sums over the shard's rows (no regularisation) --------------------------
    def loss_sum(self, w, z=None):
        Z, lse, _ = self.scores(w)
        return float(self.weigh(self._row_losses(Z, lse)).sum())

    def loss_grad_sum(self, w):
        """(sum_j s_j l_j, X^T S (P - Y)) in one pass over the rows."""
        Z, lse, P = self.scores(w)
        R = P.copy()
        R[self._rows, self._idx] -= 1.0
        return float(self.weigh(self._row_losses(Z, lse)).sum()), self._tmul(self.weigh(R))

    def hvp_sum(self, w, v, D=None):
        """X^T S (P*U - P*rowsum(P*U)), U = X V^T: Hessian-vector product, no H formed."""
        P = self.scores(w)[2] if D is None else D
        PU = P * self._mul(v)
        out = self._tmul(self.weigh(PU - P * PU.sum(axis=1, keepdims=True)))
        if self._u is not None:
            out += self._tau * self._u * float(self._u @ v)
        return out

    def hess_sum(self, w):
        """The exact d x d sum (:meth:`plain_hess_sum`), with a free intercept plus
        the rank-one term n_k/(4C) u u^T (the module docstring)."""
        H = self.plain_hess_sum(w)
        if self._u is not None:
            H += self._tau * np.outer(self._u, self._u)
        return H

    def plain_hess_sum(self, w):
        """The exact d x d sum, block by block: H[c, c'] = X^T S diag(p_c (delta_cc' -
        p_c')) X, C (C + 1)/2 products X^T diag(.) X (BLAS on the dense copy, else
        CSR), each of the shard's size: no n x d C intermediate."""
        P = self.scores(w)[2]
        sw = np.ones(self.n) if self.s is None else self.s
        H = np.empty((self.d, self.d))
        for c in range(self.C):
            for c2 in range(c, self.C):
                diag = sw * P[:, c] * ((c == c2) - P[:, c2])
                block = self._weighted_gram(diag)
                H[c * self.p:(c + 1) * self.p, c2 * self.p:(c2 + 1) * self.p] = block
                H[c2 * self.p:(c2 + 1) * self.p, c * self.p:(c + 1) * self.p] = block.T
        return H

    def _weighted_gram(self, diag):
        """X^T diag(diag) X as a dense p x p array."""
        if self._dense is not None:
            return (self._dense.T * diag) @ self._dense
        if self._Xt is None:
            self._Xt = self.X.T
        return (self._Xt @ self.X.multiply(diag[:, None]).tocsr()).toarray()

    def triu(self):
        if self._triu is None:
            self._triu = np.triu_indices(self.d)
        return self._triu

    def hess_upper_sum(self, w):
        """The upper triangle of :meth:`hess_sum` (``numpy.triu_indices`` order)."""
        return self.hess_sum(w)[self.triu()]

    def plain_hess_upper_sum(self, w):
        """:meth:`hess_upper_sum` without the rank-one term: what FedNL's clients
        learn (a compressor would spend its entries on the constant term, and the
        master adds it back exactly: :func:`without_null`)."""
        return self.plain_hess_sum(w)[self.triu()]

    def hess_diag_sum(self, w):
        """diag of the Hessian sum, X^2^T S p_c (1 - p_c) per class: the Jacobi
        preconditioner's.  With a free intercept the C intercept entries are all set
        to their mean (or to n_k/(4C) when that is 0: saturated probabilities), so that
        u is an eigenvector of the preconditioner: a preconditioned residual stays
        orthogonal to u, the u u^T term never acts and the PCG steps do not depend
        on it (with the exact diagonal plus the term they did)."""
        P = self.scores(w)[2]
        if self._X2 is None:
            self._X2 = sp.csr_matrix((self.X.data ** 2, self.X.indices, self.X.indptr),
                                     shape=self.X.shape).T.tocsr()
        out = np.asarray(self._X2 @ self.weigh(P * (1.0 - P))).T.ravel()
        if self._u is not None:
            mean = float(out[self.p - 1::self.p].mean())
            out[self.p - 1::self.p] = mean if mean > 0 else self._tau
        return out

    def line_losses(self, w, p, steps):
        """sum_j s_j l_j(w - a p) for every a in ``steps``: one pass for X W^T, X P^T."""
        Z, U = self.scores(w)[0], self._mul(p)
        return np.array([self.weigh(self._row_losses(Z - a * U)).sum() for a in steps])

    # -- the local objective f_k: value, gradient, Hessian from LocalObjective ----
    def local_hvp_operator(self, w):
        """v -> Hess f_k(w) v, the probabilities computed once."""
        P = self.scores(w)[2].copy()
        penalty = self.penalty
        return lambda v: self.hvp_sum(w, v, P) / self.n + penalty * v
