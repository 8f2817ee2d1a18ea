"""DANE: Distributed Approximate NEwton (Shamir, Srebro and Zhang, ICML 2014), built in.

The paper's notation: K machines, machine k holds the local objective
f_k(w) = (1/n_k) sum_{j in k} l(x_j.w, y_j) + (lambda/2)||w||^2 and
f(w) = sum_k (n_k/n) f_k(w); ``eta`` > 0 weighs the global gradient, ``mu`` >= 0
is the proximal weight.  Iteration t (w_t on the master), two rounds:

1. g = f'(w_t)                                          [round 1: d down, d + 1 up]
2. machine k solves its local problem
       w_k = argmin_w  f_k(w) - (f_k'(w_t) - eta g).w + (mu/2)||w - w_t||^2
   inexactly: ``local_steps`` Newton steps from w_t, each solving
       (f_k''(w) + mu I) p = f_k'(w) - f_k'(w_t) + eta g + mu (w - w_t)
   (Cholesky up to ``cg_threshold`` features with ``local_solver: auto``, else
   CG on local Hessian-vector products to ``cg_rtol``), w <- w - p;
   the master averages  w_{t+1} = sum_k (n_k/n) w_k     [round 2: 2d down, d up]

No line search: DANE as published (``step_rule: unit``, ``preset: paper``).  By
default (``step_rule: unit_or_half``) the next iteration's gradient round also
evaluates f and its gradient at the midpoint (w_t + w_{t+1})/2 and the iteration
goes on from the one of the two with the lower f: no extra round, twice that
round's floats (2d down, 2d + 2 up from the second iteration on).  Why: the
averaged local inverse Hessians overshoot along rare features (a feature in a
few rows is nearly absent from most shards, whose Hessians are about lambda
along it): on w8a at lambda = 1/n with 4 workers the unit step contracted that
direction by only ~0.987 an iteration, and DANE reached relative suboptimality
1e-6 in 16 rounds but ended max_rounds (500) short of the default gradient
tolerance; the half step damps it (docs/algorithms/dane.md has the measurement,
and the proximal weight mu that was measured and rejected: it costs rounds on
the other sets).  The history's point is the DANE average w_{t+1} (the model
returned); the midpoint, when chosen, is what the next local problems start from.  The first local Newton step from w_t solves
(f_k''(w_t) + mu I) p = eta g, so with one step, eta = 1 and mu = 0 an iteration
is GIANT's averaged local direction with a unit step.  For quadratic losses
(ridge) one step solves the local problem exactly, and the paper's analysis
gives linear convergence with eta = 1, mu >= 0; mu > 0 damps the local steps
where the local Hessians differ much from the global one (few rows per machine).

The plugin guide's example (``examples/dane_plugin``) is the paper's method
(``step_rule: unit``) written against :mod:`distnewton.plugin` alone; installed, it
registers ``dane_plugin`` (this built-in owns ``dane``) and accepts the same keys
but ``step_rule`` and ``preset``.

References
----------
.. [1] O. Shamir, N. Srebro and T. Zhang, "Communication-efficient distributed
   optimization using an approximate Newton-type method", ICML 2014.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from ..linalg import cg, solve_spd
from ..params import FLOAT, INT, STR, Param, at_least, nonneg, positive, preset_param
from ..runtime import worker_task
from ..stopping import local_range
from . import primitives as P
from .base import Algorithm, use_cg


#: ``preset: paper``: DANE as published, the averaged local solutions with no step choice
PRESETS = {"paper": {"step_rule": "unit"}}


def damped_newton_step(shard, w, rhs, mu, p):
    """p with (f_k''(w) + mu I) p = rhs on one worker: Cholesky or local CG."""
    if use_cg(SimpleNamespace(solver=p.local_solver, cg_threshold=p.cg_threshold), shard.d):
        hvp = shard.local_hvp_operator(w)
        return cg(lambda v: hvp(v) + mu * v, rhs, rtol=p.cg_rtol, maxiter=p.cg_maxiter)[0]
    H = shard.local_hessian(w)
    H[np.diag_indices_from(H)] += mu
    return solve_spd(H, rhs)


@worker_task("dane.subproblem")
def _subproblem(ctx, w_t, g):
    """n_k w_k: machine k's inexact solution of its DANE local problem."""
    shard, p = ctx.shard, ctx.params
    linear = shard.local_grad(w_t) - p.eta * g       # the local problem's linear term
    w = np.array(w_t)
    for _ in local_range(p.local_steps):             # a stop signal ends the phase early
        rhs = shard.local_grad(w) - linear + p.mu * (w - w_t)
        w = w - damped_newton_step(shard, w, rhs, p.mu, p)
    return shard.n * w


