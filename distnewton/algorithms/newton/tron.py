"""Trust-region Newton-CG (TRON): ``newton`` with ``solver: tron``.

Lin & More (1999), as specialised to L2-regularised logistic regression by Lin,
Weng & Keerthi (2008, Algorithms 2 and 3) and implemented in LIBLINEAR's
tron.cpp (before 2.20: no preconditioner).  Names: w_t the iterate, g_t =
grad f(w_t), H_t = Hess f(w_t), Delta_t the trust-region radius, s_t the step,
q_t(s) = g_t.s + s.H_t s / 2 the quadratic model.

    Delta_0 = ||g_0|| / lambda                         [1 round at w_0: f, g]
    iteration t:
      1. s_t ~ argmin q_t(s) over ||s|| <= Delta_t: Steihaug-Toint CG from s = 0
         (:func:`steihaug_cg`), stopped at ||r|| <= xi ||g_t||, r = -g_t - H_t s,
         or where it crosses the boundary (then s lands on it)
                                                       [1 Hessian-vector round / CG iteration]
      2. f(w_t + s_t) and grad f(w_t + s_t)            [1 round]
      3. actred = f(w_t) - f(w_t + s_t),  prered = -q_t(s_t)
         Delta_{t+1} from rho = actred / prered (:func:`radius`)
      4. w_{t+1} = w_t + s_t if actred > eta_0 prered, else w_{t+1} = w_t
         (rejected: the same g_t and a smaller Delta next time)

Delta_0 is LIBLINEAR's ||grad f_L(w_0)||: LIBLINEAR minimises f_L = C sum_j l_j +
||w||^2 / 2 = f / lambda (C = 1 / (lambda n)), whose gradient is g / lambda; the radius
lives in w's space, so it is the same radius (||g_0|| with lambda = 0).  (Before 0.3
Delta_0 was ||g_0||, lambda n times smaller: on a 2,000,000-row set the first six of
thirteen iterations only grew the radius.)

So an iteration costs #CG + 1 rounds (the line-search Newton-CG of
:mod:`.newton`: #CG + 2), and a rejected one is one iteration with step_size 0.
xi = ``cg_rtol`` (unset: LIBLINEAR's 0.1), at most ``cg_maxiter`` CG iterations.

Radius update (tron.cpp): with alpha = max(sigma_1, -g.s / (2 (f(w+s) - f(w) - g.s)))
the minimiser of the quadratic through f(w), g.s and f(w + s) along s (sigma_3 when
that quadratic is not convex), and on the first iteration Delta first cut to ||s||,

    rho < eta_0:          Delta = min(alpha ||s||, sigma_2 Delta)
    eta_0 <= rho < eta_1: Delta = max(sigma_1 Delta, min(alpha ||s||, sigma_2 Delta))
    eta_1 <= rho < eta_2: Delta = max(sigma_1 Delta, min(alpha ||s||, sigma_3 Delta))
    rho >= eta_2:         Delta = max(Delta, min(alpha ||s||, sigma_3 Delta))

eta = (1e-4, 0.25, 0.75), sigma = (0.25, 0.5, 4).  The run stalls, as tron.cpp
stops, when prered <= 0.  Where tron.cpp also stops, both reductions below 1e-12 |f|
(f's rounding then decides rho), this module goes on: it accepts the step when
||grad f(w_t + s_t)|| < ||g_t|| (from the same round; the gradient keeps its
accuracy where f differences are lost), keeping Delta, and stalls only when not.
With xi = 0.1 TRON converges linearly near the optimum, and the tron.cpp stop
left ||g|| at 1e-9..1e-11 ||g_0|| on small synthetic sets (``run.grad_rtol``
goes to 1e-14); the gradient test takes them to 1e-17.

In :class:`~.newton_type.NewtonType`'s shape (w_{t+1} = w_t - alpha_t p_t): the
gradient hook hands over f_t, g_t from the last accepted trial, the direction is
p_t = -s_t, and the step-size rule is the trust-region test, alpha_t = 1 or 0.

The workers keep the point whose curvature the Hessian-vector rounds use, and the
trial point of step 2, in ``ctx.state`` (checkpointed): the round after a trial
says which one goes on (its Hessian-vector product is at w_t + s_t when the step
was accepted, at w_t when not).  The master keeps f_t, g_t, Delta_t and the count
of accepted steps on the :class:`Tron` object (checkpointed too).

References
----------
.. [1] C.-J. Lin, J. J. More, "Newton's method for large bound-constrained
   optimization problems", SIAM Journal on Optimization 9 (1999), 1100-1127.
.. [2] C.-J. Lin, R. C. Weng, S. S. Keerthi, "Trust region Newton method for
   large-scale logistic regression", Journal of Machine Learning Research 9
   (2008), 627-650.
.. [3] T. Steihaug, "The conjugate gradient method and trust regions in large scale
   optimization", SIAM Journal on Numerical Analysis 20 (1983), 626-637.
"""

