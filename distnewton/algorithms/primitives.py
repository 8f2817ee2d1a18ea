"""Distributed primitives shared by the algorithms (dask-glm style).

Each function states its cost in rounds and floats per worker.  ``d`` is the
number of features, ``n`` the number of training rows.
"""

from __future__ import annotations

import numpy as np

from ..linalg import cg, solve_spd
from ..objectives import global_value, regularise  # noqa: F401 (re-exported)
from ..runtime import worker_task
from .base import use_cg


@worker_task("loss_grad")
def _loss_grad(ctx, w):
    f, g = ctx.shard.loss_grad_sum(w)
    return np.concatenate(([f], g))


def loss_grad(rt, prob, w):
    """f(w), grad f(w).  1 round: d floats down, d + 1 up per worker."""
    out = rt.round("loss_grad", w, up=prob.d + 1)
    return global_value(out[0], prob.n, prob.lam, w), regularise(out[1:], prob.n, prob.lam, w)


@worker_task("loss_grad_hess")
def _loss_grad_hess(ctx, w):
    f, g = ctx.shard.loss_grad_sum(w)
    return np.concatenate(([f], g, ctx.shard.hess_sum(w).ravel()))


def loss_grad_hess(rt, prob, w):
    """f(w), grad f(w), Hess f(w) (dense).  1 round: d down, 1 + d + d^2 up per worker."""
    d = prob.d
    out = rt.round("loss_grad_hess", w, up=1 + d + d * d)
    H = out[1 + d:].reshape(d, d) / prob.n
    H[np.diag_indices(d)] += prob.lam
    return (global_value(out[0], prob.n, prob.lam, w), regularise(out[1:1 + d], prob.n, prob.lam, w), H)


@worker_task("hvp")
def _hvp(ctx, w, v):
    return ctx.shard.hvp_sum(w, v)


def hvp(rt, prob, w, v):
    """Hess f(w) v.  1 round: 2d down, d up per worker."""
    return rt.round("hvp", w, v, up=prob.d) / prob.n + prob.lam * v


@worker_task("line_losses")
def _line_losses(ctx, w, p, steps):
    return ctx.shard.line_losses(w, p, steps)


def backtracking(rt, prob, w, p, f, slope, ls):
    """Distributed Armijo backtracking along -p; returns (alpha, f(w - alpha p)).

    Accepts the largest alpha in alpha_max * 2^-j (j = 0, 1, ...) with
    f(w - alpha p) <= f - beta alpha slope, where slope = p.grad f(w) > 0.  The
    workers evaluate ``ls_steps`` trial steps per round (one pass over their
    rows for Xw and Xp), so a line search usually costs 1 round: 2d + ls_steps
    floats down, ls_steps up per worker.  Returns (0, f) if no trial step out
    of ``max_backtracks`` decreases f enough.
    """
    tried = 0
    while tried < ls.max_backtracks:
        m = min(ls.ls_steps, ls.max_backtracks - tried)
        steps = ls.alpha_max * 0.5 ** np.arange(tried, tried + m)
        sums = rt.round("line_losses", w, p, steps, up=m)
        for a, s in zip(steps, sums):
            f_new = global_value(s, prob.n, prob.lam, w - a * p)
            if f_new <= f - ls.beta * a * slope:
                return float(a), f_new
        tried += m
    return 0.0, f


def newton_cg_direction(rt, prob, w, g, g0_norm, p):
    """Inexact Newton direction: CG on Hess f(w) x = g, Hessian-free.

    Stops at the relative residual eta = max(cg_rtol, min(0.1, sqrt(||g|| / ||g0||)))
    (Eisenstat-Walker forcing sequence: loose far from the optimum, tightening
    as ||g|| -> 0, so superlinear convergence is kept) or after ``cg_maxiter``
    iterations.  Returns (x, iterations); each iteration is one :func:`hvp`
    round (2d down, d up per worker).
    """
    eta = max(p.cg_rtol, min(0.1, float(np.sqrt(np.linalg.norm(g) / g0_norm))))
    return cg(lambda v: hvp(rt, prob, w, v), g, rtol=eta, maxiter=p.cg_maxiter)


def local_newton_direction(shard, w, g, p, rtol=None):
    """Solve Hess f_k(w) x = g on one worker (LAPACK Cholesky or local CG).

    Local CG stops at the relative residual ``rtol`` (default ``cg_rtol``) or
    after ``cg_maxiter`` iterations.
    """
    if use_cg(p, shard.d):
        x, _ = cg(shard.local_hvp_operator(w), g, rtol=p.cg_rtol if rtol is None else rtol,
                  maxiter=p.cg_maxiter)
        return x
    return solve_spd(shard.local_hessian(w), g)