@worker_task("dane.two_points")
def _two_points(ctx, w, anchor):
    """f_k and grad f_k sums at w and at the midpoint (anchor + w)/2: [f, g, f_mid, g_mid]."""
    f, g = ctx.shard.loss_grad_sum(w)
    f_mid, g_mid = ctx.shard.loss_grad_sum(0.5 * (anchor + w))
    return np.concatenate(([f], g, [f_mid], g_mid))


def unit_or_half(rt, prob, w, anchor):
    """(point, f, grad f) at the lower of w and (anchor + w)/2 (the midpoint when its f
    is lower by more than rounding, :data:`.primitives.F_NOISE`, or the only finite
    one: inf - inf is nan, and no comparison with it holds).  1 round: 2d floats
    down, 2d + 2 up per worker (the gradient round, evaluated at two points)."""
    d = prob.d
    out = rt.round("dane.two_points", w, anchor, up=2 * d + 2)
    points = (w, 0.5 * (anchor + w))
    f = [P.global_value(out[i * (d + 1)], prob.n, prob.penalty, x) for i, x in enumerate(points)]
    finite = np.isfinite(f)             # the midpoint when lower beyond rounding, or alone finite
    i = int(finite[1] and (not finite[0] or f[1] < f[0] - P.F_NOISE * abs(f[0])))
    g = P.regularise(out[i * (d + 1) + 1:(i + 1) * (d + 1)], prob.n, prob.penalty, points[i])
    return points[i], f[i], g


class DANE(Algorithm):
    """DANE: averaged inexact solutions of gradient-corrected local problems (Shamir et al. 2014)."""

    multinomial = True            # model.multiclass: multinomial (the shard interface only)
    name = "dane"
    local_solves = True
    #: not squared_hinge: with no line search, DANE's full steps on the piecewise
    #: quadratic loss cycle (measured: 300 rows x 15, lambda 1e-2, ||grad|| stays at
    #: 0.37 after 250 iterations; logistic converges in 25)
    losses = ("logistic", "ridge")
    presets = PRESETS
    #: the point the last local problems started from (None before the first): the
    #: anchor of the next iteration's midpoint with ``step_rule: unit_or_half``
    anchor = None
    params = {
        "eta": Param(FLOAT, 1.0, "eta: weight of the global gradient in the local problem",
                     check=positive),
        "mu": Param(FLOAT, 0.0, "mu: proximal weight (mu/2)||w - w_t||^2 of the local problem",
                    check=nonneg),
        "local_steps": Param(INT, 1, "Newton steps on the local problem per iteration",
                             check=at_least(1)),
        "local_solver": Param(STR, "auto", "local Newton systems: cholesky, cg "
                              "(Hessian-free) or auto (cg when d > cg_threshold)",
                              choices=("auto", "cg", "cholesky")),
        "cg_threshold": Param(INT, 4000, "d above which local_solver auto uses CG",
                              check=at_least(1)),
        "cg_rtol": Param(FLOAT, 1e-10, "local CG stops at ||r|| <= cg_rtol ||rhs||",
                         check=positive),
        "cg_maxiter": Param(INT, 200, "local CG iteration cap", check=at_least(1)),
        "step_rule": Param(STR, "unit_or_half", "unit: w_{t+1} is the average of the local "
                           "solutions (the paper); unit_or_half: the next gradient round also "
                           "evaluates the midpoint (w_t + w_{t+1})/2 and the iteration goes on "
                           "from the lower of the two (no extra round, twice that round's "
                           "floats; damps the overshoot along rare features)",
                           choices=("unit", "unit_or_half")),
        "preset": preset_param(PRESETS),
    }

    @classmethod
    def dense_path(cls, params, d):
        """Cholesky local solves form d x d matrices."""
        p = SimpleNamespace(solver=params.get("local_solver", "auto"),
                            cg_threshold=params.get("cg_threshold", 4000))
        if not use_cg(p, d):
            return "algorithm.local_solver", "use local_solver: cg (or auto)"
        return None

    def step(self):
        """Round 1: g at w_t (with ``unit_or_half``, w_t is the lower of the last average
        and the midpoint to its anchor); round 2: the averaged local solutions.
        ``step_size``: 1, or 1/2 when the midpoint was taken."""
        prob, w, step = self.prob, self.w, 1.0
        if self.p.step_rule == "unit_or_half" and self.anchor is not None:
            w, _, g = unit_or_half(self.rt, prob, w, self.anchor)                # round 1
            step = 1.0 if w is self.w else 0.5
        else:
            _, g = P.loss_grad(self.rt, prob, w)                                 # round 1
        self.anchor = w
        self.w = self.rt.round("dane.subproblem", w, g, up=prob.d) / prob.n     # round 2
        return {"step_size": step}
