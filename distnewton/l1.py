"""The L1 term lambda_1 ||w||_1 of an L1 or elastic-net objective, on the master.

    F(w) = f(w) + sum_i lambda_1,i |w_i|,   f the smooth part (loss + L2 term)

``lambda_1,i`` is ``model.l1`` (or ``model.l1_ratio`` times ``model.lambda``) for every
coordinate but a free intercept (:attr:`distnewton.problem.Problem.l1_weights`).  F
is not differentiable where some w_i = 0; its optimality measure is the
*pseudo-gradient* of Andrew and Gao (2007), the subgradient of least norm:

    pg_i = g_i + lambda_1 sign(w_i)          w_i != 0
         = g_i + lambda_1                    w_i = 0, g_i + lambda_1 < 0
         = g_i - lambda_1                    w_i = 0, g_i - lambda_1 > 0
         = 0                                 otherwise

(g = grad f).  pg = 0 exactly at a minimiser; the run logs ||pg|| as ``grad_norm``
and stops on it (``run.grad_rtol`` against ||pg(0)||).  None of this costs a
round: the workers compute f and grad f as always, the master adds the rest.

Reference: G. Andrew, J. Gao, "Scalable training of L1-regularized log-linear
models", ICML 2007.
"""

from __future__ import annotations

import numpy as np


def value(l1, w) -> float:
    """sum_i lambda_1,i |w_i| (``l1`` a number or a vector of weights)."""
    return float(np.sum(l1 * np.abs(w)))


def pseudo_gradient(l1, w, g):
    """The least-norm subgradient of F = f + lambda_1 ||w||_1 at w (``g`` = grad f)."""
    l1 = np.broadcast_to(np.asarray(l1, dtype=np.float64), w.shape)
    pg = g + l1 * np.sign(w)
    zero = w == 0
    right, left = g + l1, g - l1
    pg[zero] = np.where(right[zero] < 0, right[zero], np.where(left[zero] > 0, left[zero], 0.0))
    return pg


def orthant(w, pg, l1=1.0):
    """xi: the orthant a step may not leave: sign(w_i), or sign(-pg_i) where w_i = 0;
    NaN (no constraint) on a coordinate the L1 term leaves out (``l1`` weight 0: a
    free intercept, or no L1 term at all, where OWL-QN is L-BFGS)."""
    xi = np.where(w != 0, np.sign(w), np.sign(-pg))
    return np.where(np.broadcast_to(np.asarray(l1) > 0, w.shape), xi, np.nan)


def project(x, xi):
    """pi(x; xi): x with every constrained coordinate whose sign is not xi's set to
    zero (a NaN in ``xi``: no constraint)."""
    return np.where(np.isnan(xi) | (np.sign(x) == xi), x, 0.0)


def objective(prob, w, f, g):
    """(F, ||pg||) from the smooth part's f and grad f: what the loop logs."""
    l1 = prob.l1_weights
    return f + value(l1, w), float(np.linalg.norm(pseudo_gradient(l1, w, g)))
