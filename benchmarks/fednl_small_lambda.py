"""FedNL at lambda = 1/n (issue 30, item 2): rounds to relative suboptimality 1e-6.

Why: at lambda = 1/n the paper's FedNL (option 1, alpha = 1 - sqrt(1 - delta),
no line search: ``preset: paper``) does not converge on a9a or phishing in 500
rounds; distnewton's default (option 2, alpha = 1 for Top-K, FedNL-LS) must.
This script measures both, and the variants between them, with the sim backend,
4 workers, 500 rounds, and prints one row per (set, variant).  f* is the lowest
loss any variant reached (the converged ones agree to 1e-15 relative).

    python benchmarks/fednl_small_lambda.py [a9a w8a ijcnn1 phishing]
    python benchmarks/fednl_small_lambda.py --smoke     # a tiny synthetic set, seconds

The sets are read in place from ../shared/data beside the checkout.  The table
goes to stdout; benchmarks/results/fednl_small_lambda.md holds the committed one.
"""
import argparse
from pathlib import Path

import numpy as np

import distnewton
from _claims import DEFAULT, PAPER, label

DATA = str(Path(__file__).resolve().parents[2] / "shared" / "data") + "/"
SETS = {"a9a": ("a9a.bz2", 32561), "w8a": ("w8a.bz2", 49749),
        "ijcnn1": ("ijcnn1.bz2", 49990), "phishing": ("phishing.crlf.bz2", 11055)}
VARIANTS = {                      # the row's name: the keys
    label(DEFAULT) + ": option 2, alpha 1, FedNL-LS": {},
    label(PAPER) + ": FedNL, option 1, alpha theory": {"preset": "paper"},
    "FedNL-LS, option 1, alpha theory (the paper's Algorithm 2)":
        {"preset": "paper", "line_search": True},
    "FedNL, option 2, alpha theory (the paper's)": {"preset": "paper", "option": 2},
    "FedNL, option 2, alpha 1 (the paper's; ours without line search)":
        {"line_search": False},
}


def smoke_data():
    """A 400 x 10 synthetic logistic problem (the --smoke mode)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 10))
    y = np.where(X @ rng.normal(size=10) + rng.normal(size=400) > 0, 1.0, -1.0)
    return X, y


def run(name, algo, max_rounds=500):
    """(rounds, losses, bytes_up) of one FedNL run at lambda = 1/n."""
    if name == "smoke":
        data, n, train = smoke_data(), 400, None
    else:
        (file, n), data = SETS[name], None
        train = DATA + file
    cfg = {"data": {"train": train, "test": None},
           "model": {"loss": "logistic", "lambda": 1 / n, "fit_intercept": True},
           "algorithm": {"name": "fednl", **algo},
           "run": {"workers": 4, "max_rounds": max_rounds, "grad_norm": 1e-11,
                   "grad_rtol": None, "seed": 0}}
    h = distnewton.solve(cfg, data=data, warn=False).history
    return np.asarray(h["comm_rounds"]), np.asarray(h["loss"]), np.asarray(h["bytes_up"])


def main(sets, max_rounds=500):
    print("| set | variant | rounds to 1e-6 | MB up |")
    print("| --- | --- | --- | --- |")
    for s in sets:
        runs = {v: run(s, a, max_rounds) for v, a in VARIANTS.items()}
        fstar = min(r[1].min() for r in runs.values())
        for v, (rounds, loss, up) in runs.items():
            hit = np.flatnonzero((loss - fstar) / abs(fstar) <= 1e-6)
            at = f"{rounds[hit[0]]}" if hit.size else f"not reached ({rounds[-1]})"
            i = hit[0] if hit.size else -1
            print(f"| {s} | {v} | {at} | {up[i] / 1e6:.2f} |", flush=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sets", nargs="*", metavar="SET", help=f"of {', '.join(SETS)} (default all)")
    ap.add_argument("--smoke", action="store_true",
                    help="a tiny synthetic set and 30 rounds: checks that the script runs")
    args = ap.parse_args()
    if set(args.sets) - set(SETS):
        ap.error(f"unknown set(s) {sorted(set(args.sets) - set(SETS))}; known: {', '.join(SETS)}")
    main(["smoke"] if args.smoke else args.sets or list(SETS), 30 if args.smoke else 500)
