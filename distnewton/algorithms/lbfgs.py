"""Distributed L-BFGS with a strong Wolfe line search (LocalNewton's BFGS baseline).

Nocedal 1980, Liu & Nocedal 1989; the quasi-Newton baseline of the LocalNewton
paper (Gupta et al. 2021).

The master keeps the memory of the last ``m`` pairs s_i = w_{i+1} - w_i,
y_i = g_{i+1} - g_i; the workers only ever evaluate f and grad f.  Iteration t
(w = w_t, g = grad f(w) already known):

1. direction p = -H g by the two-loop recursion over the memory, with the
   initial matrix H_0 = gamma I, gamma = s.y / y.y of the newest pair
   (p = -g on the first iteration, first trial step min(1, 1/||g||));
2. line search along p for the strong Wolfe conditions
       f(w + a p) <= f(w) + c1 a p.g              (sufficient decrease)
       |p.grad f(w + a p)| <= c2 |p.g|            (curvature)
   by bracketing and zoom (Nocedal & Wright, Alg. 3.5 and 3.6) with safeguarded
   cubic interpolation, first trial a = 1;
3. w_{t+1} = w + a p; the pair (s, y) enters the memory unless
   s.y <= 1e-10 ||s|| ||y|| (curvature safeguard; the oldest pair leaves).

``hessian: full`` keeps the dense d x d inverse BFGS matrix H on the master
instead (Fletcher 2013; the LocalNewton paper's "BFGS" baseline): p = -H g,
H = gamma I (gamma = s.y / y.y) before the first update, then
H <- (I - rho s y^T) H (I - rho y s^T) + rho s s^T with rho = 1/s.y (pairs that
fail the curvature safeguard are skipped).  ``line_search: backtracking`` replaces
the strong Wolfe search by Armijo backtracking, a = a_1 2^-j until
f(w + a p) <= f(w) + c1 a p.g (the paper's "backtracking line-search"), one
``loss_grad`` round per trial.  Neither changes what the workers compute.

Rounds: every trial point costs one ``loss_grad`` round (d floats down,
d + 1 up per worker) returning both f and grad f there, so the accepted trial
brings the next iteration's gradient: an iteration costs ``ls_trials`` rounds
(1 when the unit step is accepted, as it mostly is), plus one round once, to
start, for f and g at w_0.

References
----------
.. [1] J. Nocedal, "Updating quasi-Newton matrices with limited storage",
   Mathematics of Computation 35 (1980), 773-782.
.. [2] D. C. Liu, J. Nocedal, "On the limited memory BFGS method for large scale
   optimization", Mathematical Programming 45 (1989), 503-528.
.. [3] J. Nocedal, S. J. Wright, *Numerical Optimization*, 2nd ed., Springer 2006
   (Algorithms 3.5, 3.6 and 7.4).
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from ..linalg import check_dense_hessian
from ..params import FLOAT, INT, MAX_STEP, STR, Param, at_least, at_most, both
from . import primitives as P
from .base import GUARDED_LOSSES, Algorithm

CURVATURE_EPS = 1e-10


def two_loop(g, memory):
    """H g for the L-BFGS matrix H of ``memory`` = [(s, y, 1/s.y), ...], oldest first."""
    q, alphas = g.copy(), []
    for s, y, rho in reversed(memory):
        a = rho * float(s @ q)
        q -= a * y
        alphas.append(a)
    if memory:
        s, y, _ = memory[-1]
        q *= float(s @ y) / float(y @ y)                     # H_0 = gamma I
    for (s, y, rho), a in zip(memory, reversed(alphas)):
        q += (a - rho * float(y @ q)) * s
    return q


def cubic_min(p, q):
    """Minimiser of the cubic through (a, f, f') at p and q (N&W eq. 3.59),
    or the midpoint when it is undefined or within 10% of an end."""
    (a0, f0, d0), (a1, f1, d1) = (map(float, p[:3])), (map(float, q[:3]))
    lo, hi = min(a0, a1), max(a0, a1)
    try:
        e1 = d0 + d1 - 3.0 * (f0 - f1) / (a0 - a1)
        e2 = math.copysign(math.sqrt(e1 * e1 - d0 * d1), a1 - a0)
        a = a1 - (a1 - a0) * (d1 + e2 - e1) / (d1 - d0 + 2.0 * e2)
        if lo + 0.1 * (hi - lo) <= a <= hi - 0.1 * (hi - lo):   # False for NaN
            return a
    except (ValueError, ZeroDivisionError):                     # no real minimiser
        pass
    return 0.5 * (lo + hi)


def strong_wolfe(phi, f0, d0, a1, c1, c2, a_max, max_trials):
    """Nocedal & Wright Alg. 3.5 (bracketing) and 3.6 (zoom) in one loop.

    ``phi(a) -> (f, f', extra)`` evaluates the line at a (one round here),
    f0 = phi(0), d0 = phi'(0) < 0.  ``lo`` is the best point so far satisfying
    sufficient decrease; ``hi`` (None while bracketing) the other end of an
    interval known to contain a strong Wolfe point.  Returns
    (a, f, extra, trials), with a = None when ``max_trials`` did not suffice.
    """
    lo, hi, a = (0.0, f0, d0, None), None, a1
    for trial in range(1, max_trials + 1):
        f, d, extra = phi(a)
        pt = (a, f, d, extra)
        if not (math.isfinite(f) and math.isfinite(d)) or f > f0 + c1 * a * d0 or f >= lo[1]:
            hi = pt                                          # too far: [lo, a] brackets
        elif abs(d) <= -c2 * d0:
            return a, f, extra, trial                        # strong Wolfe point
        else:
            if (d >= 0.0) if hi is None else (d * (hi[0] - lo[0]) >= 0.0):
                hi = lo                                      # slope turned: zoom back
            lo = pt
        if hi is None:                                       # still descending: extrapolate
            if lo[0] >= a_max:
                break
            a = min(2.0 * lo[0], a_max)
        else:
            a = cubic_min(lo, hi)
            if abs(hi[0] - lo[0]) <= 1e-16 * max(lo[0], hi[0]):
                break                                        # interval at machine precision
    return None, f0, None, trial


def armijo_backtracking(phi, f0, d0, a1, c1, max_trials):
    """a = a1 2^-j, j = 0, 1, ..., until f(a) <= f0 + c1 a d0: (a, f, extra, trials),
    a = None when ``max_trials`` did not suffice.  ``phi`` as in :func:`strong_wolfe`."""
    for trial in range(1, max_trials + 1):
        a = a1 * 0.5 ** (trial - 1)
        f, _, extra = phi(a)
        if math.isfinite(f) and f <= f0 + c1 * a * d0:
            return a, f, extra, trial
    return None, f0, None, max_trials


def bfgs_update(H, s, y, rho):
    """The inverse BFGS update of H (gamma I from the first pair when H is None)."""
    if H is None:
        H = float(s @ y) / float(y @ y) * np.eye(len(s))
    Hy = H @ y
    return (H - rho * (np.outer(s, Hy) + np.outer(Hy, s))
            + (rho * rho * float(y @ Hy) + rho) * np.outer(s, s))


class LBFGS(Algorithm):
    multinomial = True            # model.multiclass: multinomial (the shard interface only)
    name = "lbfgs"
    losses = GUARDED_LOSSES       # each step passes a line search (poisson too)
    params = {
        "m": Param(INT, 10, "L-BFGS memory: (s, y) pairs kept", check=at_least(1)),
        "c1": Param(FLOAT, 1e-4, "sufficient decrease: f(w + a p) <= f(w) + c1 a p.g, "
                    "c1 in (0, 0.5)", check=lambda x: None if 0 < x < 0.5
                    else f"must be in (0, 0.5), got {x}"),
        "c2": Param(FLOAT, 0.9, "curvature: |p.grad f(w + a p)| <= c2 |p.g|, c2 in [0.5, 1)",
                    check=lambda x: None if 0.5 <= x < 1 else f"must be in [0.5, 1), got {x}"),
        "alpha_max": Param(FLOAT, 1e6, "largest step size tried when extrapolating",
                           check=both(at_least(1), at_most(MAX_STEP))),
        "max_ls": Param(INT, 20, "trial points (rounds) per line search before giving up",
                        check=at_least(1)),
        "hessian": Param(STR, "limited", "limited: L-BFGS, m pairs and the two-loop recursion; "
                         "full: BFGS with the dense d x d inverse Hessian approximation on "
                         "the master", choices=("limited", "full")),
        "line_search": Param(STR, "wolfe", "wolfe: strong Wolfe bracketing and zoom; "
                             "backtracking: Armijo (c1) halving from the first trial step",
                             choices=("wolfe", "backtracking")),
    }
    columns = {"ls_trials": np.int64}

    @classmethod
    def dense_path(cls, params, d):
        """``hessian: full`` keeps a dense d x d matrix on the master."""
        if params.get("hessian") == "full":
            return "algorithm.hessian", "use hessian: limited (L-BFGS)"
        return None

    @classmethod
    def validate(cls, params, problem, seed=0):
        """``hessian: full``: refused when its d x d matrix is too big."""
        path = cls.dense_path(params, problem.d)
        if path is not None:
            check_dense_hessian(problem.d, *path)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.f = self.g = None
        self.memory = deque(maxlen=self.p.m)
        self.H = None            # hessian: full: the inverse BFGS matrix (None: not yet)

    def step(self):
        rt, prob, p = self.rt, self.prob, self.p
        if self.g is None:
            self.f, self.g = P.loss_grad(rt, prob, self.w)          # once, to start
        w, f, g = self.w, self.f, self.g
        if not g.any():
            self.stalled = "the gradient is exactly zero"
            return {"step_size": 0.0, "ls_trials": 0}
        full = p.hessian == "full"
        if full:
            d = -g if self.H is None else -(self.H @ g)
        else:
            d = -two_loop(g, self.memory)
        if not d @ g < 0:                                            # lost H's definiteness
            self.memory.clear()
            self.H, d = None, -g
        known = self.H is not None if full else bool(self.memory)
        a1 = 1.0 if known else min(1.0, 1.0 / float(np.linalg.norm(g)))

        def phi(a):                                                  # 1 round per trial
            f_a, g_a = P.loss_grad(rt, prob, w + a * d)
            return f_a, float(g_a @ d), g_a

        if p.line_search == "backtracking":
            a, f_new, g_new, trials = armijo_backtracking(phi, f, float(d @ g), a1, p.c1,
                                                          p.max_ls)
        else:
            a, f_new, g_new, trials = strong_wolfe(phi, f, float(d @ g), a1, p.c1, p.c2,
                                                   p.alpha_max, p.max_ls)
        if a is None:
            kind = "Armijo" if p.line_search == "backtracking" else "strong Wolfe"
            self.stalled = (f"line search found no {kind} point in {trials} trials "
                            "(at machine precision?)")
            return {"step_size": 0.0, "ls_trials": trials}
        s, y = a * d, g_new - g
        sy = float(s @ y)
        if sy > CURVATURE_EPS * float(np.linalg.norm(s) * np.linalg.norm(y)):
            if full:
                self.H = bfgs_update(self.H, s, y, 1.0 / sy)
            else:
                self.memory.append((s, y, 1.0 / sy))
        self.w, self.f, self.g = w + s, f_new, g_new
        return {"step_size": a, "ls_trials": trials}
