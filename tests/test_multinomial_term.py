"""The free intercept's rank-one term n_k/(4C) u u^T (:mod:`distnewton.softmax`)
must not change any iterate: every method that uses the Hessian (Newton solves,
Jacobi-preconditioned CG, FedNL's learnt Hessians, TRON, DiSCO, GIANT, DANE, the
local Newton methods) gives the
same history when the term's weight is multiplied by 10.  Before the fix the
Jacobi preconditioner's diagonal carried the term (its PCG steps had a component
along u whose size followed the weight) and FedNL's clients learnt the term through
the compressor (top-k spent entries on it, its steps moved along u)."""

import numpy as np
import pytest

import distnewton
from distnewton import softmax

from support.multinomial import four_classes


def histories(monkeypatch, alg, scale):
    """The loss history of a multinomial run with a free intercept, the shards'
    rank-one weight multiplied by ``scale``."""
    init = softmax.SoftmaxShard.__init__

    def scaled(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self._tau *= scale
    monkeypatch.setattr(softmax.SoftmaxShard, "__init__", scaled)
    X, y = four_classes()
    cfg = {"model": {"loss": "logistic", "lambda": 1e-3, "multiclass": "multinomial",
                     "fit_intercept": True, "regularize_intercept": False},
           "algorithm": alg, "run": {"grad_rtol": 1e-10, "max_rounds": 60}}
    res = distnewton.solve(cfg, data=(X, y), workers=3, warn=False)
    monkeypatch.setattr(softmax.SoftmaxShard, "__init__", init)
    return np.asarray(res.history["loss"])


@pytest.mark.parametrize("alg, atol", [
    ({"name": "newton", "solver": "cg", "cg_precondition": "jacobi"}, 1e-8),
    ({"name": "fednl"}, 0.0), ({"name": "fednl", "h0": "zero"}, 0.0),
    ({"name": "fednl", "option": 1}, 0.0), ({"name": "fednl", "participation": 2}, 0.0),
    ({"name": "newton", "solver": "cg"}, 1e-12), ({"name": "newton", "solver": "tron"}, 1e-12),
    ({"name": "disco"}, 1e-12), ({"name": "giant"}, 1e-12), ({"name": "dane"}, 1e-12),
    ({"name": "localnewton"}, 1e-12), ({"name": "adaptive_localnewton"}, 1e-12)])
def test_rank_one_term_changes_no_iterate(monkeypatch, alg, atol):
    a = histories(monkeypatch, alg, 1.0)
    b = histories(monkeypatch, alg, 10.0)
    n = min(len(a), len(b))
    assert n >= 5
    np.testing.assert_allclose(a[:n], b[:n], rtol=0, atol=atol)


def test_jacobi_diagonal_is_uniform_on_the_intercepts():
    """u is an eigenvector of the Jacobi preconditioner (the intercept entries one
    value, their mean over the classes, no term); the other entries are diag(H)."""
    import scipy.sparse as sp
    rng = np.random.default_rng(3)
    n, p, C = 40, 4, 3
    X = sp.hstack([sp.random(n, p - 1, density=0.7, random_state=1), np.ones((n, 1))],
                  format="csr")
    y = rng.integers(0, C, n).astype(float)
    shard = softmax.SoftmaxShard(X, y, C, 0.1, True, weights=rng.uniform(0.5, 2, n))
    w = rng.standard_normal(p * C)
    diag, plain = shard.hess_diag_sum(w), np.diag(shard.plain_hess_sum(w))
    icpt = np.arange(p - 1, p * C, p)
    rest = np.setdiff1d(np.arange(p * C), icpt)
    np.testing.assert_allclose(diag[rest], plain[rest], rtol=1e-12)
    np.testing.assert_allclose(diag[icpt], np.full(C, plain[icpt].mean()), rtol=1e-12)


def test_disco_smoothness_bounds_the_softmax_hessian(monkeypatch):
    """DiSCO's PCG tolerance beta (lambda/L)^(1/2) ||g|| needs L >= the largest
    eigenvalue of f''.  The softmax's per-row curvature diag(p) - p p^T reaches 1/2
    (two classes, p = (1/2, 1/2)), not the binary logistic's 1/4: with identical rows
    at w = 0, lambda_max(f''(0)) = lambda + (1/2) sum ||x_j||^2 / n (numpy below)."""
    from distnewton.algorithms.disco import DiSCO
    seen = []
    tolerance = DiSCO.tolerance

    def record(self, g):
        out = tolerance(self, g)
        seen.append(self.L)
        return out
    monkeypatch.setattr(DiSCO, "tolerance", record)
    n, lam = 40, 1e-3
    X = np.tile([[1.0, 2.0]], (n, 1))
    y = np.arange(n) % 2 + 3.0                     # two classes, alternating
    distnewton.solve({"model": {"lambda": lam, "multiclass": "multinomial"},
                      "algorithm": {"name": "disco"}, "run": {"max_iterations": 1}},
                     data=(X, y), workers=2, warn=False)
    M = np.array([[0.25, -0.25], [-0.25, 0.25]])   # diag(p) - p p^T at p = (1/2, 1/2)
    H = np.kron(M, X.T @ X / n) + lam * np.eye(4)  # class-major: blocks M[c, c'] X^T X / n
    assert seen and seen[0] >= np.linalg.eigvalsh(H).max() * (1 - 1e-12)