from __future__ import annotations

import numpy as np

from ...runtime import worker_task
from .. import primitives as P
from ..base import NEWTON_CG_RTOL, SOLVER
from ..newton_type import Iterate, NewtonType

ETA0, ETA1, ETA2 = 1e-4, 0.25, 0.75
SIGMA1, SIGMA2, SIGMA3 = 0.25, 0.5, 4.0
#: reductions below this times |f| are rounding: tron.cpp stops there
TINY = 1e-12


# -- worker side ---------------------------------------------------------------
@worker_task("tron.loss_grad")
def _loss_grad_trial(ctx, x):
    """f and grad f at x; x is kept as the trial point (the next round decides)."""
    ctx.state.setdefault("tron", {})["trial"] = x.copy()
    return P._loss_grad(ctx, x)


@worker_task("tron.hvp")
def _hvp(ctx, v, fingerprint):
    held = ctx.state.get("tron", {})
    trial = held.get("trial")
    if trial is not None and np.array_equal(P._fingerprint(trial), fingerprint):
        held["w"] = held.pop("trial")              # the trial step was accepted
    elif "w" in held and np.array_equal(P._fingerprint(held["w"]), fingerprint):
        held.pop("trial", None)                    # rejected: w stays
    else:
        raise RuntimeError("tron.hvp round at a point the workers do not hold")
    return ctx.shard.hvp_sum(held["w"], v)


# -- the method, on the master -------------------------------------------------
def to_boundary(s, d, delta):
    """tau >= 0 with ||s + tau d|| = Delta (||s|| <= Delta): the positive root,
    in the form without cancellation."""
    sd, ss, dd = float(s @ d), float(s @ s), float(d @ d)
    rad = np.sqrt(sd * sd + dd * (delta * delta - ss))
    return (delta * delta - ss) / (sd + rad) if sd >= 0 else (rad - sd) / dd


def steihaug_cg(hvp, g, delta, xi, maxiter):
    """Steihaug-Toint CG on H s = -g inside ||s|| <= Delta.

    Stops at ||r|| <= xi ||g|| (r = -g - H s), after ``maxiter`` products, or at the
    boundary: where an iterate would leave the region, or along a direction of
    non-positive curvature.  Returns (s, r, products, reached the boundary).
    """
    s, r = np.zeros_like(g), -g
    d, rr, k = r.copy(), float(r @ r), 0
    tol = xi * np.linalg.norm(g)
    while np.sqrt(rr) > tol and k < maxiter:
        Hd = hvp(d)
        k += 1
        dHd = float(d @ Hd)
        alpha = rr / dHd if dHd > 0 else np.inf
        if dHd <= 0 or np.linalg.norm(s + alpha * d) > delta:
            tau = to_boundary(s, d, delta)
            return s + tau * d, r - tau * Hd, k, True
        s, r = s + alpha * d, r - alpha * Hd
        rr, rr_old = float(r @ r), rr
        d = r + (rr / rr_old) * d
    return s, r, k, False


def radius(delta, snorm, gs, f, f_new, prered, first):
    """(Delta_{t+1}, accept): the update rules of the module docstring."""
    actred = f - f_new
    if first:
        delta = min(delta, snorm)
    q = f_new - f - gs
    alpha = SIGMA3 if q <= 0 else max(SIGMA1, -0.5 * gs / q)
    if actred < ETA0 * prered:
        delta = min(alpha * snorm, SIGMA2 * delta)
    elif actred < ETA1 * prered:
        delta = max(SIGMA1 * delta, min(alpha * snorm, SIGMA2 * delta))
    elif actred < ETA2 * prered:
        delta = max(SIGMA1 * delta, min(alpha * snorm, SIGMA3 * delta))
    else:
        delta = max(delta, min(alpha * snorm, SIGMA3 * delta))
    return delta, actred > ETA0 * prered


