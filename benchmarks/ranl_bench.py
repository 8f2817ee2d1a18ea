"""RANL benchmark: condition numbers, heterogeneous capacities, and what the
options beyond the paper (hessian_refresh, safeguard) do.

Everything here is about counting (rounds and bytes), so every run uses the sim
backend in this process (same counts as MPI, see docs/guide/backends.md) with K workers
(default 4), seed 0.  Relative suboptimality is (f - f*)/f*.

1. Condition numbers: ridge, n = 1000, d = 20, X^T X / n = V diag(s^2) V^T with a
   random rotation V and eigenvalues from 1 down to 1/kappa, lambda = 1e-12,
   y = X w + 0.1 noise; f* in closed form.  Rounds to 1e-8: RANL with full masks
   (the paper's setting: capacity 1), with half masks (capacity 0.5, 10 regions),
   half masks with each safeguard, GIANT and GD (Armijo).
2. Heterogeneity: a9a and w8a, logistic, lambda = 1/n, iid and label_skew
   partitions (Dirichlet 0.5); f* from scikit-learn newton-cholesky (tol 1e-12).
   Rounds and bytes up (kB, workers -> master, Hessian round included) to reach
   1e-4 and 1e-6: RANL with capacities uniform(0.3, 1.0) (faithful otherwise),
   RANL with capacity 1, GIANT, GD.  "saved" = 1 - bytes(heterogeneous) /
   bytes(capacity 1), next to the paper's "communication reduced by up to 60%".
3. Beyond the paper, same problems with capacities uniform(0.3, 1.0): faithful,
   safeguard line_search / damping, hessian_refresh 10 alone and with each
   safeguard.

Every run is one ``distnewton.solve`` call (the Python API).  RANL runs here with
the defaults until 0.3 unless a row sets them (``OLD``: capacity 1, gradients at the
full x_t over the whole shard, the Hessian at x0 only, no safeguard);
``benchmarks/paper_ranl.py`` measures the published method (``preset: paper``), and
``benchmarks/ranl_default.py`` today's default.

Run (from anywhere; ~3-6 minutes on 2 idle cores, ``--quick`` = a9a only, ``--smoke``
= seconds: n = 200 for the condition numbers, a small synthetic set for the rest,
25 rounds):

    python benchmarks/ranl_bench.py [--data-dir DIR] [--workers 4] [--rounds 300]
                                    [--gd-rounds 500] [--quick] [--smoke]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings

import numpy as np
from _smoke import SMOKE_HELP, synth_set  # noqa: E402  (benchmarks/, the script's folder)
from _tables import markdown_table  # noqa: E402
from sklearn.datasets import load_svmlight_file
from sklearn.linear_model import LogisticRegression

import distnewton
from distnewton.data import write_libsvm

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATASETS = {"a9a": ("a9a.bz2", 123), "w8a": ("w8a.bz2", 300)}
HET = "uniform(0.3, 1.0)"
TARGETS = (1e-4, 1e-6)
#: ranl's defaults until 0.3: the paper preset's frozen Hessian and plain step, capacity 1,
#: gradients at the full x_t over the whole shard
OLD = {"preset": "paper", "capacities": 1.0, "eval_at": "full", "batch": None}


def run(tmp, tag, data, model, algo, run_keys, workers):
    """One sim run in this process (``distnewton.solve``); returns (attrs, history)."""
    if algo["name"] == "ranl":
        algo = {**OLD, **algo}
    cfg = {"data": data, "model": model, "algorithm": algo,
           "run": {"seed": 0, **run_keys}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)      # overflow when a run diverges
        res = distnewton.solve(cfg, workers=workers)
    return res.attrs, res.history


def first(sub, t):
    hit = np.flatnonzero(sub <= t)
    return int(hit[0]) if hit.size else None


def table(header, rows):
    markdown_table(header, rows)


def outcome(attrs, hist, sub):
    status = str(attrs["status"])
    if status == "diverged" or not np.isfinite(hist["loss"][-1]):
        return f"diverged after {int(hist['comm_rounds'][-1])} rounds"
    return f"{status}, {int(hist['comm_rounds'][-1])} rounds, final {sub[-1]:.1e}"


# -- 1. condition numbers ---------------------------------------------------
def conditioned_ridge(path, kappa, n=1000, d=20, seed=0):
    rng = np.random.default_rng(seed)
    U, _ = np.linalg.qr(rng.standard_normal((n, d)))
    V, _ = np.linalg.qr(rng.standard_normal((d, d)))
    X = np.sqrt(n) * (U * np.logspace(0, -np.log10(kappa) / 2, d)) @ V.T
    y = X @ rng.standard_normal(d) + 0.1 * rng.standard_normal(n)
    write_libsvm(path, X, y)
    lam = 1e-12
    w = np.linalg.solve(X.T @ X / n + lam * np.eye(d), X.T @ y / n)
    return float(0.5 * np.mean((X @ w - y) ** 2) + 0.5 * lam * w @ w)


def condition_table(tmp, args):
    """Rounds to 1e-8 on ridge problems of growing condition number."""
    methods = [("ranl, capacity 1", {"name": "ranl"}),
               ("ranl, capacity 0.5", {"name": "ranl", "capacities": 0.5}),
               ("ranl, 0.5 + line_search", {"name": "ranl", "capacities": 0.5,
                                            "safeguard": "line_search"}),
               ("ranl, 0.5 + damping", {"name": "ranl", "capacities": 0.5,
                                        "safeguard": "damping"}),
               ("giant", {"name": "giant"}), ("gd (Armijo)", {"name": "gd"})]
    kappas = (1e2, 1e4, 1e6)
    cells = {m: [] for m, _ in methods}
    for kappa in kappas:
        train = os.path.join(tmp, f"ridge-{kappa:.0e}.svm")
        fs = conditioned_ridge(train, kappa, n=args.cond_rows)
        for label, algo in methods:
            cap = args.gd_rounds if algo["name"] == "gd" else args.rounds
            attrs, hist = run(tmp, "cond", {"train": train}, {"loss": "ridge", "lambda": 1e-12},
                              algo, {"max_rounds": cap, "grad_rtol": None, "f_star": fs,
                                     "target_subopt": 1e-8}, args.workers)
            sub = (hist["loss"] - fs) / fs
            i = first(sub, 1e-8)
            if i is not None:
                cells[label].append(str(int(hist["comm_rounds"][i])))
            elif not np.isfinite(hist["loss"][-1]) or sub[-1] > 1e3:
                cells[label].append(f"diverges (>{cap})")
            else:
                cells[label].append(f">{cap} ({sub[-1]:.0e})")
            print(f"  kappa {kappa:.0e} {label}: {cells[label][-1]}", file=sys.stderr, flush=True)
    print("## Condition number: rounds to 1e-8 relative suboptimality (ridge, d = 20, "
          f"K = {args.workers})\n")
    table(["method"] + [f"kappa {k:.0e}" for k in kappas], [[m] + cells[m] for m, _ in methods])


# -- 2 and 3. heterogeneity and the options beyond the paper ------------------
def logistic_fstar(path, d):
    X, y = load_svmlight_file(path, n_features=d, zero_based=False)
    lam = 1.0 / X.shape[0]
    clf = LogisticRegression(C=1.0 / (lam * X.shape[0]), fit_intercept=False,
                             solver="newton-cholesky", tol=1e-12, max_iter=500).fit(X, y)
    w = clf.coef_.ravel()
    return float(np.mean(np.logaddexp(0.0, -y * (X @ w))) + 0.5 * lam * w @ w)


def measure(tmp, data, fs, algo, cap, workers):
    attrs, hist = run(tmp, "het", data, {"loss": "logistic", "lambda": "1/n"}, algo,
                      {"max_rounds": cap, "grad_rtol": None, "f_star": fs,
                       "target_subopt": min(TARGETS)}, workers)
    sub = (hist["loss"] - fs) / fs
    hits = [first(sub, t) for t in TARGETS]
    return hits, hist, outcome(attrs, hist, sub)


def cells_for(hits, hist):
    out = []
    for i in hits:
        out += (["-", "-"] if i is None else
                [str(int(hist["comm_rounds"][i])), f"{hist['bytes_up'][i] / 1e3:.1f}"])
    return out


def compare(het, i, full, j, hess):
    """Bytes up to a target, heterogeneous (history het, index i) vs capacity 1;
    ``hess`` = bytes of the one-time Hessian round (in both)."""
    b_h, b_f = int(het["bytes_up"][i]), int(full["bytes_up"][j])
    r_h, r_f = int(het["comm_rounds"][i]) - 1, int(full["comm_rounds"][j]) - 1
    g_h, g_f = b_h - hess, b_f - hess
    if min(r_h, r_f, g_h, g_f) <= 0:                      # reached in the Hessian round
        return f"total {b_h / 1e3:.1f} vs {b_f / 1e3:.1f} kB; rounds {r_h + 1} vs {r_f + 1}"
    return (f"total {b_h / 1e3:.1f} vs {b_f / 1e3:.1f} kB (saves {1 - b_h / b_f:.0%}); "
            f"gradient rounds only {g_h / 1e3:.1f} vs {g_f / 1e3:.1f} kB "
            f"(saves {1 - g_h / g_f:.0%}); per gradient round {g_h / r_h / 1e3:.2f} vs "
            f"{g_f / r_f / 1e3:.2f} kB (saves {1 - (g_h / r_h) / (g_f / r_f):.0%}); "
            f"rounds {r_h + 1} vs {r_f + 1}")


def hetero_tables(tmp, args, sets):
    """Heterogeneous capacities vs capacity 1, and the options beyond the paper;
    ``sets``: name -> (LIBSVM path, n_features)."""
    base = [("ranl, capacities " + HET, {"name": "ranl", "capacities": HET}),
            ("ranl, capacity 1", {"name": "ranl"}),
            ("giant", {"name": "giant"}), ("gd (Armijo)", {"name": "gd"})]
    extra = [("line_search", {"safeguard": "line_search"}),
             ("damping", {"safeguard": "damping"}),
             ("refresh 10", {"hessian_refresh": 10}),
             ("refresh 10 + line_search", {"hessian_refresh": 10, "safeguard": "line_search"}),
             ("refresh 10 + damping", {"hessian_refresh": 10, "safeguard": "damping"})]
    head = ["data", "partition", "method"]
    for t in TARGETS:
        head += [f"rounds to {t:.0e}", f"kB up to {t:.0e}"]
    rows2, rows3, saved = [], [], []
    for name, (path, d) in sets.items():
        fs = logistic_fstar(path, d)
        for part in ("iid", "label_skew"):
            data = {"train": path, "n_features": d, "partition": part}
            res = {}
            for label, algo in base:
                cap = args.gd_rounds if algo["name"] == "gd" else args.rounds
                hits, hist, end = measure(tmp, data, fs, algo, cap, args.workers)
                res[label] = (hits, hist)
                rows2.append([name, part, label, *cells_for(hits, hist), end])
                print(f"  {name} {part} {label}: {end}", file=sys.stderr, flush=True)
            (h_het, hist_het), (h_full, hist_full) = res[base[0][0]], res[base[1][0]]
            for j, t in enumerate(TARGETS):
                if h_het[j] is not None and h_full[j] is not None:
                    saved.append(f"{name} {part}, to {t:.0e}: " + compare(
                        hist_het, h_het[j], hist_full, h_full[j], 8 * args.workers * d * d))
            rows3.append([name, part, "faithful", *rows2[-4][3:]])
            for label, opts in extra:
                hits, hist, end = measure(tmp, data, fs, {**base[0][1], **opts}, args.rounds,
                                          args.workers)
                rows3.append([name, part, label, *cells_for(hits, hist), end])
                print(f"  {name} {part} {label}: {end}", file=sys.stderr, flush=True)
    print(f"## Heterogeneity: logistic, lambda = 1/n, K = {args.workers}; rounds and kB up "
          "(Hessian round included) to reach each relative suboptimality\n")
    table(head + ["end of run"], rows2)
    print("Bytes up to the target, heterogeneous capacities vs capacity 1 (the paper "
          "claims communication reduced by up to 60%):\n")
    for s in saved or ["(no target reached by both)"]:
        print(f"- {s}")
    print()
    print(f"## Beyond the paper: RANL with capacities {HET}, options added\n")
    table(head + ["end of run"], rows3)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=os.path.join(os.path.dirname(REPO), "shared", "data"))
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=300, help="round cap (RANL, GIANT)")
    ap.add_argument("--gd-rounds", type=int, default=500, help="round cap for GD")
    ap.add_argument("--quick", action="store_true", help="a9a only")
    ap.add_argument("--smoke", action="store_true", help=SMOKE_HELP)
    args = ap.parse_args()
    args.cond_rows = 1000
    names = ["a9a"] if args.quick else list(DATASETS)
    sets = {n: (os.path.join(args.data_dir, DATASETS[n][0]), DATASETS[n][1]) for n in names}
    if args.smoke:
        args.cond_rows, args.rounds, args.gd_rounds = 200, 25, 25
    print("# RANL benchmark (sim backend, seed 0)\n")
    print("command: python benchmarks/ranl_bench.py " + " ".join(sys.argv[1:]) + "\n")
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        if args.smoke:
            sets = {"synth": (synth_set(tmp, "synth", 500, 15, density=0.4)[0], 15)}
        condition_table(tmp, args)
        hetero_tables(tmp, args, sets)
    print(f"(total {time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
