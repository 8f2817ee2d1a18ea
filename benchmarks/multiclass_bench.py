"""One-vs-rest and multinomial at scale: news20's 20 classes with ``model.multiclass``.

news20 (15,935 x 62,061 term counts, 20 classes of 780-800 rows) is split once
(rows permuted with seed 0): 80% to train, 20% held out.  L2-regularised logistic
regression, lambda = 1/n (C = 1); every class against the rest.

* distnewton ``newton`` (``solver: cg``: the line-search Newton-CG) with ``model.multiclass:
  ovr``, K workers (``--backend sim``, or ``mpi`` with ``--ranks``), to
  ``run.grad_rtol`` (LIBLINEAR's relative gradient rule; default 1e-3);
* LIBLINEAR ``-s 0 -e EPS`` (liblinear-official), its own one-vs-rest, at the
  same relative gradient tolerance.

Printed: per class the rounds, bytes and status of distnewton's run; then per
method the total rounds and bytes, the in-run seconds (distnewton: history
``wall_time``; LIBLINEAR: the train call), the hold-out accuracy, and the share
of hold-out rows where distnewton's and LIBLINEAR's predicted classes agree.

Then the multinomial (softmax) problem on the same split, lambda = 1/n:

* distnewton ``lbfgs`` and ``newton`` (``solver: auto``: d C = 1.24 million
  weights, so Newton-CG) with ``model.multiclass: multinomial`` to the same
  ``run.grad_rtol`` (``--multinomial-algorithms``);
* scikit-learn ``LogisticRegression(C=1, fit_intercept=False, solver="lbfgs")``
  (its multinomial loss) at each of ``--sklearn-tols`` (default 1e-4, its own
  default, and 1e-6);

with the objective f each reaches (numpy), the hold-out accuracy and the share of
hold-out rows whose classes agree with the first distnewton row's.

Run: ``python benchmarks/multiclass_bench.py [--workers 2] [--grad-rtol 1e-3]
[--backend sim|mpi --ranks 2] [--data-dir DIR] [--smoke]``
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import scipy.sparse as sp
import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _smoke import REPO, SMOKE_HELP  # noqa: E402
from _tables import markdown_table as table  # noqa: E402

DATA = os.path.join(os.path.dirname(REPO), "shared", "data")


def split(X, y, folder, frac=0.8, seed=0):
    """Train / hold-out LIBLINEAR files of a permutation of the rows."""
    from distnewton.data import write_libsvm
    perm = np.random.default_rng(seed).permutation(X.shape[0])
    cut = int(frac * len(perm))
    paths = []
    for name, rows in (("train", perm[:cut]), ("holdout", perm[cut:])):
        path = os.path.join(folder, f"{name}.svm")
        write_libsvm(path, X[rows], y[rows])
        paths.append(path)
    return paths, (X[perm[:cut]], y[perm[:cut]]), (X[perm[cut:]], y[perm[cut:]])


def run_distnewton(train, d, args, folder, multiclass="ovr", name="newton"):
    """The ovr (or multinomial, with algorithm ``name``) run; the result file's path."""
    alg = {"name": name}
    if name == "newton":
        alg["solver"] = "cg" if multiclass == "ovr" else "auto"
    cfg = {"data": {"train": train, "n_features": d},
           "model": {"loss": "logistic", "lambda": "1/n", "multiclass": multiclass},
           "algorithm": alg,
           "run": {"grad_rtol": args.grad_rtol, "max_rounds": args.max_rounds}}
    path = os.path.join(folder, f"{multiclass}-{name}.yaml")
    with open(path, "w") as fh:
        yaml.safe_dump(cfg, fh)
    out = os.path.join(folder, f"{multiclass}-{name}.h5")
    cmd = [sys.executable, "-m", "distnewton", "run", path, "-o", out, "-q", "--overwrite"]
    if args.backend == "mpi":
        cmd = ["mpiexec", "-n", str(args.ranks + 1)] + cmd + ["--set", f"run.workers={args.workers}"]
    else:
        cmd += ["--backend", "sim", "--workers", str(args.workers)]
    env = {**os.environ, "PYTHONPATH": REPO, "OMP_NUM_THREADS": "1"}
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if res.returncode != 0:
        sys.exit(f"distnewton failed:\n{res.stderr[-3000:]}")
    return out


def run_liblinear(Xtr, ytr, eps):
    """LIBLINEAR -s 0 one-vs-rest at C = 1: (model, seconds) or None without it."""
    try:
        from liblinear.liblinearutil import parameter, problem, train
    except ImportError:
        return None
    prob = problem(list(ytr), sp.csr_matrix(Xtr))
    t0 = time.perf_counter()
    m = train(prob, parameter(f"-s 0 -c 1 -e {eps} -q"))
    return m, time.perf_counter() - t0


def liblinear_predict(m, X):
    from liblinear.liblinearutil import predict
    labels, _, _ = predict([0] * X.shape[0], sp.csr_matrix(X), m, "-q")
    return np.array(labels)


def softmax_value(W, X, y, classes, lam):
    """f(W) of the multinomial problem (numpy): mean log-sum-exp minus the label's
    score, plus (lam/2)||W||_F^2."""
    Z = np.asarray(X @ W.T)
    top = Z.max(axis=1, keepdims=True)
    lse = np.log(np.exp(Z - top).sum(axis=1)) + top.ravel()
    idx = np.searchsorted(classes, y)
    return float(np.mean(lse - Z[np.arange(len(idx)), idx]) + 0.5 * lam * (W ** 2).sum())


