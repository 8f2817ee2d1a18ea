"""The L2-loss SVM (``model.loss: squared_hinge``) against LIBLINEAR ``-s 2``.

For each set, lambda = 1/n (LIBLINEAR's and LinearSVC's C = 1, no bias): the reference
optimum f* is LIBLINEAR's own ``-s 2 -e 1e-10`` (liblinear-official, in this process),
else scikit-learn's ``LinearSVC(dual=False, tol=1e-12)`` (the same TRON), whichever is
lower when both are there; the table says which.  Then distnewton's methods that take
the loss, K workers on the sim backend, each to relative suboptimality 1e-6 or
``--max-rounds``: the communication rounds and MB (up + down) to the targets of
``_claims.TARGETS`` (1e-3, 1e-4, 1e-6), the final relative suboptimality and the
hold-out accuracy (the .t file when there is one) beside LIBLINEAR's.

The rounds are distnewton's exact count (``comm_rounds``); LIBLINEAR runs on one
machine and has no rounds: its row gives its seconds and accuracy only.

Run: ``python benchmarks/svm_bench.py [--workers 4] [--data-dir DIR] [--sets a9a,w8a]
[--max-rounds 500] [--smoke]``
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
#: set name -> (train file, test file or None, features)
SETS = {"a9a": ("a9a.bz2", "a9a.t.bz2", 123), "w8a": ("w8a.bz2", "w8a.t.bz2", 300),
        "ijcnn1": ("ijcnn1.bz2", "ijcnn1.t.bz2", 22)}
#: (row label, algorithm keys): distnewton's defaults, and newton's trust region
METHODS = [("newton", {"name": "newton"}), ("newton (tron)", {"name": "newton", "solver": "tron"}),
           ("giant", {"name": "giant"}), ("fednl", {"name": "fednl"}),
           ("adaptive_localnewton", {"name": "adaptive_localnewton"}),
           ("lbfgs", {"name": "lbfgs"})]


def objective(X, y, w, lam):
    """(1/n) sum_j max(0, 1 - y_j x_j.w)^2 + (lam/2)||w||^2."""
    r = np.maximum(1.0 - y * (X @ w), 0.0)
    return float(r @ r / len(y) + 0.5 * lam * w @ w)


def int32(X):
    """CSR with 32-bit indices (LIBLINEAR's bindings take no others)."""
    X = sp.csr_matrix(X)
    return sp.csr_matrix((X.data, X.indices.astype(np.int32), X.indptr.astype(np.int32)),
                         shape=X.shape)


def references(X, y, lam):
    """[(name, w, f, seconds)] of LIBLINEAR -s 2 (when installed) and LinearSVC."""
    out = []
    C = 1.0 / (lam * X.shape[0])
    try:
        from liblinear.liblinearutil import parameter, problem, train
    except ImportError:
        train = None
        print("(LIBLINEAR row left out: pip install liblinear-official)")
    if train is not None:
        prob = problem(list(y), int32(X))
        t0 = time.perf_counter()
        m = train(prob, parameter(f"-s 2 -c {C!r} -e 1e-10 -B -1 -q"))
        secs = time.perf_counter() - t0
        w = np.array([m.w[i] for i in range(X.shape[1])]) * (1 if m.get_labels()[0] == 1 else -1)
        out.append(("LIBLINEAR -s 2 -e 1e-10", w, objective(X, y, w, lam), secs))
    from sklearn.svm import LinearSVC
    t0 = time.perf_counter()
    est = LinearSVC(loss="squared_hinge", dual=False, C=C, fit_intercept=False, tol=1e-12,
                    max_iter=100000).fit(int32(X), y)
    secs = time.perf_counter() - t0
    w = est.coef_.ravel() * (1 if est.classes_[1] == 1 else -1)
    out.append(("LinearSVC(dual=False, tol=1e-12)", w, objective(X, y, w, lam), secs))
    return out


def run(X, y, keys, f_star, workers, max_rounds):
    """One distnewton run to 1e-6 relative suboptimality: the Result."""
    import distnewton
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return distnewton.solve({"model": {"loss": "squared_hinge", "lambda": "1/n"},
                                 "algorithm": keys,
                                 "run": {"grad_rtol": None, "target_subopt": min(TARGETS),
                                         "f_star": f_star, "max_rounds": max_rounds}},
                                data=(X, y), workers=workers)


def to_target(hist, f_star, target):
    """(rounds, MB) at the first row within ``target`` of f*, or None."""
    rel = (hist["loss"] - f_star) / abs(f_star)
    hit = np.nonzero(rel <= target)[0]
    if not hit.size:
        return None
    i = int(hit[0])
    return int(hist["comm_rounds"][i]), (hist["bytes_up"][i] + hist["bytes_down"][i]) / 1e6


def accuracy(w, test):
    if test is None:
        return "-"
    Xt, yt = test
    return f"{np.mean(np.where(Xt @ w > 0, 1.0, -1.0) == yt):.4f}"


def bench(name, X, y, test, args):
    lam = 1.0 / X.shape[0]
    refs = references(X, y, lam)
    best = min(refs, key=lambda r: r[2])
    f_star = best[2]
    print(f"\n## {name}: {X.shape[0]} x {X.shape[1]}, lambda = 1/n (C = 1), K = {args.workers}"
          f" (sim); f* = {f_star:.15g} ({best[0]})\n")
    rows = [[r[0], "-", "-", "-", f"{(r[2] - f_star) / abs(f_star):.1e}", f"{r[3]:.2f}",
             accuracy(r[1], test)] for r in refs]
    for label, keys in METHODS:
        res = run(X, y, keys, f_star, args.workers, args.max_rounds)
        hist = res.history
        cells = []
        for t in TARGETS:
            got = to_target(hist, f_star, t)
            cells.append("not reached" if got is None else f"{got[0]} ({got[1]:.2f} MB)")
        rel = (objective(X, y, res.w, lam) - f_star) / abs(f_star)
        rows.append([f"distnewton {label}", *cells, f"{rel:.1e}",
                     f"{hist['wall_time'][-1]:.2f}", accuracy(res.w, test)])
    table(["method", *(f"rounds to {t:g}" for t in TARGETS), "final rel. subopt",
           "seconds", "test accuracy"], rows)


def smoke_set():
    rng = np.random.default_rng(0)
    X = sp.random(500, 20, density=0.4, random_state=0, format="csr")
    t = X @ rng.standard_normal(20) + 0.3 * rng.standard_normal(500)
    return X, np.where(t > 0, 1.0, -1.0)


def main(argv=None):
    args = set_bench_args(__doc__, SETS, DATA, argv)
    print("# The L2-loss SVM (squared_hinge) against LIBLINEAR -s 2")
    if args.smoke:
        X, y = smoke_set()
        args.max_rounds = min(args.max_rounds, 60)
        bench("synthetic 400 + 100 held out", X[:400], y[:400], (X[400:], y[400:]), args)
        return
    from sklearn.datasets import load_svmlight_file
    for name in args.sets.split(","):
        train, test, d = SETS[name]
        X, y = load_svmlight_file(os.path.join(args.data_dir, train), n_features=d)
        held = None
        if test and os.path.exists(os.path.join(args.data_dir, test)):
            held = load_svmlight_file(os.path.join(args.data_dir, test), n_features=d)
        bench(name, X.tocsr(), y, held, args)


if __name__ == "__main__":
    main()
