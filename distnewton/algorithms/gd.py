"""Distributed gradient descent.

Fixed step (``step_size`` given): each iteration the workers reduce the
gradient g = grad f(w_t) [1 round: d down, d + 1 up] and the master sets
w_{t+1} = w_t - step_size g.  This is the baseline that IST (identity sketch)
and Local SGD (one local full-batch step) reduce to.

Armijo backtracking (default): every round evaluates f *and* grad f at one
trial point w - alpha g, so an accepted trial already brings the next
iteration's gradient.  The first trial of iteration t is
alpha = min(alpha_max, growth * alpha_{t-1}) if iteration t-1 accepted its
first trial, else alpha_{t-1} (alpha0 at t = 0), halved until
f(w - alpha g) <= f(w) - beta alpha ||g||^2.  Growing the step lets it track
1/L; an iteration costs 1 round when the first trial is accepted, plus one
per halving (and 1 round once, to start, for f and g at w_0).
"""

from __future__ import annotations

from ..errors import UserError
from ..params import FLOAT, INT, Param, at_least, in_open_closed, step, trials
from . import primitives as P
from .base import GUARDED_LOSSES, Algorithm


class GD(Algorithm):
    multinomial = True            # model.multiclass: multinomial (the shard interface only)
    name = "gd"
    losses = GUARDED_LOSSES       # each step passes a line search (poisson too)
    #: why its defaults miss 1e-6 in 500 rounds (benchmarks/defaults_check.py)
    convergence_note = (
        "first-order: its linear rate is set by the condition number, ~n at lambda = 1/n: "
        "1e-6 in 229 rounds on ijcnn1 (d = 22), but 2e-5 to 3e-3 after 500 rounds on a9a, "
        "w8a and phishing")
    params = {
        "step_size": Param(FLOAT, None, "fixed step size (none: Armijo backtracking)",
                           check=step, nullable=True),
        "beta": Param(FLOAT, 1e-4, "Armijo constant: f(w - a g) <= f(w) - beta a ||g||^2",
                      check=in_open_closed(0.0, 0.5)),
        "alpha0": Param(FLOAT, 1.0, "first trial step size", check=step),
        "alpha_max": Param(FLOAT, 1e6, "largest step size tried (at most 1e12)", check=step),
        "growth": Param(FLOAT, 2.0, "first trial = growth * previous step", check=at_least(1.0)),
        "max_backtracks": Param(INT, 50, "halvings before giving up", check=trials),
    }

    @classmethod
    def validate(cls, params, problem, seed=0):
        """A fixed ``step_size`` has no line search to stop Poisson's exp(x.w) from
        overflowing (no step size is safe for an unbounded l''): refused for poisson."""
        super().validate(params, problem, seed)
        if params.get("step_size") is not None and problem.loss == "poisson":
            raise UserError("algorithm.step_size: a fixed step has no line search, and loss "
                            "poisson's curvature exp(x.w) is unbounded: leave it unset")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.f = self.g = None
        self.alpha, self.grow = self.p.alpha0, False

    def step(self):
        rt, prob, p = self.rt, self.prob, self.p
        if p.step_size is not None:
            _, g = P.loss_grad(rt, prob, self.w)                      # 1 round
            self.w = self.w - p.step_size * g
            return {"step_size": p.step_size}
        if self.g is None:
            self.f, self.g = P.loss_grad(rt, prob, self.w)           # once, to start
        gg = float(self.g @ self.g)
        alpha = min(p.alpha_max, p.growth * self.alpha) if self.grow else self.alpha
        for trial in range(p.max_backtracks):
            w_try = self.w - alpha * self.g
            f_try, g_try = P.loss_grad(rt, prob, w_try)               # 1 round per trial
            if f_try <= self.f - p.beta * alpha * gg:
                self.w, self.f, self.g, self.alpha = w_try, f_try, g_try, alpha
                self.grow = trial == 0
                return {"step_size": alpha}
            alpha *= 0.5
        self.stalled = P.NO_DECREASE
        return {"step_size": 0.0}
