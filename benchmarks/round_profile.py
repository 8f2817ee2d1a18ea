"""Where a round's time goes: the history's time breakdown for every second-order algorithm.

For each data set (a9a, w8a, ijcnn1 from ``../shared/data``, and a synthetic set of
``--synth-rows`` rows generated once into a cache folder) and each algorithm (newton with
Cholesky, newton with CG, giant, adaptive_localnewton, ranl, lbfgs), one real run
``mpiexec -n K+1 python -m distnewton run ... -q`` (K = ``--workers``, default 2) of
``--iterations`` iterations. From the HDF5 history (the columns ``time_compute``,
``time_comm``, ``time_idle``, see docs/guide/result-format.md) it prints per communication round:

* ``ms/round``: in-run wall time / rounds;
* ``compute``: the master's own work plus the slowest worker's task, per round;
* ``comm``: the rest of the round (latency, transfer, reduction, descheduled ranks);
* ``idle``: load imbalance (slowest worker minus the mean worker), per round;
* ``bytes/round`` (up + down), and the data set's ``nnz``/``d``.

Run (about 3 minutes on 2 cores, plus about a minute to generate the synthetic set once;
``--smoke``: seconds, 3000 synthetic rows only, 1 worker, 2 iterations, newton (cg), giant
and ranl, nothing cached):

    python benchmarks/round_profile.py [--data-dir DIR] [--workers 2] [--iterations 4]
                                       [--synth-rows 2000000] [--cache DIR] [--smoke]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

import h5py
import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _smoke import SMOKE_HELP  # noqa: E402
from _tables import markdown_table  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ALGOS = {   # label: algorithm section
    "newton (cholesky)": {"name": "newton", "solver": "cholesky"},
    "newton (cg)": {"name": "newton", "solver": "cg", "cg_rtol": 0.1},
    "giant": {"name": "giant"},
    "adaptive_localnewton": {"name": "adaptive_localnewton"},
    # the defaults until 0.3 (Newton with a frozen Hessian), as measured in docs/benchmarks/performance.md
    "ranl": {"name": "ranl", "preset": "paper", "capacities": 1.0, "eval_at": "full",
             "batch": None},
    "lbfgs": {"name": "lbfgs"},
}
#: --smoke profiles these only (each is one mpiexec run)
SMOKE_ALGOS = ("newton (cg)", "giant", "ranl")


def rows_label(rows):
    """2000000 -> "2M", 3000 -> "3k"."""
    for size, unit in ((10**6, "M"), (10**3, "k")):
        if rows >= size:
            return f"{rows // size}{unit}"
    return str(rows)


def synth_file(cache, rows):
    """A synthetic logistic set (rows x 100, density 0.05: 5 non-zeros per row) written once."""
    path = os.path.join(cache, f"synth-{rows}x100-d05.svm")
    if not os.path.exists(path):
        os.makedirs(cache, exist_ok=True)
        subprocess.run([sys.executable, "-m", "distnewton", "data", "synth", path,
                        "--samples", str(rows), "--features", "100", "--density", "0.05"],
                       check=True)
    return path


def profile(tmp, name, train, algo, workers, iterations):
    cfg = {"data": {"train": train}, "model": {"fit_intercept": False},
           "algorithm": algo, "run": {"max_iterations": iterations, "grad_rtol": None,
                                      "max_rounds": 10000}}
    path = os.path.join(tmp, f"{name}.yaml")
    with open(path, "w") as fh:
        yaml.safe_dump(cfg, fh)
    out = os.path.join(tmp, f"{name}.h5")
    subprocess.run(["mpiexec", "-n", str(workers + 1), sys.executable, "-m", "distnewton", "run",
                    path, "-o", out, "-q", "--overwrite"], check=True)
    with h5py.File(out) as f:
        h = {k: f["history"][k][()] for k in f["history"]}
        nnz_d = f"{f.attrs['n_samples']} x {f.attrs['n_features']}"
    r = max(int(h["comm_rounds"][-1]), 1)
    ms = lambda col: f"{1e3 * h[col][-1] / r:.2f}"                        # noqa: E731
    return [nnz_d, r, ms("wall_time"), ms("time_compute"), ms("time_comm"), ms("time_idle"),
            f"{(h['bytes_up'][-1] + h['bytes_down'][-1]) / r / 1024:.1f}"]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", default=os.path.join(REPO, "..", "shared", "data"))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--iterations", type=int, default=4)
    ap.add_argument("--synth-rows", type=int, default=2_000_000)
    ap.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "distnewton-bench"))
    ap.add_argument("--smoke", action="store_true",
                    help=SMOKE_HELP + "; synthetic rows only (3000), 1 worker, 2 iterations, "
                    "3 algorithms")
    args = ap.parse_args(argv)
    real = () if args.smoke else ("a9a", "w8a", "ijcnn1")
    sets = {n: os.path.join(args.data_dir, f"{n}.bz2") for n in real}
    sets = {n: p for n, p in sets.items() if os.path.exists(p)}
    header = ["data", "algorithm", "n x d", "rounds", "ms/round", "compute", "comm", "idle",
              "KiB/round"]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        algos = ALGOS
        if args.smoke:
            args.synth_rows, args.workers, args.iterations = 3000, 1, 2
            args.cache = os.path.join(tmp, "cache")
            algos = {k: ALGOS[k] for k in SMOKE_ALGOS}
        if args.synth_rows:
            sets[f"synth {rows_label(args.synth_rows)}"] = synth_file(args.cache, args.synth_rows)
        for ds, train in sets.items():
            for label, algo in algos.items():
                rows.append([ds, label] + profile(tmp, f"{ds.split()[0]}-{algo['name']}",
                                                  train, algo, args.workers, args.iterations))
                print(" | ".join(map(str, rows[-1])), file=sys.stderr, flush=True)
    markdown_table(header, rows, title=f"Per-round time, {args.workers} workers, "
                   f"{args.iterations} iterations (ms per communication round)")


if __name__ == "__main__":
    main()
