"""The objective every algorithm reports, with an intercept left out of the penalty
(``model.regularize_intercept: false``, scikit-learn's ``LogisticRegression``), against
scikit-learn's own pieces: ``log_loss`` of the predicted probabilities plus
(lambda/2) ||w||^2 over the features only.

``primitives.loss`` (the one-value round of Adaptive LocalNewton's Algorithm 2 and the
line searches) once added lambda b^2 / 2 for the intercept b (issue 30): its value is
checked here on its own, at a point with a large intercept, where that term is 1.25e-2.
"""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.special import expit
from sklearn.metrics import log_loss

import distnewton
from distnewton.algorithms import ALGORITHMS
from distnewton.algorithms import primitives as P
from distnewton.algorithms.base import Problem
from distnewton.objectives import Shard
from distnewton.runtime.sim import SimRuntime

N, D, LAM, K = 600, 8, 1e-2, 4
BUILT_IN = sorted(name for name in ALGORITHMS if ALGORITHMS.origin(name) == "built-in")


def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(N, D))
    y = np.where(X @ rng.normal(size=D) + 0.7 + rng.normal(size=N) > 0, 1.0, -1.0)
    return X, y


def reference(X, y, w):
    """scikit-learn's mean log-loss at (w_x, b) + (lambda/2) ||w_x||^2 (b unpenalised)."""
    wx, b = w[:-1], w[-1]
    return (log_loss((y > 0).astype(int), expit(X @ wx + b), labels=[0, 1])
            + LAM / 2 * float(wx @ wx))


def test_the_loss_round_leaves_the_intercept_out_of_the_penalty():
    X, y = data()
    Xb = sp.csr_matrix(np.hstack([X, np.ones((N, 1))]))
    parts = np.array_split(np.arange(N), K)
    rt = SimRuntime([Shard(Xb[p], y[p], "logistic", LAM, free_intercept=True) for p in parts],
                    0)
    prob = Problem(n=N, d=D + 1, lam=LAM, loss="logistic",
                   sizes=tuple(len(p) for p in parts), free_intercept=True)
    w = np.r_[np.linspace(-0.3, 0.4, D), 1.58]      # lambda b^2 / 2 = 1.25e-2
    ref = reference(X, y, w)
    assert P.loss(rt, prob, w) == pytest.approx(ref, rel=1e-14)
    assert P.loss_grad(rt, prob, w)[0] == pytest.approx(ref, rel=1e-14)


@pytest.mark.parametrize("name", BUILT_IN)
def test_every_algorithms_reported_loss_is_sklearns_objective(name):
    """The last history row's loss is the objective at the returned model."""
    X, y = data()
    cfg = {"model": {"loss": "logistic", "lambda": LAM, "fit_intercept": True,
                     "regularize_intercept": False},
           "algorithm": {"name": name, **({"regions": 3} if name == "ranl" else {})},
           "run": {"max_rounds": 8}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")            # 8 rounds: max_rounds, on purpose
        res = distnewton.solve(cfg, workers=K, data=(X, y))
    assert len(res.w) == D + 1
    assert res.history["loss"][-1] == pytest.approx(reference(X, y, res.w), rel=1e-13)
