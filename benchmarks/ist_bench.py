"""IST benchmark: communication rounds and bytes to a target loss for the IST
sketches (perm, perm_precond, bernoulli, identity) against fixed-step GD.

Problems (K workers, sim backend, one process):

* a9a and ijcnn1, L2-regularised logistic regression, lambda = 1/n;
* german.numer_scale, ridge, lambda = 1e-3 (the tests' heterogeneous problem);

each with ``iid`` and ``label_skew`` (Dirichlet alpha 0.5) shards.

f* is independent of distnewton: scikit-learn ``newton-cholesky`` (tol 1e-10)
for logistic, ``numpy.linalg.solve`` for ridge.  L = kappa lambda_max(X^T X/n)
+ lambda (kappa = 1/4 logistic, 1 ridge).  GD runs with step 1/L.  ``identity``
runs with gamma = 1/L (it is GD: same rounds, different bytes).  Every other
sketch is tried with gamma in {2, 1, 1/2, 1/4}/L and the gamma reaching the
loose target in the fewest rounds is shown (ties and misses: lowest final loss).

Columns: rounds and total bytes (up + down, the algorithm's only; logging
rounds excluded) at the first iteration whose relative suboptimality
(f - f*)/f* is below each target ("-": not within --rounds), the best
suboptimality reached, bytes per round, and on ridge the logged analysis
(bias ||E[B]^{-1}E[h] - x*|| and radius R of the ist module docstring, next to
the final ||x - x*||).

Run (~3-4 minutes on 2 busy cores; --quick: fewer rounds, one problem; --smoke:
seconds, two small synthetic problems, 20 rounds):

    python benchmarks/ist_bench.py [--data-dir DIR] [--workers 4] [--rounds 300]
                                   [--targets 0.25 0.02] [--quick] [--smoke]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _smoke import SMOKE_HELP, synth_set                   # noqa: E402
from _tables import markdown_table                          # noqa: E402
from distnewton.config import resolve                      # noqa: E402
from distnewton.session import Session                    # noqa: E402

PROBLEMS = {  # name: (file, loss, lambda, n_features)
    "a9a": ("a9a.bz2", "logistic", "1/n", 123),
    "ijcnn1": ("ijcnn1.bz2", "logistic", "1/n", 22),
    "german-ridge": ("german.numer_scale.bz2", "ridge", 1e-3, 24),
}
SKETCHES = ("perm", "perm_precond", "bernoulli")
GRID = (2.0, 1.0, 0.5, 0.25)


def f_star(X, y, loss, lam):
    if loss == "ridge":
        Xd = X.toarray()
        n, d = X.shape
        w = np.linalg.solve(Xd.T @ Xd / n + lam * np.eye(d), Xd.T @ y / n)
        r = X @ w - y
        return float(r @ r / (2 * X.shape[0]) + 0.5 * lam * w @ w)
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref = LogisticRegression(C=1.0 / (lam * X.shape[0]), fit_intercept=False,
                                 solver="newton-cholesky", tol=1e-10, max_iter=500).fit(X, y)
    w = ref.coef_.ravel()
    return float(np.mean(np.logaddexp(0.0, -y * (X @ w))) + 0.5 * lam * w @ w)


def smoothness(X, loss, lam):
    H = (X.T @ X).toarray() / X.shape[0]
    return (0.25 if loss == "logistic" else 1.0) * float(np.linalg.eigvalsh(H)[-1]) + lam


def one_run(raw, setup, K, fs, targets, rounds):
    cfg = resolve({**raw, "run": {"max_rounds": rounds, "grad_rtol": None,
                                  "target_loss": fs * (1 + min(targets)) if fs > 0 else None}})
    out = Session.open(cfg, setup=setup).run()
    h, status = out.history.arrays(), out.status
    sub = (h["loss"] - fs) / abs(fs)
    total = h["bytes_up"] + h["bytes_down"]
    hits = []
    for t in targets:
        ok = np.flatnonzero(sub <= t)
        hits.append((int(h["comm_rounds"][ok[0]]), int(total[ok[0]])) if ok.size else None)
    per_round = total[-1] / max(h["comm_rounds"][-1], 1)
    best = float(np.nanmin(sub)) if np.isfinite(sub).any() else np.inf
    extra = {k: float(h[k][-1]) for k in ("dist_opt", "bias", "radius") if k in h}
    return {"hits": hits, "best": best, "status": status, "per_round": per_round,
            "rounds": int(h["comm_rounds"][-1]), **extra}


def score(res):
    h = res["hits"][0]
    return (0, h[0], res["best"]) if h else (1, 0, res["best"])


def fmt_hit(h):
    return [str(h[0]), f"{h[1] / 1e3:.1f}k"] if h else ["-", "-"]


def smoke_problems(tmp):
    """--smoke: a small synthetic logistic and ridge problem instead of the real sets."""
    logistic = synth_set(tmp, "logistic", 400, 12, density=0.5)[0]
    ridge = synth_set(tmp, "ridge", 300, 10, density=0.6, loss="ridge")[0]
    return {"synth-logistic": (logistic, "logistic", "1/n", 12),
            "synth-ridge": (ridge, "ridge", 1e-3, 10)}


def problem_rows(name, problem, args, K, targets):
    """The table rows of one problem, both partitions."""
    file, loss, lam, nf = problem
    rows = []
    for part in ("iid", "label_skew"):
        data = {"train": os.path.join(args.data_dir, file), "n_features": nf, "partition": part}
        model = {"loss": loss, "lambda": lam}
        base = resolve({"data": data, "model": model, "algorithm": {"name": "gd"}})
        setup = Session.open({**base, "run": {**base["run"], "workers": K}}).setup
        lam_v = setup.problem.lam
        fs = f_star(setup.X, setup.y, loss, lam_v)
        L = smoothness(setup.X, loss, lam_v)
        runs = [("gd", 1 / L, {"name": "gd", "step_size": 1 / L}),
                ("ist-identity", 1 / L, {"name": "ist", "sketch": "identity", "gamma": 1 / L})]
        results = []
        for label, g, algo in runs:
            results.append((label, g, one_run({"data": data, "model": model, "algorithm": algo},
                                              setup, K, fs, targets, args.rounds)))
        for sk in SKETCHES:
            tried = []
            for c in GRID:
                algo = {"name": "ist", "sketch": sk, "gamma": c / L}
                tried.append((c / L, one_run({"data": data, "model": model, "algorithm": algo},
                                             setup, K, fs, targets, args.rounds)))
            g, res = min(tried, key=lambda t: score(t[1]))
            results.append((f"ist-{sk}", g, res))
        for label, g, res in results:
            ridge = ["", "", ""]
            if "dist_opt" in res and np.isfinite(res.get("radius", np.nan)):
                ridge = [f"{res['dist_opt']:.3f}", f"{res['bias']:.3f}", f"{res['radius']:.3f}"]
            rows.append([name, part, label, f"{g:.3g}", *fmt_hit(res["hits"][0]),
                         *fmt_hit(res["hits"][1]), f"{res['best']:.2e}",
                         f"{res['per_round']:.0f}", *ridge])
            print(" | ".join(rows[-1]), file=sys.stderr, flush=True)
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", default=os.path.join(os.path.dirname(REPO), "shared", "data"))
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=300)
    ap.add_argument("--targets", type=float, nargs=2, default=(0.25, 0.02))
    ap.add_argument("--problems", nargs="+", default=list(PROBLEMS), choices=list(PROBLEMS))
    ap.add_argument("--quick", action="store_true", help="100 rounds, german-ridge only")
    ap.add_argument("--smoke", action="store_true", help=SMOKE_HELP)
    args = ap.parse_args(argv)
    if args.quick:
        args.rounds, args.problems = 100, ["german-ridge"]
    from threadpoolctl import threadpool_limits
    threadpool_limits(1)
    K, targets = args.workers, tuple(sorted(args.targets, reverse=True))
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ist_bench-") as tmp:
        problems = {p: PROBLEMS[p] for p in args.problems}
        if args.smoke:
            problems, args.rounds = smoke_problems(tmp), 20
        print(f"# IST vs GD, K = {K} workers (sim), up to {args.rounds} rounds; "
              f"targets: (f - f*)/f* <= {targets[0]:g} and {targets[1]:g}\n", flush=True)
        rows = []
        for name, problem in problems.items():
            rows += problem_rows(name, problem, args, K, targets)
    head = ["problem", "partition", "method", "gamma"]
    for t in targets:
        head += [f"rounds to {t:g}", f"bytes to {t:g}"]
    head += ["best subopt", "B/round", "ridge: dist(x, x*)", "bias", "radius"]
    markdown_table(head, rows)
    print(f"f* from scikit-learn / numpy; total {time.perf_counter() - t_start:.0f} s")


if __name__ == "__main__":
    main()
