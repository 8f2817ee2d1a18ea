"""One algorithm on a9a (lambda = 1/n, sim backend) and its gap to scikit-learn's optimum."""

import distnewton

from .launch import SHARED
from .references import a9a_reference, logistic_objective


def a9a_relative_gap(algorithm, workers=4, **run):
    """(result, (f - f*)/f*) of ``algorithm`` (a config section) on a9a, f* scikit-learn's."""
    X, y, lam, _, f_ref = a9a_reference()
    cfg = {"data": {"train": str(SHARED / "a9a.bz2")},
           "model": {"loss": "logistic", "lambda": "1/n"},
           "algorithm": algorithm, "run": {"grad_rtol": 1e-10, **run}}
    r = distnewton.solve(cfg, workers=workers)
    return r, (logistic_objective(X, y, r.w, lam) - f_ref) / f_ref
