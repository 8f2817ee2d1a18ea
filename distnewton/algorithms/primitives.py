"""Distributed primitives shared by the algorithms (dask-glm style).

Each function states its cost in rounds and floats per worker.  ``d`` is the
number of features, ``n`` the number of training rows.  The ``local_*`` ones run
on one worker, on its shard only (no communication): the same line search
(:func:`armijo`) and forcing sequence (:func:`forcing`) on f_k instead of f.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..linalg import cg, solve_spd
from ..objectives import global_value, regularise  # noqa: F401 (re-exported)
from ..objectives import is_classification
from ..runtime import worker_task
from .base import NEWTON_CG_RTOL, local_cg_rtol, use_cg
from .control import Control


@worker_task("loss_grad")
def _loss_grad(ctx, w):
    f, g = ctx.shard.loss_grad_sum(w)
    return np.concatenate(([f], g))


def loss_grad(rt, prob, w, task="loss_grad"):
    """f(w), grad f(w).  1 round: d floats down, d + 1 up per worker.

    ``task``: a worker task that also keeps something (``tron.loss_grad``)."""
    out = rt.round(task, w, up=prob.d + 1)
    return global_value(out[0], prob.n, prob.penalty, w), regularise(out[1:], prob.n, prob.penalty, w)


@worker_task("positives")
def _positives(ctx):
    return np.array([float(np.sum(ctx.shard.y > 0))])


def liblinear_scale(rt, prob):
    """max(min(#pos, #neg), 1) / n, the factor of LIBLINEAR's stopping rule for
    logistic regression and the L2-loss SVM (1 for ridge, as LIBLINEAR's
    regression rule).  1 round: nothing down, 1 float up per worker."""
    if not is_classification(prob.loss):
        return 1.0
    pos = int(rt.round("positives", up=1)[0])
    return max(min(pos, prob.n - pos), 1) / prob.n


@worker_task("loss")
def _loss(ctx, w):
    return np.array([ctx.shard.loss_sum(w)])


def loss(rt, prob, w):
    """f(w) alone.  1 round: d floats down, 1 up per worker."""
    return global_value(rt.round("loss", w, up=1)[0], prob.n, prob.penalty, w)


@worker_task("loss_grad_hess")
def _loss_grad_hess(ctx, w):
    f, g = ctx.shard.loss_grad_sum(w)
    return np.concatenate(([f], g, ctx.shard.hess_sum(w).ravel()))


def loss_grad_hess(rt, prob, w):
    """f(w), grad f(w), Hess f(w) (dense).  1 round: d down, 1 + d + d^2 up per worker."""
    d = prob.d
    out = rt.round("loss_grad_hess", w, up=1 + d + d * d)
    H = out[1 + d:].reshape(d, d) / prob.n
    H[np.diag_indices(d)] += prob.penalty
    return (global_value(out[0], prob.n, prob.penalty, w), regularise(out[1:1 + d], prob.n, prob.penalty, w), H)


@dataclass(frozen=True)
class HoldHeader(Control):
    """Sent down with w by :func:`loss_grad_hold` (1 float)."""

    diag: bool      # also diag(Hess f(w)), for a Jacobi preconditioner


@worker_task("loss_grad.hold")
def _loss_grad_hold(ctx, w, header):
    ctx.scratch["hessian_at"] = w.copy()         # w's buffer is reused by the next round
    out = _loss_grad(ctx, w)
    if HoldHeader.unpack(header).diag:
        return np.concatenate((out, ctx.shard.hess_diag_sum(w)))
    return out


def loss_grad_hold(rt, prob, w, diag=False):
    """:func:`loss_grad`, and the workers hold w for the :func:`hvp` rounds that follow.

    With ``diag``, also diag(Hess f(w)) (for a Jacobi preconditioner).
    1 round: d + 1 floats down, d + 1 (2d + 1 with diag) up per worker.
    Returns (f, g, diag or None).
    """
    d = prob.d
    out = rt.round("loss_grad.hold", w, HoldHeader(diag).pack(),
                   up=(2 * d + 1) if diag else d + 1)
    f = global_value(out[0], prob.n, prob.penalty, w)
    g = regularise(out[1:1 + d], prob.n, prob.penalty, w)
    return f, g, (out[1 + d:] / prob.n + prob.penalty) if diag else None


def _fingerprint(w):
    return np.array([float(np.sum(w)), float(w @ w)])


@worker_task("hvp")
def _hvp(ctx, v, fingerprint):
    w = ctx.scratch.get("hessian_at")
    if w is None or not np.array_equal(_fingerprint(w), fingerprint):
        raise RuntimeError("hvp round without a loss_grad_hold round at the same w")
    return ctx.shard.hvp_sum(w, v)


def hvp(rt, prob, w, v, task="hvp"):
    """Hess f(w) v at the w of the last :func:`loss_grad_hold` round (``task``:
    another worker task holding w its own way, ``tron.hvp``).

    1 round: d + 2 floats down (v, and w's sum and squared norm, which the
    workers check against the w they hold with their curvature weights
    l''(x_j.w) from that round), d up per worker.
    """
    return rt.round(task, v, _fingerprint(w), up=prob.d) / prob.n + prob.penalty * v


@worker_task("line_losses")
def _line_losses(ctx, w, p, steps):
    return ctx.shard.line_losses(w, p, steps)


#: the stall of a line search without a step that decreases f enough
NO_DECREASE = "line search found no decrease (at machine precision?)"


def armijo(losses, n, lam, w, p, f, slope, ls, per_pass):
    """Armijo backtracking along -p: (alpha, f(w - alpha p)).

    Tries alpha = alpha_max 2^-j, j = 0, 1, ..., max_backtracks - 1 (gamma^j for
    an ``ls.ls_gamma`` other than 1/2: FedNL-LS), ``per_pass`` trial steps at a
    time: ``losses(steps)`` returns the data sums sum_j l(x_j.(w - a p)) (one
    pass over the rows for Xw and Xp); f(w - a p) = (1/n) sum + (lambda/2)
    ||w - a p||^2.  A trial passes when f(w - a p) <= f - beta a slope, where
    slope = p.grad f(w) > 0.  Of the first pass with a trial that passes,
    ``ls.ls_pick`` (absent: ``first``) takes the first (largest) such step, the
    textbook rule, or with ``best`` the passing step of least f among those that
    pass already computed (lower beyond rounding): no extra pass (and no extra
    round), and the step that damps a direction the first one overshoots
    (:func:`pick_step`).
    Returns (0, f) when no trial decreases f enough.  A trial whose loss is +inf or
    NaN (``poisson``'s exp(x.w) overflowing far from the optimum) fails the test, as
    every comparison with it is false: the search goes on with a shorter step.
    """
    tried, best = 0, getattr(ls, "ls_pick", "first") == "best"
    while tried < ls.max_backtracks:
        m = min(per_pass, ls.max_backtracks - tried)
        steps = ls.alpha_max * getattr(ls, "ls_gamma", 0.5) ** np.arange(tried, tried + m)
        values = [global_value(s, n, lam, w - a * p) for a, s in zip(steps, losses(steps))]
        found = pick_step(steps, values, f, ls.beta, slope, best)
        if found is not None:
            return found
        tried += m
    return 0.0, f


#: the relative difference of two f values below which they count as equal: the
#: rounding of the loss sums (n terms, reduced over the workers).  Near the optimum
#: the trial steps' f values agree to about 15 digits, and taking the least of them
#: would pick noise (measured: a9a, 80 workers, lambda 1e-3, to ||grad|| <= 1e-9:
#: tiny steps from ||grad|| 3e-9 on, then a stall)
F_NOISE = 64 * np.finfo(float).eps


def pick_step(steps, values, f, beta, slope, best):
    """(alpha, f(w - alpha p)) of the trial steps (largest first) with their f
    values that pass Armijo, f(w - a p) <= f - beta a slope: the first, or with
    ``best`` the one of least f, a smaller step replacing a larger one only when
    its f is lower by more than :data:`F_NOISE` |f|; None when none passes."""
    passing = [(float(a), v) for a, v in zip(steps, values) if v <= f - beta * a * slope]
    if not passing:
        return None
    chosen = passing[0]
    for a, v in passing[1:] if best else ():
        if v < chosen[1] - F_NOISE * abs(f):
            chosen = (a, v)
    return chosen


def backtracking(rt, prob, w, p, f, slope, ls):
    """Distributed Armijo backtracking (:func:`armijo` on f); returns (alpha, f(w - alpha p)).

    The workers evaluate ``ls_steps`` trial steps per round (one pass over their
    rows for Xw and Xp), so a line search usually costs 1 round: 2d + ls_steps
    floats down, ls_steps up per worker.  Returns (0, f) if no trial step out
    of ``max_backtracks`` decreases f enough.
    """
    def losses(steps):
        return rt.round("line_losses", w, p, steps, up=len(steps))
    return armijo(losses, prob.n, prob.penalty, w, p, f, slope, ls, ls.ls_steps)


def local_backtracking(shard, w, p, g, ls):
    """:func:`armijo` on one worker's f_k (no communication), all ``max_backtracks``
    trial steps in one pass over the shard; returns alpha (0 if none passes)."""
    def losses(steps):
        return shard.line_losses(w, p, steps)
    return armijo(losses, shard.n, shard.penalty, w, p, shard.local_value(w), float(p @ g), ls,
                  ls.max_backtracks)[0]


def forcing(g, g0_norm, p):
    """Relative CG residual eta = max(cg_rtol, min(0.1, sqrt(||g|| / ||g0||))):
    the Eisenstat-Walker forcing sequence, loose far from the optimum and
    tightening as ||g|| -> 0 (superlinear convergence of inexact Newton is kept).
    cg_rtol unset: the floor is local CG's 1e-10."""
    return max(local_cg_rtol(p), min(0.1, float(np.sqrt(np.linalg.norm(g) / g0_norm))))


def newton_cg_direction(rt, prob, w, g, g0_norm, p, diag=None):
    """Inexact Newton direction: CG on Hess f(w) x = g, Hessian-free.

    The workers must hold w: g came from :func:`loss_grad_hold` at w.
    Stops at the relative residual :func:`forcing` (g, g0) — with ``cg_rtol``
    unset at ``NEWTON_CG_RTOL`` = 0.1 — or after ``cg_maxiter`` iterations;
    ``diag``: diag(Hess f(w)) for Jacobi preconditioning.
    Returns (x, iterations); each iteration is one :func:`hvp` round
    (d + 2 down, d up per worker).
    """
    rtol = NEWTON_CG_RTOL if p.cg_rtol is None else forcing(g, g0_norm, p)
    return cg(lambda v: hvp(rt, prob, w, v), g, rtol=rtol,
              maxiter=p.cg_maxiter, diag=diag)


def local_newton_direction(shard, w, g, p, rtol=None):
    """Solve Hess f_k(w) x = g on one worker (LAPACK Cholesky or local CG).

    Local CG stops at the relative residual ``rtol`` (default ``cg_rtol``, 1e-10
    when unset) or after ``cg_maxiter`` iterations.
    """
    if use_cg(p, shard.d):
        x, _ = cg(shard.local_hvp_operator(w), g, rtol=local_cg_rtol(p) if rtol is None else rtol,
                  maxiter=p.cg_maxiter)
        return x
    return solve_spd(shard.local_hessian(w), g)