def multinomial_rows(train, Xtr, ytr, Xho, yho, args, folder):
    """The multinomial comparison's table rows (see the module docstring)."""
    from distnewton.io.read import load
    from distnewton.model import load_model
    from sklearn.linear_model import LogisticRegression
    rows, ours = [], None
    classes, lam = np.unique(ytr), 1.0 / Xtr.shape[0]
    for name in [a for a in args.multinomial_algorithms.split(",") if a]:
        path = run_distnewton(train, Xtr.shape[1], args, folder, "multinomial", name)
        run, model = load(path), load_model(path)
        pred = model.predict(Xho)
        ours = pred if ours is None else ours
        rows.append([f"distnewton {name} multinomial ({run.status})", int(run.rounds),
                     f"{(run.bytes_up + run.bytes_down) / 1e6:.1f}",
                     f"{run.history['wall_time'][-1]:.2f}",
                     f"{softmax_value(model.coef, Xtr, ytr, classes, lam):.10f}",
                     f"{np.mean(pred == yho):.4f}", f"{np.mean(pred == ours):.4f}"])
    for tol in [float(t) for t in args.sklearn_tols.split(",") if t]:
        t0 = time.perf_counter()
        ref = LogisticRegression(C=1.0, fit_intercept=False, tol=tol, max_iter=100000)
        ref.fit(Xtr, ytr)
        seconds = time.perf_counter() - t0
        theirs = ref.predict(Xho)
        agree = "-" if ours is None else f"{np.mean(theirs == ours):.4f}"
        rows.append([f"sklearn lbfgs tol {tol:g} ({int(ref.n_iter_[0])} iterations)", "-", "-",
                     f"{seconds:.2f}", f"{softmax_value(ref.coef_, Xtr, ytr, classes, lam):.10f}",
                     f"{np.mean(theirs == yho):.4f}", agree])
    return rows


def smoke_data(folder):
    rng = np.random.default_rng(0)
    n, d, C = 600, 30, 5
    X = sp.csr_matrix(rng.standard_normal((n, d)) * (rng.random((n, d)) < 0.3))
    W = rng.standard_normal((C, d))
    y = np.argmax(X @ W.T + rng.gumbel(size=(n, C)), axis=1).astype(float) + 1
    return X, y


def ovr_section(train, X, Xtr, ytr, Xho, yho, args, folder):
    """The one-vs-rest tables: distnewton's classes, then distnewton against LIBLINEAR."""
    from distnewton.io.read import load
    from distnewton.model import load_model
    path = run_distnewton(train, X.shape[1], args, folder)
    run, model = load(path), load_model(path)
    a = run.attrs
    table(["class", "rounds", "MB up+down", "iterations", "status"],
          [[str(c), int(r), f"{(u + dn) / 1e6:.1f}", int(i), s]
           for c, r, u, dn, i, s in zip(model.classes, a["class_rounds"],
                                        a["class_bytes_up"], a["class_bytes_down"],
                                        a["class_iterations"],
                                        str(a["class_status"]).split(","))])
    ours = model.predict(Xho)
    rows = [["distnewton newton ovr", int(run.rounds),
             f"{(run.bytes_up + run.bytes_down) / 1e6:.1f}",
             f"{run.history['wall_time'][-1]:.2f}", f"{np.mean(ours == yho):.4f}", "-"]]
    ll = run_liblinear(Xtr, ytr, args.grad_rtol)
    if ll is None:
        print("\n(LIBLINEAR rows left out: pip install liblinear-official)")
    else:
        theirs = liblinear_predict(ll[0], Xho)
        rows.append([f"LIBLINEAR -s 0 -e {args.grad_rtol}", "-", "-", f"{ll[1]:.2f}",
                     f"{np.mean(theirs == yho):.4f}", f"{np.mean(theirs == ours):.4f}"])
    table(["method", "rounds", "MB up+down", "seconds", "hold-out accuracy",
           "agrees with distnewton"], rows)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=DATA)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--backend", choices=("sim", "mpi"), default="sim")
    ap.add_argument("--ranks", type=int, default=2, help="worker ranks with --backend mpi")
    ap.add_argument("--grad-rtol", type=float, default=1e-3)
    ap.add_argument("--max-rounds", type=int, default=100000)
    ap.add_argument("--multinomial-algorithms", default="lbfgs,newton",
                    help="distnewton methods of the multinomial rows (comma-separated; "
                         "'' for none)")
    ap.add_argument("--sklearn-tols", default="1e-4,1e-6",
                    help="scikit-learn lbfgs tols of the multinomial reference rows")
    ap.add_argument("--no-ovr", action="store_true",
                    help="leave out the one-vs-rest rows (distnewton and LIBLINEAR)")
    ap.add_argument("--smoke", action="store_true", help=SMOKE_HELP)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        if args.smoke:
            X, y = smoke_data(folder)
            name = "synthetic 600 x 30, 5 classes"
        else:
            from sklearn.datasets import load_svmlight_file
            X, y = load_svmlight_file(os.path.join(args.data_dir, "news20.bz2"),
                                      n_features=62061)
            name = "news20 (80% train)"
        (train, holdout), (Xtr, ytr), (Xho, yho) = split(X.tocsr(), y, folder)
        print(f"# {name}: {Xtr.shape[0]} x {X.shape[1]}, {len(np.unique(y))} classes, "
              f"{Xho.shape[0]} held out; grad_rtol {args.grad_rtol}, K = {args.workers} "
              f"({args.backend})\n")
        if not args.no_ovr:
            ovr_section(train, X, Xtr, ytr, Xho, yho, args, folder)
        print("\n## multinomial (softmax), lambda = 1/n\n")
        table(["method", "rounds", "MB up+down", "seconds", "f (train)", "hold-out accuracy",
               "agrees with distnewton"],
              multinomial_rows(train, Xtr, ytr, Xho, yho, args, folder))


if __name__ == "__main__":
    main()
