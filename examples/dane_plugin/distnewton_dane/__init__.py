"""DANE: Distributed Approximate NEwton (Shamir, Srebro & Zhang, ICML 2014), inexact
local solves by CG, as a distnewton plugin.

Notation (the paper's): K machines, machine k holds the local objective
f_k(w) = (1/n_k) sum_{j in k} l(x_j.w, y_j) + (lambda/2)||w||^2, and
f(w) = sum_k (n_k/n) f_k(w).  ``eta`` > 0 scales the global gradient, ``mu`` >= 0
is the proximal weight.  Iteration t (w_t on the master), two rounds:

1. g = grad f(w_t)                                      [round 1: d down, d + 1 up]
2. machine k solves its local problem
       w_k = argmin_w  f_k(w) - (grad f_k(w_t) - eta g).w + (mu/2)||w - w_t||^2
   inexactly: ``local_steps`` Newton steps from w_t, each solving
       (Hess f_k(w) + mu I) p = grad f_k(w) - grad f_k(w_t) + eta g + mu (w - w_t)
   by CG (Hessian-free, to relative residual ``cg_rtol``, at most ``cg_maxiter``
   iterations) or by Cholesky (``local_solver: cholesky``), w <- w - p;
   the master averages  w_{t+1} = sum_k (n_k/n) w_k
   (the paper's plain mean for equal shards)            [round 2: 2d down, d up]

There is no line search: DANE as published.  The first local Newton step from
w_t solves (Hess f_k(w_t) + mu I) p = eta g, so with one step and mu = 0 an
iteration equals GIANT's averaged local direction with a unit step.  For
quadratic losses (ridge) the local problem is solved exactly by one step, and
the paper's analysis gives linear convergence with eta = 1 and mu >= 0; mu > 0
damps the local steps when the local Hessians differ much from the global one
(few rows per machine).

Written only against :mod:`distnewton.plugin`; installed with the entry point
``distnewton.algorithms: dane_plugin = distnewton_dane:DANE`` (pyproject.toml), so
``algorithm: {name: dane_plugin}`` works once the package is installed.  DANE is
built into distnewton too (``algorithm: {name: dane}``, the same keys); an
algorithm name is defined once, so this example registers its own name.
"""

import numpy as np

from distnewton.plugin import (FLOAT, INT, STR, Algorithm, Param, at_least, cg,
                               local_range, loss_grad, nonneg, positive, solve_spd,
                               worker_task)

__version__ = "0.1.0"


@worker_task("dane.local")
def local_solve(ctx, w_t, g):
    """n_k w_k, the machine's inexact solution of its DANE subproblem (see module)."""
    shard, p = ctx.shard, ctx.params
    a = shard.local_grad(w_t) - p.eta * g          # the subproblem's linear term
    w = np.array(w_t)
    for _ in local_range(p.local_steps):           # a stop signal ends the phase early
        rhs = shard.local_grad(w) - a + p.mu * (w - w_t)
        if p.local_solver == "cholesky":
            H = shard.local_hessian(w)
            H[np.diag_indices_from(H)] += p.mu
            step = solve_spd(H, rhs)
        else:
            hvp = shard.local_hvp_operator(w)
            step, _ = cg(lambda v: hvp(v) + p.mu * v, rhs, rtol=p.cg_rtol,
                         maxiter=p.cg_maxiter)
        w = w - step
    return shard.n * w


class DANE(Algorithm):
    """DANE with inexact local solves (see the module docstring)."""

    name = "dane_plugin"       # distnewton's built-in DANE owns "dane"
    local_solves = True
    params = {
        "eta": Param(FLOAT, 1.0, "eta: weight of the global gradient in the local problem",
                     check=positive),
        "mu": Param(FLOAT, 0.0, "mu: proximal weight (mu/2)||w - w_t||^2 of the local problem",
                    check=nonneg),
        "local_steps": Param(INT, 1, "Newton steps on the local problem per iteration",
                             check=at_least(1)),
        "local_solver": Param(STR, "cg", "local Newton systems: cg (Hessian-free) or cholesky",
                              choices=("cg", "cholesky")),
        "cg_rtol": Param(FLOAT, 1e-10, "local CG stops at ||r|| <= cg_rtol ||rhs||",
                         check=positive),
        "cg_maxiter": Param(INT, 200, "local CG iteration cap", check=at_least(1)),
    }

    def step(self):
        prob, w = self.prob, self.w
        _, g = loss_grad(self.rt, prob, w)                                   # round 1
        self.w = self.rt.round("dane.local", w, g, up=prob.d) / prob.n      # round 2
        return {"step_size": 1.0}
