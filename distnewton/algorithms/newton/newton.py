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
Hessian, or the workers holding w for CG); with ``solver: tron`` the hooks
are :mod:`.tron`'s.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ...errors import UserError
from ...linalg import solve_spd
from ..base import LINE_SEARCH, SOLVER, use_cg
from ..newton_type import HELD, HESSIAN, NewtonType
from . import solver_cost, tron


class Newton(NewtonType):
    name = "newton"
    params = {**LINE_SEARCH, **SOLVER, "solver": replace(
        SOLVER["solver"], choices=SOLVER["solver"].choices + ("tron",),
        doc=SOLVER["solver"].doc + "; tron: trust-region Newton-CG (LIBLINEAR's TRON: "
        "Steihaug CG to ||r|| <= cg_rtol ||g||, unset 0.1; no line search)")}
    columns = {**NewtonType.columns, "trust_radius": np.float64}
    #: "cg", "cholesky" or "tron": the solver this run uses (``solver: auto`` decides once)
    solver_used = None
    #: solver tron: f, g at w, the radius Delta and the accepted steps (:mod:`.tron`)
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
        TRON runs unpreconditioned).  TRON needs fewer Hessian-vector rounds than
        the line-search Newton-CG where auto goes Hessian-free (w8a 59 against 66
        to 1e-6, news20 207 against 359; ``benchmarks/results-vs_liblinear.md``)."""
        if self.solver_used is None:
            s = self.p.solver
            if s == "auto":
                free = use_cg(self.p, self.prob.d) or solver_cost.prefer_cg(
                    self.prob, self.rt.round_latency + self.rt.modelled_latency)
                s = ("tron" if self.p.cg_precondition == "none" else "cg") if free else "cholesky"
            self.solver_used = s
        return self.solver_used

    def gradient(self, fg=None):
        """f, g and the curvature (:meth:`.NewtonType.gradient`); on TRON those of the
        last accepted trial point (:func:`.tron.gradient`; ``fg`` unused).  Auto's
        TRON that went to Cholesky (:meth:`direction`) starts with a full round."""
        if self.solver() == "tron" and self.tron_to_direct:
            self.solver_used, fg = "cholesky", None
        if self.solver() == "tron":
            return tron.gradient(self)
        return super().gradient(fg)

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
        if self.solver() == "tron":
            p = tron.direction(self, it)
            self.tron_to_direct = self.dearer_than_direct(it)
            return p
        if it.H is not None:
            return solve_spd(it.H, it.g)
        p = self.cg_direction(it)
        if self.dearer_than_direct(it):
            self.solver_used = "cholesky"
        return p

    def dearer_than_direct(self, it):
        """Under ``auto`` below cg_threshold: did this CG solve need more
        Hessian-vector rounds than a direct iteration costs?  Then the run goes to
        Cholesky from the next iteration (:func:`.solver_cost.break_even_hvps`)."""
        return bool(self.p.solver == "auto" and not use_cg(self.p, self.prob.d)
                    and it.info["cg_iterations"] > solver_cost.break_even_hvps(
                        self.prob, self.rt.round_latency + self.rt.modelled_latency))

    def line_search(self, it, p):
        """Armijo backtracking; with ``solver: tron`` the trust-region test of the
        trial point instead, alpha = 1 (accepted) or 0 (:func:`.tron.trial`)."""
        if self.solver() == "tron":
            return tron.trial(self, it, p)
        return super().line_search(it, p)

    def check(self, it, alpha):
        """A rejected trust-region step is no stall (TRON sets its own stops)."""
        if self.solver() != "tron":
            super().check(it, alpha)
