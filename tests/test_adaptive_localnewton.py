"""Adaptive LocalNewton's control-flow options (issue 18), in process on the sim backend,
against an independent numpy loop of the paper's Algorithm 2 (dense numpy on the
full data: local Newton steps by np.linalg.solve, the local and the distributed
Armijo backtracking written out, GIANT's averaged local directions)."""

import numpy as np
import pytest

from distnewton.algorithms.localnewton import AdaptiveLocalNewton

from distnewton.params import with_preset

from support.giant_reference import backtrack, giant_step, hess, shards, step_along
from support.inprocess import setup
from support.references import logistic_gradient as grad, logistic_objective as value, synthetic


def numpy_algorithm2(X, y, K, lam, rounds, L0=3, delta=1e-3, beta=0.1, relative=True,
                     extra_round=True, restart="newest"):
    """Algorithm 2 as the paper writes it (extra_round: f(w_bar_t) before the next round,
    one more round; else the loss of the model sent comes back with the next round).
    Returns [(rounds so far, L used or 0, w)] after every iteration."""
    n, d = X.shape
    parts = shards(X, y, K)
    f = lambda w: value(X, y, w, lam)                          # noqa: E731
    w, L, f_prev, giant, used, out = np.zeros(d), L0, None, False, 0, []
    best = (np.inf, None)
    while used < rounds:
        if giant:
            w, _, r = giant_step(X, y, parts, w, lam, beta)
            used += r
            out.append((used, 0, w))
            continue
        sent, models = w, []
        for Xk, Yk in parts:
            wk = sent.copy()
            fk = lambda v: value(Xk, Yk, v, lam)               # noqa: E731,B023
            for _ in range(L):
                gk = grad(Xk, Yk, wk, lam)
                pk = np.linalg.solve(hess(Xk, Yk, wk, lam), gk)
                wk = wk - backtrack(fk, wk, pk, gk, beta)[0] * pk
            models.append(len(Yk) / n * wk)
        w, used, L_used = sum(models), used + 1, L
        if best[0] > f(sent):
            best = (f(sent), sent)
        if extra_round:
            f_prev = f(sent) if f_prev is None else f_prev
            f_new, used = f(w), used + 1
            best = (f_new, w) if f_new < best[0] else best
        elif f_prev is None:
            f_prev, f_new = f(sent), None
        else:
            f_new = f(sent)
        if f_new is not None:
            thr = delta * abs(f_prev) if relative else delta
            if f_prev - f_new < thr:
                if L > 1:
                    L -= 1
                else:
                    giant = True
                    if restart == "best" and extra_round:
                        w = best[1]
            f_prev = f_new
        out.append((used, L_used, w))
    return out


@pytest.mark.parametrize("opts", [
    {"loss_eval": "round", "delta_mode": "relative", "delta": 1e-3, "restart": "newest"},
    {"loss_eval": "round", "delta_mode": "relative", "delta": 1e-3, "restart": "best"},
    {"loss_eval": "riding", "delta_mode": "relative", "delta": 1e-3, "restart": "newest"},
    {"loss_eval": "round", "delta_mode": "absolute", "delta": 1e-4, "restart": "newest"},
    {"preset": "paper"},
])
def test_adaptive_localnewton_follows_a_numpy_algorithm_2(opts):
    """Same iterates (to 1e-12), L, phases and rounds as the numpy loop, through every
    switch (3 -> 2 -> 1 -> GIANT) on a 6-worker logistic problem; ``preset: paper``
    is Algorithm 2 as written (loss each round, delta absolute, GIANT from the newest
    model with the averaged local directions)."""
    X, y = synthetic(n=600, d=20, seed=1)
    keys = with_preset({"solver": "cholesky", "direction": "local", "beta": 0.1, "L0": 3,
                        **opts}, AdaptiveLocalNewton.presets)
    alg, rt = setup(AdaptiveLocalNewton, X, y, K=6, **keys)
    p = alg.p
    if opts.get("preset") == "paper":
        assert (p.loss_eval, p.restart, p.delta_mode, p.direction) == (
            "round", "newest", "absolute", "local")
    kw = dict(beta=p.beta, L0=p.L0, delta=p.delta, relative=p.delta_mode == "relative",
              extra_round=p.loss_eval == "round")
    ref = numpy_algorithm2(X.toarray(), y, 6, 1.0 / 600, 40, restart=p.restart, **kw)
    phases = step_along(alg, rt, ref, "L")
    assert phases[0] == 3 and 2 in phases and 1 in phases and phases[-1] == 0, phases
    if p.restart == "best":     # here the best w_bar is not the newest at the switch
        other = numpy_algorithm2(X.toarray(), y, 6, 1.0 / 600, 40, restart="newest", **kw)
        assert max(np.abs(a[2] - b[2]).max() for a, b in zip(ref, other)) > 1e-2


def test_preset_paper_through_the_config_is_algorithm_2_as_written():
    """``algorithm.preset: paper`` in a config: Algorithm 2's keys, a key beside it wins."""
    from distnewton.config import resolve
    raw = {"data": {"train": "x.svm"},
           "algorithm": {"name": "adaptive_localnewton", "preset": "paper", "delta": 1e-5}}
    alg = resolve(raw)["algorithm"]
    assert (alg["loss_eval"], alg["restart"], alg["delta_mode"], alg["L0"],
            alg["direction"]) == ("round", "newest", "absolute", 3, "local")
    assert alg["delta"] == 1e-5 and alg["beta"] == 0.1
