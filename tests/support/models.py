"""The trained-model tests' helpers: synthetic rows whose labels are not -1/+1,
``distnewton`` invoked in this process (click's runner), and rows in LIBLINEAR's
format."""

import numpy as np
from click.testing import CliRunner

from distnewton.cli import main
from distnewton.data import write_libsvm

D = 6


def labelled(path, n=400, d=D, labels=(3, 7), seed=0, shift=0.5, loss="logistic"):
    """Dense synthetic rows; logistic labels are ``labels`` (not -1/+1), so that
    predictions must go back through the stored label map."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    m = X @ np.random.default_rng(100).standard_normal(d) + shift     # one true model
    if loss == "ridge":
        y = m + 0.3 * rng.standard_normal(n)
    else:
        y = np.where(m + 0.7 * rng.standard_normal(n) > 0, labels[1], labels[0])
    write_libsvm(path, X, y)
    return X, y


def invoke(*args):
    res = CliRunner().invoke(main, [str(a) for a in args])
    return res


def liblinear_rows(X):
    """Rows of X as LIBLINEAR's sparse dicts (1-based)."""
    import scipy.sparse as sp
    X = sp.csr_matrix(X)
    return [{int(j) + 1: float(v) for j, v in zip(X.indices[a:b], X.data[a:b])}
            for a, b in zip(X.indptr[:-1], X.indptr[1:])]
