"""Exact distributed Newton's method with Armijo backtracking.

Iteration t (w = w_t):

1. the workers reduce the gradient and Hessian sums of their rows; the master
   forms g = grad f(w) and H = Hess f(w)                     [1 round]
   (with ``solver: cg`` only g; each CG iteration then costs one
   Hessian-vector-product round, v down and Hess f(w) v up, the workers
   holding w and their curvature weights; no d x d matrix is ever formed)
2. the master solves H p = g (LAPACK Cholesky, damped if needed); with CG
   (inexact Newton, :func:`.primitives.newton_cg_direction`) to the relative
   residual eta_t = max(cg_rtol, min(0.1, sqrt(||g_t|| / ||g_0||))), a forcing
   sequence that is loose far from the optimum and tightens as ||g|| -> 0
   (Eisenstat & Walker; superlinear convergence is kept)
3. distributed backtracking: alpha = largest alpha_max 2^-j with
   f(w - alpha p) <= f(w) - beta alpha p.g                   [1 round]
4. w_{t+1} = w - alpha p

So an iteration costs 2 rounds (Cholesky) or 2 + #CG iterations (CG).  The
method converges quadratically near the optimum; it is the reference that
computes f* for the other methods.
"""

from __future__ import annotations

import numpy as np

from ..linalg import solve_spd
from . import primitives as P
from .base import LINE_SEARCH, SOLVER, Algorithm, use_cg


class Newton(Algorithm):
    name = "newton"
    params = {**LINE_SEARCH, **SOLVER}
    columns = {"cg_iterations": np.int64}

    def step(self):
        prob, w = self.prob, self.w
        cg_its = 0
        if use_cg(self.p, prob.d):
            jacobi = self.p.cg_precondition == "jacobi"
            f, g, diag = P.loss_grad_hold(self.rt, prob, w, diag=jacobi)
            self.g0_norm = getattr(self, "g0_norm", None) or float(np.linalg.norm(g))
            p, cg_its = P.newton_cg_direction(self.rt, prob, w, g, self.g0_norm, self.p, diag)
        else:
            f, g, H = P.loss_grad_hess(self.rt, prob, w)
            p = solve_spd(H, g)
        alpha, _ = P.backtracking(self.rt, prob, w, p, f, float(p @ g), self.p)
        if alpha == 0.0:
            self.stalled = "line search found no decrease (at machine precision?)"
        self.w = w - alpha * p
        return {"step_size": alpha, "cg_iterations": cg_its}
