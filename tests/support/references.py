"""Independent references, computed in this process with numpy and scikit-learn, and
the synthetic problems they are computed on.

The logistic objective and its gradient written out, a LIBSVM file's optimum by
scikit-learn (and a9a's, once per session), IST's ridge analysis (L_i, b_i, x*) by
numpy; stand-ins of the real sets' shapes and scales (``german_like``, ``a9a_like``,
written as LIBSVM files) and a small sparse logistic problem held in memory
(``synthetic``).
"""

import functools

import numpy as np
import scipy.sparse as sp

from support.launch import SHARED


def logistic_objective(X, y, w, lam):
    """mean_j log(1 + exp(-y_j x_j.w)) + (lam/2) ||w||^2."""
    return float(np.mean(np.logaddexp(0.0, -y * (X @ w))) + 0.5 * lam * w @ w)


def logistic_gradient(X, y, w, lam):
    """The gradient of :func:`logistic_objective` in w."""
    s = -y / (1.0 + np.exp(y * (X @ w)))
    return X.T @ s / len(y) + lam * w


def logistic_reference(path, n_features=None, lam=None):
    """A LIBSVM file's logistic problem and its independent optimum: (X, y, lam, w*, f*).

    scikit-learn minimises C sum_j l_j + ||w||^2/2, the same minimiser as
    f(w) = mean_j l_j + (lambda/2)||w||^2 when C = 1/(lambda n); lambda = 1/n
    unless given.  Newton-Cholesky at tol 1e-12 gives f* to ~1e-15 relative.
    """
    from sklearn.datasets import load_svmlight_file
    from sklearn.linear_model import LogisticRegression
    X, y = load_svmlight_file(str(path), n_features=n_features, zero_based=False)
    lam = 1.0 / X.shape[0] if lam is None else lam
    ref = LogisticRegression(C=1.0 / (lam * X.shape[0]), fit_intercept=False,
                             solver="newton-cholesky", tol=1e-12, max_iter=200).fit(X, y)
    w_ref = ref.coef_.ravel()
    return X, y, lam, w_ref, logistic_objective(X, y, w_ref, lam)


@functools.lru_cache(maxsize=None)
def a9a_reference():
    """a9a (lambda = 1/n) and its reference optimum, once per test session."""
    return logistic_reference(SHARED / "a9a.bz2", n_features=123)


def ist_quadratic(X, y, parts, lam):
    """The analysis' L_i, b_i (F_i = (K n_i/N) f_i) and x* = L^{-1} b, by numpy."""
    Xd, N, K = X.toarray(), X.shape[0], len(parts)
    d = Xd.shape[1]
    Ls = [(K / N) * (Xd[p].T @ Xd[p] + len(p) * lam * np.eye(d)) for p in parts]
    bs = [(K / N) * Xd[p].T @ y[p] for p in parts]
    x_star = np.linalg.solve(Xd.T @ Xd / N + lam * np.eye(d), Xd.T @ y / N)
    return Ls, bs, x_star


def synthetic(n=600, d=8, seed=0):
    """Sparse logistic data with a known-ish signal, y in {-1, +1}."""
    rng = np.random.default_rng(seed)
    X = sp.random(n, d, density=0.5, random_state=seed, format="csr")
    X.data = rng.standard_normal(X.nnz)
    y = np.where(X @ rng.standard_normal(d) + 0.5 * rng.standard_normal(n) > 0, 1.0, -1.0)
    return X, y


def german_like(path, n=1000, d=24, seed=5):
    """A dense stand-in of german.numer_scale's shape and scale: features uniform in
    [-1, 1] (the set is scaled to [-1, 1]), +-1 labels from a logistic model."""
    from distnewton.data import write_libsvm
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1.0, 1.0, (n, d))
    y = np.where(rng.random(n) < 1 / (1 + np.exp(-X @ rng.standard_normal(d))), 1.0, -1.0)
    write_libsvm(path, X, y)
    return path


def a9a_like(path, n=3000, d=123, per_row=14, seed=7, skew=0.0, scale=2.0):
    """A sparse stand-in of a9a's shape and scale: binary features, ``per_row``
    ones per row (a9a has 14 of 123), +-1 labels from a logistic model (margins
    times ``scale``).  ``skew`` > 0 draws feature j with probability ~ j^-skew (the
    real sets' rare features, which make the Hessian ill-conditioned at small
    lambda); 0: uniformly."""
    from distnewton.data import write_libsvm
    rng = np.random.default_rng(seed)
    p = np.arange(1, d + 1) ** -skew if skew else None
    p = p / p.sum() if skew else None
    cols = np.stack([rng.choice(d, per_row, replace=False, p=p) for _ in range(n)])
    X = sp.csr_matrix((np.ones(n * per_row), (np.repeat(np.arange(n), per_row), cols.ravel())),
                      shape=(n, d))
    m = X @ (rng.standard_normal(d) / np.sqrt(per_row)) * scale
    y = np.where(rng.random(n) < 1 / (1 + np.exp(-m)), 1.0, -1.0)
    write_libsvm(path, X, y)
    return path
