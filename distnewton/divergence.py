"""The divergence guard: when a run that has not blown up to inf/NaN is diverging anyway.

A non-finite loss or gradient is caught by :func:`distnewton.loop.stop_reason`
itself.  :class:`Guard` watches the loss of every iteration (one history row)
and names the rule that fired; the loop then ends the run ``diverged`` and keeps
the best model seen.  Three rules, each with its ``run.*`` key (0 or null: off):

* **rising** (``run.divergence_patience``, 20): the loss grew in that many
  iterations in a row.  Catches a slow monotone blow-up; an oscillating loss
  resets it, so it alone let RANL's paper variant on a9a climb from 0.69 to
  1.7e3 and end ``max_rounds``.
* **far above the start** (``run.divergence_factor``, 10): f > factor * f_ref
  in :data:`FAR_COUNT` (20) of the last :data:`FAR_WINDOW` (25) iterations.
  f_ref is the reference loss, max(f(w0), f(0)): the starting loss, or for a
  warm start near the optimum the loss of the zero model when that is larger
  (a warm start at the optimum has f(w0) ~ f*, and for ridge f* can be ~0: ten
  times that is noise of a stochastic method's first step, not a divergence).
  A descent method never leaves {f <= f(w0)}; a stochastic one overshoots by a
  fraction of it.  Ten times is far outside both: for logistic loss from w0 = 0
  it is 6.9, a mean margin violation of ~7, worse than predicting every label
  wrong with confidence 0.999.  The rule is scale-free (ridge with tiny labels
  too) and off when f_ref <= 0 (a zero loss at w = 0: nothing to compare).
  20 of 25, not one: some runs that converge climb far first.  RANL with
  heterogeneous capacities uniform(0.3, 1) on label-skewed a9a (frozen Hessian,
  no safeguard; tests/test_ranl.py) spends its first 11 iterations at 10 to 690
  f(w0) and 12 of its first 25 above 10 f(w0), then reaches 1e-6 in 206 rounds;
  a safeguard that evaluates a trial point and rejects it (RANL's ``safeguard:
  damping``) logs the trial's loss in one row and the accepted point's in the
  next (at most every other row far above).  A diverging run stays up: RANL's
  paper variant on a9a (and phishing) has windows of 25 iterations all above 10
  f(w0), up to 5900 f(w0) (measured over 300 rounds, the guard off).
* **sustained oscillation** (``run.oscillation_window`` M = 50,
  ``run.oscillation_margin`` r = 1): no new best loss for M iterations, and the
  median of the last M losses above best + r (f_ref - best); with r = 1, above
  f_ref itself: the run spent most of the window worse than where it started,
  all the progress it ever made lost.  A converging run, even a stochastic one
  sitting at its noise floor (Local SGD, RANL with mini-batches, LocalNewton's
  floor), keeps most of its progress, so it ends ``max_rounds`` or ``stalled``,
  never ``diverged``.  r = 1 and not less: IST's preconditioned sketch on
  label-skewed german ridge (configs/ist/german-ridge-precond.yaml) has a floor
  that swings between 0.38 and 0.50 (f(0) = 0.5) after a best of 0.359 at
  iteration 23: its median, 0.43, has lost more than half its progress, yet the
  run is at its floor, not diverging.  RANL's paper variant on one-hot data
  (tests/test_divergence.py) swings between 4 and 50 from f(0) = 0.69.  The
  median, not every loss, so one lucky dip per window does not hide an
  oscillation.

On resume the guard replays the history (:meth:`Guard.replay`): its counters
are those of the uninterrupted run; the model kept on ``diverged`` is then the
best seen since the resume.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

#: defaults of the run.* keys (distnewton.config documents them)
DIVERGENCE_FACTOR = 10.0
OSCILLATION_WINDOW = 50
OSCILLATION_MARGIN = 1.0
#: the far-above rule fires when FAR_COUNT of the last FAR_WINDOW losses are far above
FAR_WINDOW, FAR_COUNT = 25, 20


def reference_loss(f0, f_zero=None):
    """f_ref = max(f(w0), f(0)): f(0) (a warm start's loss at the zero model) only
    when known and finite."""
    if f_zero is None or not math.isfinite(f_zero):
        return float(f0)
    return max(float(f0), float(f_zero))


class Guard:
    """The rules above on the losses of one run, from the starting loss ``f0``.

    ``run``: the run section (``divergence_patience``, ``divergence_factor``,
    ``oscillation_window``, ``oscillation_margin``; missing keys take the
    defaults); ``w``: the starting model (the best so far).  :meth:`see` takes
    each iteration's loss and returns the message of the rule that fired, or "".
    """

    def __init__(self, run, f0, f_zero=None, w=None):
        self.patience = int(run.get("divergence_patience") or 0)
        self.factor = run.get("divergence_factor", DIVERGENCE_FACTOR)
        self.window = int(run.get("oscillation_window", OSCILLATION_WINDOW) or 0)
        self.margin = float(run.get("oscillation_margin", OSCILLATION_MARGIN))
        self.f0, self.f_ref = float(f0), reference_loss(f0, f_zero)
        self.best_f, self.prev = self.f0, self.f0
        self.best_w = None if w is None else np.array(w, copy=True)
        self.kept_f = self.f0                    # the loss of best_w
        self.rising, self.since_best = 0, 0
        self.far = deque(maxlen=FAR_WINDOW)      # 1 for each recent loss far above
        self.recent = deque(maxlen=max(self.window, 1))

    # -- the rules ---------------------------------------------------------------
    def far_above(self, f):
        """The message when f > factor * f_ref in FAR_COUNT of the last
        FAR_WINDOW iterations, else ""."""
        up = bool(self.factor) and self.f_ref > 0 and f > self.factor * self.f_ref
        self.far.append(int(up))
        if not up or sum(self.far) < FAR_COUNT:
            return ""
        start = ("the starting loss" if self.f_ref == self.f0
                 else "the loss of the zero model (above the warm start's)")
        return (f"loss {f:.4g} > run.divergence_factor ({self.factor:g}) x {start} "
                f"{self.f_ref:.4g} in {sum(self.far)} of the last {len(self.far)} "
                "iterations")

    def oscillating(self):
        """The message when the last ``window`` losses brought no new best and
        their median is above best + margin (f_ref - best), else ""."""
        if not self.window or self.since_best < self.window:
            return ""
        level = self.best_f + self.margin * max(self.f_ref - self.best_f, 0.0)
        median = float(np.median(self.recent))
        if not median > level:
            return ""
        return (f"no new best loss in {self.since_best} iterations (run.oscillation_window "
                f"{self.window}) and their median loss {median:.4g} is above best "
                f"{self.best_f:.4g} + run.oscillation_margin ({self.margin:g}) x "
                f"(reference {self.f_ref:.4g} - best): a sustained oscillation")

    # -- one iteration -------------------------------------------------------------
    def see(self, f, w=None):
        """Take the loss of one more iteration (and its model, kept while it is the
        best): the message of the first rule that fires, else ""."""
        f = float(f)
        self.rising = self.rising + 1 if f > self.prev else 0
        self.prev = f
        self.recent.append(f)
        if f < self.best_f:
            self.best_f, self.since_best = f, 0
        else:
            self.since_best += 1
        if w is not None and f < self.kept_f:
            self.kept_f, self.best_w = f, np.array(w, copy=True)
        if not math.isfinite(f):
            return ""                      # stop_reason's own rule names it
        far = self.far_above(f)            # counts on every iteration
        if self.patience and self.rising >= self.patience:
            return f"loss grew for {self.rising} iterations in a row"
        return far or self.oscillating()

    def replay(self, losses):
        """Feed the losses of a resumed history after its first (the counters and
        best loss continue); the model kept is then the one at the resume until a
        later one has a lower loss (the history's models are not in the file)."""
        losses = list(losses)
        for f in losses[1:]:
            self.see(f)
        self.kept_f = float(losses[-1])
        return self
