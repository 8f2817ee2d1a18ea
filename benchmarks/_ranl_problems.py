"""Problems and measurements for benchmarks/paper_ranl.py (imported from the script's
folder): synthetic sets built to test RANL's claims, f* from independent solvers,
and what a history says about a linear rate."""

from __future__ import annotations

import json
import os

import numpy as np
import scipy.sparse as sp
from scipy.special import expit

REGIONS = 10                        # ranl's default: 10 contiguous blocks of coordinates


def one_region_rows(n, d, seed=0, scales=None):
    """Logistic rows that each lie in one region (drawn per row), so no curvature is
    shared between regions and the pruned gradient of a trained region is the full
    one; ``scales[q]`` multiplies region q's features."""
    rng = np.random.default_rng(seed)
    region_of = np.arange(d) * REGIONS // d
    X = rng.standard_normal((n, d)) * (region_of == rng.integers(REGIONS, size=n)[:, None])
    if scales is not None:
        X = X * np.asarray(scales)[region_of]
    y = np.where(rng.random(n) < expit(X @ rng.standard_normal(d)), 1.0, -1.0)
    return sp.csr_matrix(X), y


def conditioned_ridge(n, d, kappa, coupled=True, seed=0):
    """Ridge data with X^T X / n of condition number kappa (eigenvalues 1 .. 1/kappa):
    ``coupled``: a random rotation V, so every row spans every region; otherwise the
    rows lie in one region each and region q has scale kappa^(-q / (2 (Q - 1))), a
    block-diagonal Hessian (pruning exact).  Returns (X, y, f* of lambda 1e-12)."""
    rng = np.random.default_rng(seed)
    if coupled:
        U, _ = np.linalg.qr(rng.standard_normal((n, d)))
        V, _ = np.linalg.qr(rng.standard_normal((d, d)))
        X = np.sqrt(n) * (U * np.logspace(0, -np.log10(kappa) / 2, d)) @ V.T
    else:
        region_of = np.arange(d) * REGIONS // d
        s = np.logspace(0, -np.log10(kappa) / 2, REGIONS)
        X = rng.standard_normal((n, d)) * (region_of == rng.integers(REGIONS, size=n)[:, None])
        X = X * (np.sqrt(REGIONS) * s[region_of])       # E x_j^2 = s_q^2 in region q
    y = X @ rng.standard_normal(d) + 0.1 * rng.standard_normal(n)
    lam = 1e-12
    w = np.linalg.solve(X.T @ X / n + lam * np.eye(d), X.T @ y / n)
    return sp.csr_matrix(X), y, float(0.5 * np.mean((X @ w - y) ** 2) + 0.5 * lam * w @ w)


def logistic_fstar(X, y, lam, cache=None, key=None):
    """f* of mean log(1 + exp(-y x.w)) + lam/2 ||w||^2: scikit-learn newton-cholesky
    (tol 1e-12), cached in the JSON file ``cache`` under ``key``; also the condition
    number of the Hessian there."""
    from sklearn.linear_model import LogisticRegression
    known = json.load(open(cache)) if cache and os.path.exists(cache) else {}
    if key not in known:
        clf = LogisticRegression(C=1.0 / (lam * X.shape[0]), fit_intercept=False,
                                 solver="newton-cholesky", tol=1e-12, max_iter=500).fit(X, y)
        w = clf.coef_.ravel()
        m = X @ w
        D = expit(m) * expit(-m)
        H = np.asarray((X.T @ X.multiply(D[:, None])).todense()) / X.shape[0]
        ev = np.linalg.eigvalsh(H + lam * np.eye(X.shape[1]))
        known[key] = (float(np.mean(np.logaddexp(0.0, -y * m)) + 0.5 * lam * w @ w),
                      float(ev[-1] / ev[0]))
        if cache:
            json.dump(known, open(cache, "w"), indent=1)
    return tuple(known[key])


def decades(sub, rounds):
    """Rounds per decade of relative suboptimality over the run's linear part: the
    running minimum first falls below 10^-e at round r_e, for each decade e from the
    first below sub[1] to the last reached; (r_last - r_first) / (e_last - e_first).
    Returns (rounds per decade or None when fewer than 2 decades, decades descended)."""
    best = np.minimum.accumulate(np.where(np.isfinite(sub), sub, np.inf))
    e0 = int(np.floor(-np.log10(best[1]))) + 1 if best[1] > 0 else 0
    hits = []
    for e in range(e0, 16):
        i = np.flatnonzero(best <= 10.0 ** -e)
        if not i.size:
            break
        hits.append(rounds[i[0]])
    if len(hits) < 3:
        return None, max(len(hits) - 1, 0)
    return (hits[-1] - hits[0]) / (len(hits) - 1), len(hits) - 1
