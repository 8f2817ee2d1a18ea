"""GIANT (Wang, Roosta, Xu, Mahoney, NeurIPS 2018) written out in dense numpy, from
the paper, as the independent reference of distnewton's ``giant`` and of the GIANT
phase of ``adaptive_localnewton``.

One iteration at w (the paper's three communication rounds):

1. g = grad f(w), the global gradient (round 1);
2. every worker solves its local Newton system H_k p_k = g with its own Hessian
   H_k = Hess f_k(w) (here ``np.linalg.solve``); the master averages,
   p = sum_k (n_k/n) p_k (the paper's mean for equal shards) (round 2);
3. distributed Armijo backtracking over the fixed trial steps alpha_max 2^-j:
   the largest with f(w - a p) <= f(w) - beta a p.g (round 3: ``ls_steps`` trial
   steps are evaluated per round, so a search that tries more costs more rounds);
   the paper's rule, ``pick="first"``.  ``pick="best"`` (distnewton's default
   ``ls_pick``) takes, of the first round's worth of ``ls_steps`` trials with one
   that passes, the passing trial of least f, a smaller step replacing a larger
   one only when its f is lower by more than ``NOISE`` |f(w)| (rounding);
4. w <- w - a p.

Nothing here imports distnewton: the objective and its gradient are the ones of
:mod:`support.references`, the shards contiguous ``np.array_split`` blocks (as
:func:`support.inprocess.setup` builds them).
"""

import math

import numpy as np

from support.references import logistic_gradient as grad, logistic_objective as value, synthetic


#: relative differences of f below this are rounding (64 machine epsilons)
NOISE = 64 * np.finfo(float).eps


def hess(X, y, w, lam):
    """Hess f(w) of the mean logistic loss + (lam/2)||w||^2, dense."""
    q = 1.0 / (1.0 + np.exp(-y * (X @ w)))
    return X.T @ (X * (q * (1 - q))[:, None]) / len(y) + lam * np.eye(X.shape[1])


def backtrack(fun, w, p, g, beta, tries=30, alpha_max=1.0, ls_steps=10, pick="first"):
    """Armijo backtracking along -p over alpha_max 2^-j, j < tries, ``ls_steps``
    trials a round: (alpha, trials made); alpha 0 when none passes."""
    f0, slope = fun(w), p @ g
    for start in range(0, tries, ls_steps):
        batch = [alpha_max * 0.5 ** j for j in range(start, min(start + ls_steps, tries))]
        passing = [(a, fun(w - a * p)) for a in batch if fun(w - a * p) <= f0 - beta * a * slope]
        if passing:
            chosen = passing[0]
            for a, v in passing[1:] if pick == "best" else ():
                if v < chosen[1] - NOISE * abs(f0):      # lower beyond rounding
                    chosen = (a, v)
            return chosen[0], start + len(batch)
    return 0.0, tries


def shards(X, y, K):
    """K contiguous row blocks [(X_k, y_k)]."""
    return [(X[p], y[p]) for p in np.array_split(np.arange(X.shape[0]), K)]


def giant_step(X, y, parts, w, lam, beta, ls_steps=10, tries=30, alpha_max=1.0, pick="first"):
    """One GIANT iteration from w: (new w, alpha, communication rounds used)."""
    n = X.shape[0]
    g = grad(X, y, w, lam)
    p = sum(len(yk) / n * np.linalg.solve(hess(Xk, yk, w, lam), g) for Xk, yk in parts)
    alpha, trials = backtrack(lambda v: value(X, y, v, lam), w, p, g, beta, tries, alpha_max,
                              ls_steps, pick)
    return w - alpha * p, alpha, 2 + math.ceil(trials / ls_steps)


def numpy_giant(X, y, K, lam, iterations, beta=1e-4, ls_steps=10, tries=30, alpha_max=1.0,
                w0=None, pick="first"):
    """GIANT with K workers from w0 (default 0): [(rounds so far, alpha, w)] after
    every iteration; ``pick``: the line search's rule (``first``: the paper)."""
    parts = shards(X, y, K)
    w = np.zeros(X.shape[1]) if w0 is None else np.array(w0, dtype=float)
    used, out = 0, []
    for _ in range(iterations):
        w, alpha, rounds = giant_step(X, y, parts, w, lam, beta, ls_steps, tries, alpha_max,
                                      pick)
        used += rounds
        out.append((used, alpha, w))
    return out


def rare_feature_problem():
    """The 400 x 12 problem with a 13th feature set in 6 rows, all in shard 0 of 4:
    the other shards' Hessians are lambda along it, so the averaged local inverse
    Hessians overshoot it about twice (w8a's rare features, benchmarks/results/
    defaults_check.md) and the unit step, which passes Armijo, barely contracts it."""
    X, y = synthetic(n=400, d=12, seed=3)
    rare = np.zeros((400, 1))
    rare[[3, 17, 40, 66, 81, 95], 0] = 1.0
    return np.hstack([X.toarray(), rare]), y


def step_along(alg, rt, ref, key, rtol=1e-12):
    """Step distnewton's ``alg`` (on the sim runtime ``rt``) once per row of a numpy
    reference [(rounds so far, value, w)]: the history value ``info[key]`` and the
    rounds must be equal, w equal to ``rtol`` of its largest entry.  Returns the values."""
    values = []
    for used, expected, w in ref:
        info = alg.step()
        values.append(info[key])
        assert info[key] == expected and rt.algo.rounds == used, (values, used)
        np.testing.assert_allclose(alg.w, w, rtol=0, atol=rtol * max(1.0, np.abs(w).max()))
    return values
