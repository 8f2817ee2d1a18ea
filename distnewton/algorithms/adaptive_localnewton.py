"""Adaptive LocalNewton (Gupta et al., UAI 2021), Algorithm 2.

Runs LocalNewton rounds (see :mod:`.localnewton`) starting with L = ``L0``
local iterations per round, and adapts L from the global loss at the averaged
models: when a round fails to decrease f(w_bar) by at least ``delta``, L
decreases by one; when L = 1 and the loss again fails to decrease by delta,
the method switches to GIANT (3 rounds per iteration; 2 + CG iterations with
its high-dimensional fallback) for the rest of the run,
which converges to the exact optimum instead of LocalNewton's error floor.
The GIANT phase is a :class:`.giant.GIANT` object (``self.giant``, a
:class:`.newton_type.NewtonType`: the same hooks, GIANT's direction).

GIANT starts from the better of the newest w_bar (not evaluated yet when the
switch is decided) and the w_bar with the lowest f the master knows: GIANT's
first round evaluates f and grad f at the newest model anyway, and only if it
is worse does GIANT restart from the best one (one extra round).  In the
paper's regime the newest model is usually the better one (a9a: no change);
with rank-deficient local Hessians (n_k < d, see :mod:`.giant`) the averaged
local models oscillate, e.g. around 2 f* on news20 with 4 workers, and the
GIANT phase (global Newton-CG directions there) then took 662 rounds to 1e-6
from the newest model, 350 from the best one.

Loss at w_bar: the workers compute their local loss sums at the w_bar they
receive and send them *with* their new local models, so f(w_bar_r) reaches the
master one round late and costs no extra round: after round r the master knows
f(w_bar_{r-1}) (the model it sent in round r) and compares it with
f(w_bar_{r-2}); a decrement of L takes effect from round r + 1.

History columns: ``L`` (local iterations in this iteration's round; 0 in the
GIANT phase), ``phase`` (``localnewton`` or ``giant``), so plots can mark
the switches, and ``cg_iterations`` (global CG iterations of a GIANT-phase
iteration with the fallback, else 0).
"""

from __future__ import annotations

import numpy as np

from ..params import FLOAT, INT, Param, at_least, nonneg
from . import primitives as P
from .base import LS_STEPS_APPROX, Algorithm
from .giant import DIRECTION, GIANT
from .localnewton import LOCAL_PARAMS, local_round


class AdaptiveLocalNewton(Algorithm):
    name = "adaptive_localnewton"
    local_solves = True
    params = {
        "L0": Param(INT, 3, "initial local iterations per round", check=at_least(1)),
        "delta": Param(FLOAT, 1e-4, "minimum decrease of f(w_bar) per round before L "
                       "decreases (then GIANT after L = 1)", check=nonneg),
        **{k: v for k, v in LOCAL_PARAMS.items() if k != "L"},
        "ls_steps": LS_STEPS_APPROX,
        **DIRECTION,
    }
    columns = {"L": np.int64, "phase": np.dtype("S12"), "cg_iterations": np.int64}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.L, self.f_prev, self.giant = self.p.L0, None, None
        self.best = None         # (f, model): the lowest f(w_bar) known so far

    def step(self):
        if self.giant is not None:
            fg = None
            if self.best is not None:     # first GIANT step: the newest w_bar or the best known
                fg = P.loss_grad_hold(self.rt, self.prob, self.giant.w)[:2]   # workers hold w
                if fg[0] > self.best[0]:
                    self.giant.w, fg = self.best[1], None
                self.best = None
            info = self.giant.step(fg)
            self.w, self.stalled = self.giant.w, self.giant.stalled
            return {**info, "L": 0, "phase": b"giant"}
        L, sent = self.L, self.w
        f_bar, self.w = local_round(self.rt, self.prob, sent, L)     # f_bar = f(model sent)
        if self.best is None or f_bar < self.best[0]:
            self.best = (f_bar, sent)
        if self.f_prev is not None and self.f_prev - f_bar < self.p.delta:
            if self.L > 1:
                self.L -= 1
            else:
                giant_params = {k: getattr(self.p, k) for k in GIANT.params}
                self.giant = GIANT(self.rt, self.prob, giant_params, self.w, seed=self.seed)
        self.f_prev = f_bar
        return {"iterations": L, "L": L, "phase": b"localnewton"}
