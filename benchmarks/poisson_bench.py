"""Poisson regression (``model.loss: poisson``) against scikit-learn's ``PoissonRegressor``.

There is no count data set in ../shared/data, so each set is a real set's *features*
with counts drawn from a known Poisson model: w_true ~ N(0, s^2 I) (seed 0) with s
chosen so that the margins x.w_true have variance ~0.5 over the rows, and
y_j ~ Poisson(exp(x_j.w_true + 0.5)) (seed 1).  lambda = 1/n, an intercept left out
of the penalty (scikit-learn's convention, ``model.regularize_intercept: false``): the
reference optimum f* is ``PoissonRegressor(alpha=1/n, solver="newton-cholesky",
tol=1e-12)``'s, whose objective is distnewton's up to a constant (the log(y!) term and
the deviance's y log y).  Then each distnewton method that takes the loss, K workers on
the sim backend, to relative suboptimality 1e-6 or ``--max-rounds``: the communication
rounds and MB (up + down) to the targets of ``_claims.TARGETS``, the final relative
suboptimality, the seconds, and the mean Poisson deviance of the fit.

Run: ``python benchmarks/poisson_bench.py [--workers 4] [--data-dir DIR]
[--sets ijcnn1,a9a,w8a] [--max-rounds 500] [--smoke]``
"""

from __future__ import annotations

import os
import sys
import time
import warnings

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _claims import TARGETS  # noqa: E402
from _smoke import REPO, set_bench_args  # noqa: E402
from _tables import markdown_table as table  # noqa: E402

DATA = os.path.join(os.path.dirname(REPO), "shared", "data")
#: set name -> (file, features)
SETS = {"ijcnn1": ("ijcnn1.bz2", 22), "a9a": ("a9a.bz2", 123), "w8a": ("w8a.bz2", 300)}
#: (row label, algorithm keys): every method that takes poisson, at its defaults
METHODS = [("newton", {"name": "newton"}), ("newton (tron)", {"name": "newton", "solver": "tron"}),
           ("giant", {"name": "giant"}), ("fednl", {"name": "fednl"}),
           ("lbfgs", {"name": "lbfgs"}), ("owlqn", {"name": "owlqn"}), ("gd", {"name": "gd"})]
#: the log mean at x.w_true = 0, and the variance of the margins x.w_true
OFFSET, MARGIN_VAR = 0.5, 0.5


def counts(X):
    """Seeded counts of mean exp(x.w_true + OFFSET) (the module docstring's model)."""
    scale = np.sqrt(MARGIN_VAR / max(float(X.multiply(X).sum()) / X.shape[0], 1e-300))
    w_true = np.random.default_rng(0).normal(0.0, scale, X.shape[1])
    z = np.asarray(X @ w_true).ravel() + OFFSET
    return np.random.default_rng(1).poisson(np.exp(z)).astype(np.float64)


def objective(X, y, w, lam):
    """(1/n) sum_j (exp(z_j) - y_j z_j) + (lam/2)||coef||^2, z = X coef + b (w = [coef, b])."""
    z = np.asarray(X @ w[:-1]).ravel() + w[-1]
    return float(np.mean(np.exp(z) - y * z) + 0.5 * lam * w[:-1] @ w[:-1])


def deviance(X, y, w):
    from sklearn.metrics import mean_poisson_deviance
    return mean_poisson_deviance(y, np.exp(np.asarray(X @ w[:-1]).ravel() + w[-1]))


def reference(X, y, lam):
    """(w, f, seconds) of scikit-learn's PoissonRegressor at alpha = lam."""
    from sklearn.linear_model import PoissonRegressor
    t0 = time.perf_counter()
    est = PoissonRegressor(alpha=lam, solver="newton-cholesky", tol=1e-12,
                           max_iter=10000).fit(X, y)
    w = np.append(est.coef_, est.intercept_)
    return w, objective(X, y, w, lam), time.perf_counter() - t0


def run(X, y, keys, f_star, workers, max_rounds):
    """One distnewton run to 1e-6 relative suboptimality: the Result."""
    import distnewton
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return distnewton.solve({"model": {"loss": "poisson", "lambda": "1/n",
                                           "fit_intercept": True,
                                           "regularize_intercept": False},
                                 "algorithm": keys,
                                 "run": {"grad_rtol": None, "target_subopt": min(TARGETS),
                                         "f_star": f_star, "max_rounds": max_rounds}},
                                data=(X, y), workers=workers)


def bench(name, X, y, args):
    from distnewton.io import reaching
    lam = 1.0 / X.shape[0]
    w_ref, f_star, secs = reference(X, y, lam)
    print(f"\n## {name}: {X.shape[0]} x {X.shape[1]} features, seeded counts (mean "
          f"{y.mean():.3g}, max {y.max():.0f}), lambda = 1/n, K = {args.workers} (sim); "
          f"f* = {f_star:.15g} (scikit-learn PoissonRegressor)\n")
    rows = [["scikit-learn PoissonRegressor (newton-cholesky, tol 1e-12)", "-", "-", "-",
             "0", f"{secs:.2f}", f"{deviance(X, y, w_ref):.6g}"]]
    for label, keys in METHODS:
        res = run(X, y, keys, f_star, args.workers, args.max_rounds)
        cells = []
        for t in TARGETS:
            got = reaching(res.history, f_star, t)
            cells.append("not reached" if got is None
                         else f"{got['comm_rounds']} ({got['bytes'] / 1e6:.2f} MB)")
        rel = (objective(X, y, res.w, lam) - f_star) / abs(f_star)
        rows.append([f"distnewton {label}", *cells, f"{rel:.1e}",
                     f"{res.history['wall_time'][-1]:.2f}", f"{deviance(X, y, res.w):.6g}"])
    table(["method", *(f"rounds to {t:g}" for t in TARGETS), "final rel. subopt",
           "seconds", "mean Poisson deviance"], rows)


def main(argv=None):
    args = set_bench_args(__doc__, SETS, DATA, argv)
    print("# Poisson regression (poisson) against scikit-learn's PoissonRegressor")
    if args.smoke:
        X = sp.random(400, 12, density=0.4, random_state=0, format="csr")
        args.max_rounds = min(args.max_rounds, 40)
        bench("synthetic features", X, counts(X), args)
        return
    from sklearn.datasets import load_svmlight_file
    for name in args.sets.split(","):
        path, d = SETS[name]
        X, _ = load_svmlight_file(os.path.join(args.data_dir, path), n_features=d)
        X = X.tocsr()
        bench(name, X, counts(X), args)


if __name__ == "__main__":
    main()