# -- the method: a Newton-type method whose hooks are the trust region ------------
class Tron(NewtonType):
    """TRON in :class:`~.newton_type.NewtonType`'s shape: p_t = -s_t, alpha_t = 1 or 0.

    ``newton`` steps with one (:attr:`Newton.tron <.newton.Newton.tron>`) while its
    solver is ``tron``; it is not selectable by ``algorithm.name``.  Its state
    across iterations, kept on the object and checkpointed with it: ``f`` and
    ``g`` at w_t (from the last accepted trial), the radius ``delta`` (Delta_t)
    and the count of ``accepted`` steps.
    """

    #: the name a checkpoint stores it by (:meth:`.registry.AlgorithmRegistry.stored`)
    name = "newton.tron"
    params = {k: SOLVER[k] for k in ("cg_rtol", "cg_maxiter")}
    columns = {**NewtonType.columns, "trust_radius": np.float64}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.f = self.g = self.delta = None
        self.accepted = 0

    def gradient(self, fg=None):
        """f_t, g_t: kept from the last accepted trial (no round; ``fg`` unused); at
        w_0 [1 round], with Delta_0 = ||g_0|| / lambda (LIBLINEAR's ||grad f_L||)."""
        if self.g is None:
            self.f, self.g = P.loss_grad(self.rt, self.prob, self.w, task="tron.loss_grad")
            lam = self.prob.lam
            self.delta = float(np.linalg.norm(self.g)) / (lam if lam > 0 else 1.0)
        return Iterate(self.w, f=self.f, g=self.g, info={"cg_iterations": 0})

    def direction(self, it):
        """1. p_t = -s_t by :func:`steihaug_cg` [1 round per CG iteration]; the model's
        decrease prered = -q_t(s_t) goes on the Iterate."""
        rt, prob, p = self.rt, self.prob, self.p
        xi = NEWTON_CG_RTOL if p.cg_rtol is None else p.cg_rtol
        s, r, it.info["cg_iterations"], _ = steihaug_cg(
            lambda v: P.hvp(rt, prob, it.w, v, task="tron.hvp"), it.g, self.delta, xi,
            p.cg_maxiter)
        it.predicted = -0.5 * (float(it.g @ s) - float(s @ r))
        return -s

    def line_search(self, it, p):
        """2.-4. f, g at w_t + s_t [1 round], the new radius, and alpha = 1 (accepted:
        f, g kept for the next iteration) or 0 (rejected); TRON's stops set ``stalled``.
        Below f's rounding (both reductions <= 1e-12 |f|) the gradient decides."""
        s = -p
        f_new, g_new = P.loss_grad(self.rt, self.prob, it.w - p, task="tron.loss_grad")
        if not np.isfinite(f_new):      # overflow (poisson's exp): a rejected step that
            f_new = np.inf              # shrinks the radius (nan would compare as growth)
        gs, prered, actred = float(it.g @ s), it.predicted, it.f - f_new
        if prered <= 0:
            self.stalled, accept = "TRON: predicted reduction <= 0 (at machine precision?)", False
        elif abs(actred) <= TINY * abs(it.f) and prered <= TINY * abs(it.f):
            accept = bool(np.linalg.norm(g_new) < np.linalg.norm(it.g))     # Delta kept
            if not accept:
                self.stalled = ("TRON: reductions below 1e-12 |f| and no smaller gradient "
                                "(machine precision)")
        else:
            self.delta, accept = radius(self.delta, float(np.linalg.norm(s)), gs, it.f, f_new,
                                        prered, self.accepted == 0)
        it.info["trust_radius"] = self.delta
        if accept:
            self.f, self.g, self.accepted = f_new, g_new, self.accepted + 1
        return 1.0 if accept else 0.0

    def check(self, it, alpha):
        """A rejected step (alpha = 0) is no stall: TRON sets its own stops."""
