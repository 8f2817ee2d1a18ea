"""OWL-QN: orthant-wise limited-memory quasi-Newton for L1 and elastic-net objectives
(Andrew and Gao, ICML 2007; Spark ML's solver for ``elasticNetParam`` > 0).

Minimises F(w) = f(w) + lambda_1 ||w||_1 (f: the loss and the L2 term, as every
other method; the L1 term and the pseudo-gradient pg are :mod:`distnewton.l1`'s).
The workers only ever evaluate f and grad f; the master keeps L-BFGS's memory of
the *smooth* pairs s_i = w_{i+1} - w_i, y_i = g_{i+1} - g_i.  Iteration t:

1. pg = pseudo-gradient at w (the least-norm subgradient of F);
2. direction d = -H pg by the two-loop recursion (:func:`.lbfgs.two_loop`), then
   constrained to descend along -pg: d_i = 0 where d_i pg_i >= 0;
3. the orthant xi_i = sign(w_i), or sign(-pg_i) where w_i = 0;
   (2 and 3 only on the coordinates the L1 term weighs: a free intercept, or every
   coordinate when lambda_1 = 0, is left free, and OWL-QN is then L-BFGS with
   backtracking);
4. backtracking a = a_1 2^-j on the projected point w(a) = pi(w + a d; xi) (a
   coordinate that would change sign becomes 0) until
       F(w(a)) <= F(w) + c1 pg.(w(a) - w)
   (first trial a_1 = 1, and min(1, 1/||pg||) on the first iteration);
5. w <- w(a); the pair (s, y) enters the memory unless s.y <= 1e-10 ||s|| ||y||.

Rounds: one ``loss_grad`` round per trial (f and grad f at the trial point, d floats
down and d + 1 up per worker); the accepted trial's gradient starts the next
iteration, so an iteration costs its trials, plus one round once, at the start.
The history's ``nnz`` column counts the non-zero weights after each iteration.

Reference: G. Andrew, J. Gao, "Scalable training of L1-regularized log-linear
models", ICML 2007, Algorithm 1.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from .. import l1 as L1
from ..params import FLOAT, INT, Param, at_least
from . import primitives as P
from .base import GUARDED_LOSSES, Algorithm
from .lbfgs import CURVATURE_EPS, LBFGS, two_loop


class OWLQN(Algorithm):
    multinomial = True            # model.multiclass: multinomial (the shard interface only)
    name = "owlqn"
    losses = GUARDED_LOSSES       # each step passes a line search (poisson too)
    takes_l1 = True
    params = {
        "m": LBFGS.params["m"],
        "c1": Param(FLOAT, 1e-4, "sufficient decrease: F(w(a)) <= F(w) + c1 pg.(w(a) - w), "
                    "c1 in (0, 0.5)", check=LBFGS.params["c1"].check),
        "max_ls": Param(INT, 30, "trial step sizes (rounds) per line search before giving up",
                        check=at_least(1)),
    }
    columns = {"ls_trials": np.int64, "nnz": np.int64}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.f = self.g = None
        self.memory = deque(maxlen=self.p.m)

    def direction(self, pg, penalised):
        """-H pg, with every L1-penalised coordinate that does not descend along -pg
        zeroed (the others, a free intercept, keep L-BFGS's direction)."""
        d = -two_loop(pg, self.memory)
        d = np.where((d * pg < 0) | ~penalised, d, 0.0)
        if not float(d @ pg) < 0:                       # H lost definiteness: restart
            self.memory.clear()
            d = -pg
        return d

    def step(self):
        rt, prob, p = self.rt, self.prob, self.p
        if self.g is None:
            self.f, self.g = P.loss_grad(rt, prob, self.w)          # once, to start
        l1 = prob.l1_weights
        w, f, g = self.w, self.f, self.g
        F = f + L1.value(l1, w)
        pg = L1.pseudo_gradient(l1, w, g)
        if not pg.any():
            self.stalled = "the pseudo-gradient is exactly zero (w is a minimiser)"
            return {"step_size": 0.0, "ls_trials": 0, "nnz": int(np.count_nonzero(w))}
        penalised = np.broadcast_to(np.asarray(l1) > 0, w.shape)
        d, xi = self.direction(pg, penalised), L1.orthant(w, pg, l1)
        a = 1.0 if self.memory else min(1.0, 1.0 / float(np.linalg.norm(pg)))
        for trial in range(1, p.max_ls + 1):                         # 1 round per trial
            w_new = L1.project(w + a * d, xi)
            f_new, g_new = P.loss_grad(rt, prob, w_new)
            if f_new + L1.value(l1, w_new) <= F + p.c1 * float(pg @ (w_new - w)):
                break
            a *= 0.5
        else:
            self.stalled = (f"line search found no decrease in {p.max_ls} trials "
                            "(at machine precision?)")
            return {"step_size": 0.0, "ls_trials": p.max_ls, "nnz": int(np.count_nonzero(w))}
        s, y = w_new - w, g_new - g
        sy = float(s @ y)
        if sy > CURVATURE_EPS * float(np.linalg.norm(s) * np.linalg.norm(y)):
            self.memory.append((s, y, 1.0 / sy))
        self.w, self.f, self.g = w_new, f_new, g_new
        return {"step_size": a, "ls_trials": trial, "nnz": int(np.count_nonzero(w_new))}
