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

So an iteration costs 2 rounds (Cholesky) or 2 + #CG iterations (CG).
``solver: tron`` replaces steps 2-4 by a trust region (:mod:`.tron`, LIBLINEAR's
TRON): Steihaug CG inside ||s|| <= Delta, one round for f and g at w + s, which
is kept or rejected by the ratio of actual to predicted reduction; #CG + 1
rounds per iteration, the radius in the history column ``trust_radius``.
``solver: auto`` (the default) picks by estimated time (:mod:`.solver_cost`):
forming, reducing and factoring H against about 10 Hessian-vector rounds, and
takes TRON for the Hessian-free side (the line-search CG above when
``cg_precondition: jacobi``); it is decided at the first iteration, and a CG
solve that cost more than a direct iteration would have sends the run to
Cholesky for good (checkpointed).  The
method converges quadratically near the optimum; it is the reference that
computes f* for the other methods.

Steps 1-4 are the hooks of :class:`.newton_type.NewtonType`; this module
defines step 2, the direction, and what it needs from step 1 (the dense
Hessian, or the workers holding w for CG); with ``solver: tron`` a
:class:`.tron.Tron`, a NewtonType whose hooks are the trust region's, takes the step.

References
----------
.. [1] S. C. Eisenstat, H. F. Walker, "Choosing the forcing terms in an inexact
   Newton method", SIAM Journal on Scientific Computing 17 (1996), 16-32.
.. [2] J. Nocedal, S. J. Wright, *Numerical Optimization*, 2nd ed., Springer 2006
   (Chapter 7: inexact Newton-CG).
"""

from __future__ import annotations

from dataclasses import replace

from ...errors import UserError
from ...linalg import solve_spd
from ..base import GUARDED_LOSSES, LINE_SEARCH, SOLVER, use_cg
from ..newton_type import HELD, HESSIAN, NewtonType
from . import solver_cost
from .tron import Tron


class Newton(NewtonType):
    multinomial = True            # model.multiclass: multinomial (the shard interface only)
    name = "newton"
    losses = GUARDED_LOSSES       # each step passes a line search (poisson too)
    params = {**LINE_SEARCH, **SOLVER, "solver": replace(
        SOLVER["solver"], choices=SOLVER["solver"].choices + ("tron",),
        doc=SOLVER["solver"].doc + "; tron: trust-region Newton-CG (LIBLINEAR's TRON: "
        "Steihaug CG to ||r|| <= cg_rtol ||g||, unset 0.1; no line search)")}
    columns = Tron.columns
    #: "cg", "cholesky" or "tron": the solver this run uses (``solver: auto`` decides once)
    solver_used = None
    #: solver tron: the :class:`.tron.Tron` that takes the steps (and keeps f, g, Delta)
    tron = None
    #: auto's TRON: the last CG solve cost more than a direct iteration (go to Cholesky)
    tron_to_direct = False

    @classmethod
    def validate(cls, params, problem, seed=0):
        super().validate(params, problem, seed)
        if params["solver"] == "tron" and params["cg_precondition"] != "none":
            raise UserError("algorithm.cg_precondition: solver tron runs unpreconditioned "
                            "CG (LIBLINEAR's TRON before 2.20); use none")

    def solver(self):
        """The solver this run uses, decided once (at the first iteration, kept in the
        checkpoint): the one asked for, or under ``auto`` Cholesky, or on the
        Hessian-free path (d > cg_threshold, or Newton-CG estimated faster,
        :func:`.solver_cost.prefer_cg`) TRON (CG with ``cg_precondition: jacobi``:
        TRON runs unpreconditioned)."""
        if self.solver_used is None:
            s = self.p.solver
            if s == "auto":
                free = use_cg(self.p, self.prob.d) or solver_cost.prefer_cg(
                    self.prob, self.rt.round_latency + self.rt.modelled_latency)
                s = ("tron" if self.p.cg_precondition == "none" else "cg") if free else "cholesky"
            self.solver_used = s
        return self.solver_used

    def step(self, fg=None):
        """One iteration (:meth:`.NewtonType.step`), or on TRON one of :meth:`trust_region`
        (``fg`` unused).  Auto's TRON that went to Cholesky starts with a full round."""
        if self.solver() == "tron" and self.tron_to_direct:
            self.solver_used, fg = "cholesky", None
        if self.solver() != "tron":
            return super().step(fg)
        tron = self.trust_region()
        info = tron.step()
        self.w, self.stalled = tron.w, tron.stalled
        self.tron_to_direct = self.dearer_than_direct(info["cg_iterations"])
        return info

    def trust_region(self):
        """The :class:`.tron.Tron` at this run's w (made at the first TRON iteration)."""
        if not isinstance(self.tron, Tron):
            state = self.tron       # None, or f, g, delta, accepted as a namespace: the
            self.tron = Tron(       # layout of checkpoints written before Tron was a class
                self.rt, self.prob, {k: getattr(self.p, k) for k in Tron.params}, self.w,
                seed=self.seed)
            if state is not None:
                vars(self.tron).update(vars(state))
        self.tron.w = self.w
        return self.tron

    def hessian_free(self):
        """True on the line-search CG path (:meth:`solver` "cg")."""
        return self.solver() == "cg"

    def curvature(self):
        """Hess f(w) reduced (Cholesky), or held by the workers (CG)."""
        return HELD if self.hessian_free() else HESSIAN

    def direction(self, it):
        """H p = g: LAPACK Cholesky on the master (damped if H is not positive
        definite), or inexact Newton-CG in Hessian-vector-product rounds; under
        ``auto`` a CG solve dearer than a direct iteration switches the run to
        Cholesky from the next iteration (:func:`.solver_cost.break_even_hvps`)."""
        if it.H is not None:
            return solve_spd(it.H, it.g)
        p = self.cg_direction(it)
        if self.dearer_than_direct(it.info["cg_iterations"]):
            self.solver_used = "cholesky"
        return p

    def dearer_than_direct(self, cg_iterations):
        """Under ``auto`` below cg_threshold: did a CG solve of ``cg_iterations``
        Hessian-vector rounds cost more than a direct iteration?  Then the run goes
        to Cholesky from the next iteration (:func:`.solver_cost.break_even_hvps`)."""
        return bool(self.p.solver == "auto" and not use_cg(self.p, self.prob.d)
                    and cg_iterations > solver_cost.break_even_hvps(
                        self.prob, self.rt.round_latency + self.rt.modelled_latency))
