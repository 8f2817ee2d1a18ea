"""The shape of a Newton-type method, once: gradient, direction, line search, update.

Every Newton-type method here iterates

    w_{t+1} = w_t - alpha_t p_t,      p_t ~ H_t^{-1} g_t,      g_t ~ grad f(w_t)

and they differ in the curvature H_t they hold and in how they form p_t from it,
i.e. in their direction hook:

* ``newton``: H_t = Hess f(w_t), reduced as a d x d matrix (p: Cholesky on the
  master) or applied in Hessian-vector-product rounds (p: Newton-CG);
* ``giant``, and the GIANT phase of ``adaptive_localnewton``: the workers' local
  Hess f_k(w_t) (p = sum_k (n_k/n) H_k^{-1} g_t), or Newton-CG where the local
  Hessians are rank-deficient;
* ``ranl``: [Hess f(x_0)]_mu, projected and factored once (p = eta [H]_mu^{-1} g_t),
  where g_t is aggregated from masked, possibly stale blocks, so its gradient hook
  and its step-size rule (the safeguards) are its own too.

:meth:`NewtonType.step` is one iteration t, in the papers' order:

1. :meth:`~NewtonType.gradient`: f(w_t), g_t = grad f(w_t) and the curvature the
   direction needs, as :meth:`~NewtonType.curvature` declares it: ``GRADIENT``
   nothing more [1 round: d down, d + 1 up per worker]; ``HESSIAN`` the dense
   Hess f(w_t) [d^2 + d + 1 up]; ``HELD`` the workers keep w_t and their curvature
   weights l''(x_j.w_t) for the Hessian-vector-product rounds of Newton-CG, and
   send diag Hess f(w_t) too with ``cg_precondition: jacobi`` [d + 1 or 2d + 1 up];
2. :meth:`~NewtonType.direction`: p_t, the hook every method defines.
   :meth:`~NewtonType.cg_direction` is the inexact Newton direction, CG on
   Hess f(w_t) p = g_t to the forcing-sequence residual
   max(cg_rtol, min(0.1, sqrt(||g_t|| / ||g_0||))) (one round per CG iteration,
   logged as ``cg_iterations``), with ||g_0|| kept in ``g0_norm``;
3. :meth:`~NewtonType.line_search`: alpha_t, the distributed Armijo backtracking
   f(w_t - a p_t) <= f(w_t) - beta a p_t.g_t over a = alpha_max 2^-j, ``ls_steps``
   trial steps per round [usually 1 round];
4. :meth:`~NewtonType.update`: w_{t+1} = w_t - alpha_t p_t, after
   :meth:`~NewtonType.check`: a line search that found no decrease (alpha_t = 0)
   stalls the run.  Convergence (||grad f|| against ``run.grad_rtol``, targets) is
   the driver's check, on the logged gradient.

The hooks hand each other an :class:`Iterate`, which lives for one iteration.
What a hook keeps across iterations goes on ``self`` and is checkpointed
attribute by attribute (:mod:`distnewton.checkpoint`): keep those names stable.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import primitives as P
from .base import Algorithm

#: what the gradient round brings besides f and g (:meth:`NewtonType.curvature`)
GRADIENT, HESSIAN, HELD = "gradient", "hessian", "held"


@dataclass
class Iterate:
    """What iteration t knows at w_t; never kept past the iteration."""

    w: np.ndarray
    f: float | None = None
    #: g_t; None when the gradient hook rejected w_t (RANL's damping): no step then
    g: np.ndarray | None = None
    H: np.ndarray | None = None           # HESSIAN: Hess f(w_t), dense
    diag: np.ndarray | None = None        # HELD with Jacobi: diag Hess f(w_t)
    #: newton's solver tron: the model's decrease -q_t(s_t) at the step (:mod:`.tron`)
    predicted: float | None = None
    #: this iteration's values of the algorithm's extra history columns
    info: dict = field(default_factory=dict)


class NewtonType(Algorithm):
    """Base of the Newton-type methods: ``step()`` runs the hooks in order."""

    columns = {"cg_iterations": np.int64}
    #: ||g_0|| of the forcing sequence: set (and checkpointed) at the first CG direction
    g0_norm = None

    def step(self, fg=None):
        """One iteration.  ``fg`` = (f(w_t), grad f(w_t)) when the caller has them
        (no gradient round; with ``HELD`` they must come from
        :func:`.primitives.loss_grad_hold` at w_t)."""
        it = self.gradient(fg)                    # 1. f, g (and the curvature)
        if it.g is None:                          #    w_t rejected: no step
            return it.info
        p = self.direction(it)                    # 2. p ~ H^{-1} g
        alpha = self.line_search(it, p)           # 3. step size
        return self.update(it, p, alpha)          # 4. w - alpha p, stall check

    # 1. gradient ---------------------------------------------------------
    def curvature(self):
        """What :meth:`direction` needs from the gradient round: GRADIENT, HESSIAN or HELD."""
        return GRADIENT

    def gradient(self, fg=None):
        """f(w_t), g_t and the declared curvature: 1 round (none when ``fg`` is given)."""
        rt, prob, w = self.rt, self.prob, self.w
        it = Iterate(w, info={"cg_iterations": 0})
        kind = self.curvature()
        if fg is not None:
            it.f, it.g = fg
        elif kind == HESSIAN:
            it.f, it.g, it.H = P.loss_grad_hess(rt, prob, w)
        elif kind == HELD:
            it.f, it.g, it.diag = P.loss_grad_hold(rt, prob, w,
                                                   diag=self.p.cg_precondition == "jacobi")
        else:
            it.f, it.g = P.loss_grad(rt, prob, w)
        return it

    # 2. direction --------------------------------------------------------
    def direction(self, it) -> np.ndarray:
        """p_t from g_t and the curvature held: each method's own."""
        raise NotImplementedError

    def cg_direction(self, it):
        """Inexact Newton-CG on Hess f(w_t) p = g_t (the workers hold w_t): one
        Hessian-vector-product round per CG iteration, to the forcing residual."""
        self.g0_norm = self.g0_norm or float(np.linalg.norm(it.g))
        p, it.info["cg_iterations"] = P.newton_cg_direction(
            self.rt, self.prob, it.w, it.g, self.g0_norm, self.p, it.diag)
        return p

    # 3. line search ------------------------------------------------------
    def line_search(self, it, p):
        """alpha_t: distributed Armijo backtracking along -p (0 if no trial decreases f)."""
        alpha, _ = P.backtracking(self.rt, self.prob, it.w, p, it.f, float(p @ it.g), self.p)
        return alpha

    # 4. update -----------------------------------------------------------
    def check(self, it, alpha):
        """Stall when the line search found no decrease."""
        if alpha == 0.0:
            self.stalled = P.NO_DECREASE

    def update(self, it, p, alpha):
        """w_{t+1} = w_t - alpha_t p_t; returns the iteration's history values."""
        self.check(it, alpha)
        self.w = it.w - alpha * p
        return {"step_size": alpha, **it.info}
