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

No line search: DANE as published.  The first local Newton step from w_t solves
(f_k''(w_t) + mu I) p = eta g, so with one step, eta = 1 and mu = 0 an iteration
is GIANT's averaged local direction with a unit step.  For quadratic losses
(ridge) one step solves the local problem exactly, and the paper's analysis
gives linear convergence with eta = 1, mu >= 0; mu > 0 damps the local steps
where the local Hessians differ much from the global one (few rows per machine).

The plugin guide's example (``examples/dane_plugin``) is the same method written
against :mod:`distnewton.plugin` alone; installed, it registers ``dane_plugin``
(this built-in owns ``dane``) and accepts the same keys.

References
----------
.. [1] O. Shamir, N. Srebro and T. Zhang, "Communication-efficient distributed
   optimization using an approximate Newton-type method", ICML 2014.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from ..linalg import cg, solve_spd
from ..params import FLOAT, INT, STR, Param, at_least, nonneg, positive
from ..runtime import worker_task
from ..stopping import local_range
from . import primitives as P
from .base import Algorithm, use_cg


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


class DANE(Algorithm):
    """DANE: averaged inexact solutions of gradient-corrected local problems (Shamir et al. 2014)."""

    multinomial = True            # model.multiclass: multinomial (the shard interface only)
    name = "dane"
    local_solves = True
    #: not squared_hinge: with no line search, DANE's full steps on the piecewise
    #: quadratic loss cycle (measured: 300 rows x 15, lambda 1e-2, ||grad|| stays at
    #: 0.37 after 250 iterations; logistic converges in 25)
    losses = ("logistic", "ridge")
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
        prob, w = self.prob, self.w
        _, g = P.loss_grad(self.rt, prob, w)                                     # round 1
        self.w = self.rt.round("dane.subproblem", w, g, up=prob.d) / prob.n     # round 2
        return {"step_size": 1.0}
