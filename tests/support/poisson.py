"""Poisson regression references for the tests: the objective written out with numpy,
scikit-learn's ``PoissonRegressor`` optimum, and seeded count data."""

import numpy as np


def poisson_objective(X, y, w, lam, free_intercept=False):
    """f(w) = (1/n) sum_j (exp(x_j.w) - y_j x_j.w) + (lam/2)||w||^2 (the last weight
    left out of the penalty with ``free_intercept``), written out with numpy."""
    z = np.asarray(X @ w).ravel()
    pen = w[:-1] if free_intercept else w
    return float(np.mean(np.exp(z) - y * z) + 0.5 * lam * pen @ pen)


def sklearn_optimum(X, y, lam):
    """scikit-learn's ``PoissonRegressor(alpha=lam)`` (intercept fitted, unpenalised),
    solved to tol 1e-12 with its Newton-Cholesky solver: (coef, intercept) as one
    vector with the intercept last."""
    from sklearn.linear_model import PoissonRegressor
    ref = PoissonRegressor(alpha=lam, tol=1e-12, max_iter=10000,
                           solver="newton-cholesky").fit(X, y)
    return np.append(ref.coef_, ref.intercept_)


def counts(X, w_true, offset=0.0, seed=0):
    """Seeded Poisson counts of mean exp(X w_true + offset)."""
    z = np.asarray(X @ w_true).ravel() + offset
    return np.random.default_rng(seed).poisson(np.exp(z)).astype(np.float64)


def count_problem(n=500, d=6, offset=0.3, scale=0.4, seed=0):
    """Dense Gaussian features and counts of mean exp(x.w + offset): (X, y)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) * scale
    return X, counts(X, rng.standard_normal(d) * 0.5, offset, seed + 1)
