"""distnewton against LIBLINEAR and scikit-learn: seconds to relative suboptimality 1e-6.

Problem: L2-regularised logistic regression without intercept, lambda = 1/n
(LIBLINEAR / scikit-learn C = 1/(lambda n) = 1), on a9a, w8a, ijcnn1 and phishing.

Per data set:

* f*: as in ``core_bench.py`` (the smaller of distnewton ``newton`` at grad_rtol 1e-14
  and scikit-learn ``newton-cholesky`` at tol 1e-14).
* LIBLINEAR ``-s 0`` (eps tightened 1e-1 .. 1e-8) and scikit-learn ``newton-cholesky``
  / ``lbfgs`` (tol tightened 1e-2 .. 1e-12): the loosest setting reaching 1e-6 and the
  median of 3 timings of the train/fit call (data conversion excluded).
* distnewton ``newton`` and ``giant`` (Cholesky; and Hessian-free: ``newton`` with
  ``solver: cg, cg_rtol: 0.1`` = Newton-CG over Hessian-vector rounds, ``giant`` with
  local CG at ``cg_rtol: 0.01``) with 1 and 2 workers (``mpiexec -n 2`` / ``-n 3``,
  ``python -m distnewton``, which skips the pyenv shim): in-run seconds (history
  ``wall_time`` at the first row with relative suboptimality <= 1e-6; logging-only
  evaluation excluded), the part of it in communication (history ``time_comm``) and
  whole-process seconds of the mpiexec command. The runs
  stop at 1e-6 (``run.target_subopt``). The best distnewton row per worker count is
  marked with *.

Run (from anywhere; about 3-5 minutes on 2 idle cores):

    python benchmarks/vs_liblinear.py [--datasets a9a w8a ijcnn1 phishing] [--data-dir DIR]
                                      [--workers 1 2] [--algos newton giant] [--repeat 1]
                                      [--smoke]

``--smoke``: a small synthetic set, 1 worker, newton and giant:cg:0.01 (seconds).
Without ``liblinear-official`` the LIBLINEAR rows are left out, saying so.

Reuses the helpers of ``core_bench.py`` (imported, not copied).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import h5py
import numpy as np
import yaml
from sklearn.datasets import load_svmlight_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import core_bench as cb  # noqa: E402
from _smoke import NO_LIBLINEAR, SMOKE_HELP, have_liblinear, synth_set  # noqa: E402

TARGET = 1e-6
DATASETS = {  # name: (train file, n_features)
    "a9a": ("a9a.bz2", 123),
    "w8a": ("w8a.bz2", 300),
    "ijcnn1": ("ijcnn1.bz2", 22),
    "phishing": ("phishing.crlf.bz2", 68),
}


def algo_section(spec):
    """'giant' or 'giant:cg:0.01' (name, solver, cg_rtol) -> the algorithm section."""
    parts = spec.split(":")
    sec = {"name": parts[0]}
    if len(parts) > 1:
        sec["solver"] = parts[1]
    if len(parts) > 2:
        sec["cg_rtol"] = float(parts[2])
    return sec


def label(spec):
    sec = algo_section(spec)
    extra = ", ".join(f"{k} {v}" for k, v in sec.items() if k != "name")
    return sec["name"] + (f" ({extra})" if extra else "")


def dn_run(tmp, name, files, fs, algo, workers, repeat):
    run = {"max_rounds": 600, "grad_rtol": 1e-14, "f_star": fs, "target_subopt": TARGET,
           "backend": "mpi"}
    tag = algo.replace(":", "-")
    cfg = cb.distnewton_config(tmp, files, f"{name}-k{workers}", tag, run)
    with open(cfg) as fh:
        doc = yaml.safe_load(fh)
    doc["algorithm"] = algo_section(algo)
    with open(cfg, "w") as fh:
        yaml.safe_dump(doc, fh)
    out = os.path.join(tmp, f"{name}-{tag}-k{workers}.h5")
    cmd = ["mpiexec", "-n", str(workers + 1), sys.executable, "-m", "distnewton", "run", cfg,
           "-o", out, "-q", "--overwrite"]
    wholes, ins, parts = [], [], []
    for _ in range(repeat):
        wholes.append(cb.run_cli(cmd))
        loss, rounds, wall, status, k = cb.read_history(out)
        sub = (loss - fs) / abs(fs)
        (i,) = cb.first_reaching(sub, [TARGET])
        ins.append(None if i is None else float(wall[i]))
        if i is not None:
            with h5py.File(out) as f:
                parts.append(f["history/time_comm"][i])
    whole = statistics.median(wholes)
    inrun = None if None in ins else statistics.median(ins)
    comm = statistics.median(parts) if parts else None
    print(f"  {name} {algo} K={workers}: {status}, in-run {inrun}, whole {whole:.2f} s, "
          f"load {cb.load()}", file=sys.stderr, flush=True)
    return {"algo": algo, "k": k, "rounds": None if i is None else int(rounds[i]),
            "inrun": inrun, "whole": whole, "final": float(sub[-1]), "status": status,
            "comm": comm}



def data_sets(args, tmp):
    """name -> (train, n_features): the real sets found in --data-dir, or one small
    synthetic set (``--smoke``)."""
    if args.smoke:
        return {"synth": (synth_set(tmp, "synth", 600, 20, density=0.4)[0], 20)}
    data_dir, sets = os.path.abspath(args.data_dir), {}
    for name in args.datasets:
        fname, d = DATASETS[name]
        train = os.path.join(data_dir, fname)
        if not os.path.exists(train):
            print(f"vs_liblinear: {train} not found; skipping {name}")
            continue
        sets[name] = (train, d)
    return sets


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--datasets", nargs="+", choices=sorted(DATASETS),
                    default=["a9a", "w8a", "ijcnn1", "phishing"])
    ap.add_argument("--data-dir", default=os.path.join(cb.REPO, "..", "shared", "data"))
    ap.add_argument("--workers", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--algos", nargs="+", default=["newton", "giant", "newton:cg:0.1", "giant:cg:0.01"],
                    help="NAME[:SOLVER[:CG_RTOL]], e.g. giant:cg:0.01")
    ap.add_argument("--repeat", type=int, default=1, help="mpiexec runs per cell (median)")
    ap.add_argument("--smoke", action="store_true", help=SMOKE_HELP + "; 1 worker, 2 algorithms")
    args = ap.parse_args(argv)
    if args.smoke:
        args.workers, args.algos, args.repeat = [1], ["newton", "giant:cg:0.01"], 1
    liblinear = have_liblinear()
    cb.TARGETS = (TARGET,)              # core_bench.tighten reads this module global
    cb.machine_header("distnewton vs LIBLINEAR and scikit-learn")
    print(f"Target: relative suboptimality (f - f*)/f* <= {TARGET:g}\n")
    t_start = time.perf_counter()
    rows, fs_rows = [], []
    with tempfile.TemporaryDirectory(prefix="vs_liblinear-") as tmp:
        for name, (train, d) in data_sets(args, tmp).items():
            files = (train, None, d)
            X, y = load_svmlight_file(train, n_features=d)
            X = X.tocsr()
            y = np.where(y > 0, 1.0, -1.0)
            n, lam = X.shape[0], 1.0 / X.shape[0]
            print(f"{name}: f* ... (load {cb.load()})", file=sys.stderr, flush=True)
            f_dn, f_sk = cb.f_star(tmp, name, files, X, y, lam)
            fs = min(f_dn, f_sk)
            fs_rows.append([name, str(n), str(d), f"{fs:.15f}", f"{(f_dn - f_sk) / abs(f_sk):.1e}"])
            obj = lambda w: cb.objective(X, y, w, lam)  # noqa: E731
            if liblinear:
                ll = cb.tighten("LIBLINEAR -s 0", name, [10.0 ** -k for k in range(1, 9)],
                                cb.liblinear_fitter(X, y, lam), obj, fs, "e")
                rows.append([name, "LIBLINEAR -s 0", "1", "-", ll[4], "-", "-", ll[-1]])
            for solver in ("newton-cholesky", "lbfgs"):
                r = cb.tighten(f"sklearn {solver}", name, [10.0 ** -k for k in range(2, 13)],
                               cb.sklearn_fitter(X, y, lam, solver), obj, fs, "tol")
                rows.append([name, f"sklearn {solver}", "1", "-", r[4], "-", "-", r[-1]])
            for k in args.workers:
                res = [dn_run(tmp, name, files, fs, a, k, args.repeat) for a in args.algos]
                reached = [r for r in res if r["inrun"] is not None]
                best = min(reached, key=lambda r: r["inrun"]) if reached else None
                for r in res:
                    note = "" if r["status"] == "converged" else f" ({r['status']})"
                    rows.append([name, f"distnewton {label(r['algo'])}" + (" *" if r is best else ""),
                                 str(r["k"]), "not reached" if r["rounds"] is None else str(r["rounds"]),
                                 "not reached" if r["inrun"] is None else f"{r['inrun']:.3f}",
                                 "-" if r["comm"] is None else f"{r['comm']:.3f}",
                                 f"{r['whole']:.2f}", f"{r['final']:.1e}{note}"])
            print(f"  {name} done at {time.perf_counter() - t_start:.0f} s", file=sys.stderr, flush=True)
    print("## f*\n")
    print(cb.markdown(["dataset", "n", "d", "f*", "rel. diff distnewton vs sklearn"], fs_rows))
    print(f"\n## Seconds to relative suboptimality {TARGET:g}\n")
    print(cb.markdown(["dataset", "method", "workers", "rounds", "seconds (in-run / fit call)",
                       "of which comm", "whole-process s", "final rel. subopt."], rows))
    print(f"\ndistnewton: `mpiexec -n K+1 {os.path.basename(sys.executable)} -m distnewton run CFG -q` "
          f"(rank 0 master + K workers), stopped at {TARGET:g}; in-run = history wall_time at the "
          "first row reaching the target; * = fastest distnewton algorithm for that K. "
          "LIBLINEAR/sklearn: median of 3 train/fit calls at the loosest setting reaching the target "
          "(in brackets); final rel. subopt. is that of the tightest setting tried."
          + ("" if liblinear else f" {NO_LIBLINEAR}."))
    print(f"\nTotal benchmark time: {time.perf_counter() - t_start:.0f} s; load average at the end "
          f"{cb.load()} (this script's own ranks count too)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
