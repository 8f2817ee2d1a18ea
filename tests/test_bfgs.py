"""``lbfgs`` with ``hessian: full`` and ``line_search: backtracking`` (the LocalNewton
paper's BFGS baseline), in process on the sim backend, against an independent numpy
BFGS loop (dense inverse update, Armijo halving) and scikit-learn's optimum."""

import numpy as np
from sklearn.linear_model import LogisticRegression

from distnewton.algorithms.lbfgs import LBFGS

from support.inprocess import setup
from support.references import logistic_gradient as grad, logistic_objective as value, synthetic


def numpy_bfgs(X, y, lam, iters, c1=1e-4):
    """Textbook BFGS (Nocedal & Wright Alg. 6.1 with H_0 = (s.y/y.y) I, eq. 6.20) and
    Armijo backtracking from 1 (min(1, 1/||g||) on the first step).
    Returns [(rounds so far, trials, w)]."""
    d = X.shape[1]
    w, H, rounds, out = np.zeros(d), None, 1, []
    f, g = value(X, y, w, lam), grad(X, y, w, lam)
    for _ in range(iters):
        p = -g if H is None else -H @ g
        a = 1.0 if H is not None else min(1.0, 1.0 / np.linalg.norm(g))
        for trials in range(1, 21):
            rounds += 1
            f_new = value(X, y, w + a * p, lam)
            if f_new <= f + c1 * a * (p @ g):
                break
            a /= 2
        s = a * p
        g_new = grad(X, y, w + s, lam)
        yv = g_new - g
        if s @ yv > 1e-10 * np.linalg.norm(s) * np.linalg.norm(yv):
            if H is None:
                H = (s @ yv) / (yv @ yv) * np.eye(d)
            rho = 1.0 / (s @ yv)
            V = np.eye(d) - rho * np.outer(yv, s)
            H = V.T @ H @ V + rho * np.outer(s, s)
        w, f, g = w + s, f_new, g_new
        out.append((rounds, trials, w))
    return out


def test_full_bfgs_with_backtracking_is_the_numpy_bfgs_and_reaches_sklearn():
    X, y = synthetic(n=600, d=12, seed=7)
    X = X * 30.0                                     # steep enough that unit steps fail
    n = X.shape[0]
    alg, rt = setup(LBFGS, X, y, K=3, hessian="full", line_search="backtracking")
    ref = numpy_bfgs(X.toarray(), y, 1.0 / n, 20)    # 20: still far above rounding
    trials = []
    for rounds, t, w in ref:
        info = alg.step()
        trials.append(info["ls_trials"])
        assert info["ls_trials"] == t and rt.algo.rounds == rounds
        np.testing.assert_allclose(alg.w, w, rtol=0, atol=1e-9 * np.abs(w).max())
    assert max(trials) > 1                           # backtracking happened
    while not alg.stalled and rt.algo.rounds < 200:
        alg.step()
    sk = LogisticRegression(C=1.0, fit_intercept=False, solver="newton-cholesky",
                            tol=1e-12).fit(X, y).coef_.ravel()
    f_sk = value(X.toarray(), y, sk, 1.0 / n)
    # measured: within rounding of f* (the line search then finds no decrease and stalls)
    assert value(X.toarray(), y, alg.w, 1.0 / n) - f_sk <= 1e-12 * f_sk
