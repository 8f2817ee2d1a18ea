"""Adaptive LocalNewton (Gupta et al., UAI 2021), Algorithm 2.

Runs LocalNewton rounds (see :mod:`.localnewton`) starting with L = ``L0``
local iterations per round, and adapts L from the global loss at the averaged
models: when a round fails to decrease f(w_bar) by at least ``delta`` f_prev
(``delta_mode: relative``, the default; ``absolute``: by ``delta``), L
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

With ``restart: newest`` GIANT starts from the newest w_bar whatever its f
(Algorithm 2 as written).

Loss at w_bar (``loss_eval: riding``, the default): the workers compute their
local loss sums at the w_bar they receive and send them *with* their new local
models, so f(w_bar_r) reaches the master one round late and costs no extra
round: after round r the master knows f(w_bar_{r-1}) (the model it sent in
round r) and compares it with f(w_bar_{r-2}); a decrement of L takes effect
from round r + 1.  ``loss_eval: round`` is Algorithm 2's order: after every
average one more round (w_bar down, one float up per worker) brings f(w_bar_t),
and the decision is taken before the next round is sent (f(w_bar_0) rides on
the first round); GIANT then starts from the newest or the best model with no
check round.

Defaults (chosen with ``benchmarks/paper_localnewton.py --tables variants``: K = 100
simulated workers, lambda = 1/n, rounds to relative suboptimality 1e-3): the Armijo
constant ``beta`` 0.1 of the local and GIANT line searches (1e-4: a9a 34 rounds
instead of 15, w8a 136 instead of 105), ``delta_mode: relative`` with ``delta``
1e-3 (independent of the loss's scale; absolute 1e-4: w8a 105 rounds, the same
elsewhere), ``loss_eval: riding`` (``round`` costs two rounds per average: 28, 12
and 129 rounds against 15, 6 and 105 on a9a, ijcnn1 and w8a), ``restart: best``
(newest: 14, 6, 110).

``preset: paper`` is Algorithm 2 as the paper writes it: L0 3 (the paper starts from
L = 3), ``loss_eval: round`` (f(w_bar_t) before the next round), ``restart: newest``
(GIANT continues from the newest w_bar), ``delta_mode: absolute`` (f_prev - f(w_bar_t)
< delta), ``alpha_max`` 1 (the paper's alpha* = 1 in its experiments, footnote 6) and
``direction: local`` (GIANT's averaged local Newton directions).  The paper gives no
value for delta nor for the Armijo constant (only 0 < beta <= 1/2): the preset takes
delta = 1e-4 (distnewton's absolute default before issue 18) and keeps ``beta`` at
ours, 0.1 (inside the range 0.01-0.3 of Boyd and Vandenberghe, whose backtracking the
paper cites); ``benchmarks/paper_localnewton_claims.py`` shows beta 1e-4 beside it.

History columns: ``L`` (local iterations in this iteration's round; 0 in the
GIANT phase), ``phase`` (``localnewton`` or ``giant``), so plots can mark
the switches, and ``cg_iterations`` (global CG iterations of a GIANT-phase
iteration with the fallback, else 0).

References
----------
.. [1] V. Gupta, A. Ghosh, M. Derezinski, R. Khanna, K. Ramchandran, M. W. Mahoney,
   "LocalNewton: Reducing communication rounds for distributed learning", UAI 2021.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ...params import FLOAT, INT, STR, Param, at_least, nonneg, preset_param
from .. import primitives as P
from ..base import LINE_SEARCH, LS_PICK, LS_STEPS_APPROX, Algorithm
from ..giant import DIRECTION, GIANT
from .localnewton import LOCAL_PARAMS, local_round


#: ``preset: paper``: Algorithm 2 as the paper writes it (see the module docstring)
PRESETS = {"paper": {"L0": 3, "loss_eval": "round", "restart": "newest",
                     "delta_mode": "absolute", "delta": 1e-4, "alpha_max": 1.0,
                     "direction": "local"}}


class AdaptiveLocalNewton(Algorithm):
    multinomial = True            # model.multiclass: multinomial (the shard interface only)
    name = "adaptive_localnewton"
    #: not poisson: its LocalNewton phase averages local models with no line search
    #: (:class:`~.localnewton.LocalNewton`); the default losses only
    local_solves = True
    presets = PRESETS
    params = {
        "L0": Param(INT, 3, "initial local iterations per round", check=at_least(1)),
        "delta": Param(FLOAT, 1e-3, "minimum decrease of f(w_bar) per round before L "
                       "decreases (then GIANT after L = 1); a fraction of f_prev with "
                       "delta_mode: relative", check=nonneg),
        "delta_mode": Param(STR, "relative", "absolute: f_prev - f(w_bar) < delta; relative: "
                            "f_prev - f(w_bar) < delta * f_prev", choices=("absolute", "relative")),
        "loss_eval": Param(STR, "riding", "riding: f(w_bar) comes back with the next round's "
                           "local models (no extra round, the decision one round late); round: "
                           "Algorithm 2's order, one reduce of one float after every average, "
                           "the decision before the next round is sent",
                           choices=("riding", "round")),
        "restart": Param(STR, "best", "the model GIANT starts from: best (the lowest f(w_bar) "
                         "known, or the newest if no worse) or newest (the paper)",
                         choices=("best", "newest")),
        **{k: v for k, v in LOCAL_PARAMS.items() if k != "L"},
        "beta": replace(LINE_SEARCH["beta"], default=0.1, doc=(
            "Armijo constant of the local and the GIANT-phase line searches: "
            "f(w - a p) <= f(w) - beta a p.g (0.1: the fewest rounds of "
            "benchmarks/paper_localnewton.py's variants)")),
        "ls_steps": LS_STEPS_APPROX,
        "ls_pick": replace(LS_PICK, doc=LS_PICK.doc + " (the local and the GIANT-phase "
                           "line searches; first here keeps benchmarks/paper_localnewton.py's "
                           "measured variants)"),
        **DIRECTION,
        "preset": preset_param(PRESETS),
    }
    columns = {"L": np.int64, "phase": np.dtype("S12"), "cg_iterations": np.int64}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.L, self.f_prev, self.giant = self.p.L0, None, None
        self.best = None         # (f, model): the lowest f(w_bar) known so far

    def step(self):
        if self.giant is not None:
            fg = None
            if self.best is not None:     # riding: the newest w_bar or the best known
                fg = P.loss_grad_hold(self.rt, self.prob, self.giant.w)[:2]   # workers hold w
                if fg[0] > self.best[0]:
                    self.giant.w, fg = self.best[1], None
                self.best = None
            info = self.giant.step(fg)
            self.w, self.stalled = self.giant.w, self.giant.stalled
            return {**info, "L": 0, "phase": b"giant"}
        L, sent = self.L, self.w
        f_sent, self.w = local_round(self.rt, self.prob, sent, L)     # f_sent = f(model sent)
        self._note(f_sent, sent)
        if self.p.loss_eval == "round":            # Algorithm 2: f(w_bar_t) now, 1 round
            if self.f_prev is None:
                self.f_prev = f_sent               # f(w_bar_0), riding on the first round
            f_new = P.loss(self.rt, self.prob, self.w)
            self._note(f_new, self.w)
            if self._adapt(f_new):
                if self.p.restart == "best":
                    self.w = self.best[1]
                self.best = None                   # both losses known: no check round
                self._start_giant(self.w)
        elif self.f_prev is None:
            self.f_prev = f_sent
        elif self._adapt(f_sent):                  # riding: judged one round late
            if self.p.restart == "newest":
                self.best = None
            self._start_giant(self.w)
        return {"iterations": L, "L": L, "phase": b"localnewton"}

    def _note(self, f, w):
        if self.best is None or f < self.best[0]:
            self.best = (f, w)

    def _adapt(self, f_new):
        """Algorithm 2, lines 6-15: when f_prev - f(w_bar) < delta, L decreases by one, or
        after L = 1 the method switches to GIANT (returns True); f_prev = f(w_bar)."""
        delta = self.p.delta * abs(self.f_prev) if self.p.delta_mode == "relative" \
            else self.p.delta
        switch = self.f_prev - f_new < delta and self.L == 1
        if self.f_prev - f_new < delta and self.L > 1:
            self.L -= 1
        self.f_prev = f_new
        return switch

    def _start_giant(self, w):
        giant_params = {k: getattr(self.p, k) for k in GIANT.params if k != "preset"}
        self.giant = GIANT(self.rt, self.prob, giant_params, w, seed=self.seed)
