"""distnewton against LIBLINEAR and scikit-learn: seconds to relative suboptimality 1e-6.

Problem: L2-regularised logistic regression without intercept, lambda = 1/n
(LIBLINEAR / scikit-learn C = 1/(lambda n) = 1), on a9a, w8a, ijcnn1, phishing and
news20 (binary: classes 1-10 against 11-20; 15,935 x 62,061).

Per data set:

* f*: as in ``core_bench.py`` (the smaller of distnewton ``newton`` at grad_rtol 1e-14
  and scikit-learn ``newton-cholesky`` at tol 1e-14); for news20 (d > 5000) distnewton
  ``newton`` with CG at grad_rtol 1e-14 and LIBLINEAR ``-e 1e-10``.
* LIBLINEAR ``-s 0`` single thread (``liblinear-official``, eps tightened 1e-1 .. 1e-8),
  LIBLINEAR multicore ``-s 0 -m 2`` (``liblinear-multicore``, in its own virtual
  environment, see ``_liblinear_venv.py``: it installs the same module name) and
  scikit-learn ``newton-cholesky`` (not for news20) / ``lbfgs`` (tol tightened
  1e-2 .. 1e-12): the loosest setting reaching 1e-6 and the median of 3 timings of the
  train/fit call (data conversion excluded).
* distnewton, every algorithm at its defaults (``newton``, ``giant``,
  ``adaptive_localnewton``: no solver keys), then explicit solvers (``newton`` with
  ``solver: cholesky``, ``solver: cg`` at the default forcing sequence and at
  ``cg_rtol: 0.1``; ``giant`` with local CG at ``cg_rtol: 0.01``), with 1 and 2 workers
  (``mpiexec -n 2`` / ``-n 3``, ``python -m distnewton``, which skips the pyenv shim;
  and 2 workers on ``mpiexec -n 2``, rank 0 hosting worker 0: ``run.master_shard``):
  in-run seconds (history ``wall_time`` at the first row with relative suboptimality
  <= 1e-6; logging-only evaluation excluded), the part of it in communication and load
  imbalance (history ``time_comm`` / ``time_idle``), which solver the Newton systems
  used (the Hessian-vector-product rounds of global Newton-CG, 0 for Cholesky or
  local solves: shows what ``solver: auto`` picked) and whole-process seconds of the
  mpiexec command. The runs
  stop at 1e-6 (``run.target_subopt``). The best distnewton row per worker count is
  marked with *.

Run (from anywhere; about 5-8 minutes on 2 idle cores with ``--repeat 3``):

    python benchmarks/vs_liblinear.py --setup-multicore     # once: the multicore venv
    python benchmarks/vs_liblinear.py [--datasets a9a w8a ijcnn1 phishing news20]
                                      [--data-dir DIR] [--workers 1 2] [--algos newton giant]
                                      [--repeat 1] [--multicore-python PY] [--smoke]

``--smoke``: a small synthetic set, 1 worker, newton and giant:cg:0.01 (seconds).
Without ``liblinear-official`` (or the multicore venv) those LIBLINEAR rows are left
out, saying so.

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
import _liblinear_venv as llv  # noqa: E402
from _smoke import NO_LIBLINEAR, SMOKE_HELP, have_liblinear, synth_set  # noqa: E402

TARGET = 1e-6
DATASETS = {  # name: (train file, n_features)
    "a9a": ("a9a.bz2", 123),
    "w8a": ("w8a.bz2", 300),
    "ijcnn1": ("ijcnn1.bz2", 22),
    "phishing": ("phishing.crlf.bz2", 68),
    "news20": ("news20.bz2", 62061),
}
#: multiclass sets made binary: these labels +1, all others -1 (news20: classes 1-10 vs 11-20)
POSITIVE = {"news20": list(range(1, 11))}
#: above this d no dense d x d solver is run (sklearn newton-cholesky; distnewton's f* by CG)
DENSE_D = 5000
#: the distnewton rows by default: every algorithm at its defaults, then explicit solvers
ALGOS = ["newton", "giant", "adaptive_localnewton", "newton:cholesky", "newton:cg",
         "newton:cg:0.1", "newton:tron", "giant:cg:0.01"]


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
    return sec["name"] + (f" ({extra})" if extra else " (defaults)")


def write_config(tmp, name, files, algo, run, tag, key=None):
    """The run's YAML (file ``key-tag.yaml``, key defaulting to the data set's name)."""
    cfg = cb.distnewton_config(tmp, files, key or name, tag, run)
    with open(cfg) as fh:
        doc = yaml.safe_load(fh)
    doc["algorithm"] = algo_section(algo)
    if name in POSITIVE:
        doc["data"]["positive_labels"] = POSITIVE[name]
    with open(cfg, "w") as fh:
        yaml.safe_dump(doc, fh)
    return cfg


def dn_run(tmp, name, files, fs, algo, workers, repeat, on_master=False):
    """``on_master``: ``mpiexec -n K`` with ``run.workers: K`` (rank 0 hosts worker 0,
    ``run.master_shard: auto``) instead of ``mpiexec -n K+1``."""
    run = {"max_rounds": 2000, "grad_rtol": 1e-14, "f_star": fs, "target_subopt": TARGET,
           "backend": "mpi"} | ({"workers": workers} if on_master else {})
    tag = algo.replace(":", "-") + ("-m" if on_master else "")
    cfg = write_config(tmp, name, files, algo, run, tag, f"{name}-k{workers}")
    out = os.path.join(tmp, f"{name}-{tag}-k{workers}.h5")
    ranks = workers if on_master else workers + 1
    cmd = ["mpiexec", "-n", str(ranks), sys.executable, "-m", "distnewton", "run", cfg,
           "-o", out, "-q", "--overwrite"]
    wholes, ins, parts, i = [], [], [], None
    for _ in range(repeat):
        wholes.append(cb.run_cli(cmd))
        loss, rounds, wall, status, k = cb.read_history(out)[:5]
        sub = (loss - fs) / abs(fs)
        (i,) = cb.first_reaching(sub, [TARGET])
        ins.append(None if i is None else float(wall[i]))
        if i is not None:
            with h5py.File(out) as f:
                h = f["history"]
                cgi = int(h["cg_iterations"][: i + 1].sum()) if "cg_iterations" in h else 0
                parts.append((float(h["time_comm"][i]), float(h["time_idle"][i]), cgi))
    whole = statistics.median(wholes)
    inrun = None if None in ins else statistics.median(ins)
    comm = statistics.median(p[0] for p in parts) if parts else None
    idle = statistics.median(p[1] for p in parts) if parts else None
    cg_iters = parts[-1][2] if parts else None
    print(f"  {name} {algo} K={workers}: {status}, in-run {inrun}, whole {whole:.2f} s, "
          f"load {cb.load()}", file=sys.stderr, flush=True)
    return {"algo": algo, "k": f"{k} (-n {ranks})", "rounds": None if i is None else int(rounds[i]),
            "inrun": inrun, "whole": whole, "final": float(sub[-1]), "status": status,
            "comm": comm, "idle": idle, "cg": cg_iters}


def f_star(tmp, name, files, X, y, lam, liblinear):
    """(distnewton's f*, the reference's f*).  Small d: ``core_bench.f_star`` (distnewton
    newton and scikit-learn newton-cholesky at 1e-14).  Large d (news20): distnewton
    newton (CG path) at grad_rtol 1e-14 and LIBLINEAR -e 1e-10 (scikit-learn lbfgs at
    tol 1e-12 without LIBLINEAR)."""
    if X.shape[1] <= DENSE_D:
        return cb.f_star(tmp, name, files, X, y, lam)
    cfg = write_config(tmp, name, files, "newton:cg:1e-10",
                       {"max_rounds": 5000, "grad_rtol": 1e-14}, "fstar")
    out = os.path.join(tmp, f"{name}-fstar.h5")
    cb.run_cli(["distnewton", "run", cfg, "--backend", "sim", "--workers", "2", "-o", out, "-q",
                "--overwrite"])
    f_dn = float(np.min(cb.read_history(out)[0]))
    if liblinear:
        w = cb.liblinear_fitter(X, y, lam)(1e-10)[0]
    else:
        w = cb.sklearn_fitter(X, y, lam, "lbfgs")(1e-12)[0]
    return f_dn, cb.objective(X, y, w, lam)


def multicore_rows(name, X, y, lam, fs, threads, tmp, python):
    """LIBLINEAR multicore ``-m threads`` (its own venv): loosest eps reaching the target,
    median of 3 train calls there."""
    eps = [10.0 ** -k for k in range(1, 9)]
    res = llv.fit_all(X, y, 1.0 / (lam * X.shape[0]), eps, threads, 3, tmp, python)
    subs = [(cb.objective(X, y, w, lam) - fs) / abs(fs) for _, w, _ in res]
    hit = next((j for j, s in enumerate(subs) if s <= TARGET), None)
    cell = "not reached" if hit is None else \
        f"{statistics.median(res[hit][2]):.3f} (e={res[hit][0]:.0e})"
    return [name, f"LIBLINEAR multicore -s 0 -m {threads}", str(threads), "-", cell, "-", "-",
            "-", f"{subs[-1]:.2e}"]


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


def load_binary(name, train, d):
    X, y = load_svmlight_file(train, n_features=d)
    if name in POSITIVE:
        y = np.where(np.isin(y, POSITIVE[name]), 1.0, -1.0)
    return X.tocsr(), np.where(y > 0, 1.0, -1.0)


def dn_rows(name, res):
    reached = [r for r in res if r["inrun"] is not None]
    best = min(reached, key=lambda r: r["inrun"]) if reached else None
    rows = []
    for r in res:
        note = "" if r["status"] == "converged" else f" ({r['status']})"
        rows.append([name, f"distnewton {label(r['algo'])}" + (" *" if r is best else ""),
                     str(r["k"]), "not reached" if r["rounds"] is None else str(r["rounds"]),
                     "not reached" if r["inrun"] is None else f"{r['inrun']:.3f}",
                     "-" if r["comm"] is None else f"{r['comm']:.3f} / {r['idle']:.3f}",
                     "-" if r["cg"] is None else str(r["cg"]),
                     f"{r['whole']:.2f}", f"{r['final']:.1e}{note}"])
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--datasets", nargs="+", choices=sorted(DATASETS), default=list(DATASETS))
    ap.add_argument("--data-dir", default=os.path.join(cb.REPO, "..", "shared", "data"))
    ap.add_argument("--workers", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--algos", nargs="+", default=ALGOS,
                    help="NAME[:SOLVER[:CG_RTOL]], e.g. giant:cg:0.01")
    ap.add_argument("--repeat", type=int, default=1, help="mpiexec runs per cell (median)")
    ap.add_argument("--no-master-shard", dest="master_shard", action="store_false",
                    help="leave out the rows of K >= 2 workers on mpiexec -n K (rank 0 "
                         "hosting worker 0)")
    ap.add_argument("--multicore-python", default=llv.PYTHON,
                    help="python of the venv with liblinear-multicore (--setup-multicore)")
    ap.add_argument("--setup-multicore", action="store_true",
                    help=f"make that venv ({llv.VENV}; pip install liblinear-multicore) and exit")
    ap.add_argument("--smoke", action="store_true", help=SMOKE_HELP + "; 1 worker, 2 algorithms")
    args = ap.parse_args(argv)
    if args.setup_multicore:
        llv.setup(os.path.dirname(os.path.dirname(args.multicore_python)))
        return 0
    if args.smoke:
        args.workers, args.algos, args.repeat = [1], ["newton", "giant:cg:0.01"], 1
    liblinear = have_liblinear()
    multicore = llv.version(args.multicore_python)
    cb.TARGETS = (TARGET,)              # core_bench.tighten reads this module global
    cb.machine_header("distnewton vs LIBLINEAR and scikit-learn")
    print(f"- liblinear-multicore: {multicore or 'not found (--setup-multicore)'}\n")
    print(f"Target: relative suboptimality (f - f*)/f* <= {TARGET:g}\n")
    t_start = time.perf_counter()
    rows, fs_rows = [], []
    with tempfile.TemporaryDirectory(prefix="vs_liblinear-") as tmp:
        for name, (train, d) in data_sets(args, tmp).items():
            files = (train, None, d)
            X, y = load_binary(name, train, d)
            n, lam = X.shape[0], 1.0 / X.shape[0]
            print(f"{name}: f* ... (load {cb.load()})", file=sys.stderr, flush=True)
            f_dn, f_ref = f_star(tmp, name, files, X, y, lam, liblinear)
            fs = min(f_dn, f_ref)
            fs_rows.append([name, str(n), str(d), f"{fs:.15f}", f"{(f_dn - f_ref) / abs(f_ref):.1e}"])
            obj = lambda w: cb.objective(X, y, w, lam)  # noqa: E731
            if liblinear:
                ll = cb.tighten("LIBLINEAR -s 0", name, [10.0 ** -k for k in range(1, 9)],
                                cb.liblinear_fitter(X, y, lam), obj, fs, "e")
                rows.append([name, "LIBLINEAR -s 0", "1", "-", ll[4], "-", "-", "-", ll[-1]])
            if multicore:
                rows.append(multicore_rows(name, X, y, lam, fs, 2, tmp, args.multicore_python))
            for solver in ("newton-cholesky", "lbfgs")[int(d > DENSE_D):]:
                r = cb.tighten(f"sklearn {solver}", name, [10.0 ** -k for k in range(2, 13)],
                               cb.sklearn_fitter(X, y, lam, solver), obj, fs, "tol")
                rows.append([name, f"sklearn {solver}", "1", "-", r[4], "-", "-", "-", r[-1]])
            algos = [a for a in args.algos  # a dense d x d Hessian: refused (exit 2)
                     if d <= DENSE_D or algo_section(a).get("solver") != "cholesky"]
            for k in args.workers:
                rows += dn_rows(name, [dn_run(tmp, name, files, fs, a, k, args.repeat)
                                       for a in algos])
                if k >= 2 and args.master_shard:
                    rows += dn_rows(name, [dn_run(tmp, name, files, fs, a, k, args.repeat, True)
                                           for a in algos])
            print(f"  {name} done at {time.perf_counter() - t_start:.0f} s", file=sys.stderr, flush=True)
    print("## f*\n")
    print(cb.markdown(["dataset", "n", "d", "f*", "rel. diff distnewton vs reference"], fs_rows))
    print(f"\n## Seconds to relative suboptimality {TARGET:g}\n")
    print(cb.markdown(["dataset", "method", "workers / threads", "rounds",
                       "seconds (in-run / train call)", "of which comm / idle", "hvp rounds",
                       "whole-process s", "final rel. subopt."], rows))
    print(f"\ndistnewton: `mpiexec -n K+1 {os.path.basename(sys.executable)} -m distnewton run CFG -q` "
          f"(rank 0 master + K workers; rows `K (-n K)`: `run.workers: K` on K ranks, rank 0 "
          f"hosting worker 0 as well, `run.master_shard: auto`), stopped at {TARGET:g}; in-run = history wall_time at the "
          "first row reaching the target (median of --repeat runs); comm / idle = the history's "
          "time_comm / time_idle there; hvp rounds: Hessian-vector-product rounds of global "
          "Newton-CG to the target (0: Cholesky on the master, or local solves); * = fastest distnewton "
          "row for that K. f* reference: scikit-learn newton-cholesky at tol 1e-14 (d <= "
          f"{DENSE_D}) or LIBLINEAR -e 1e-10. LIBLINEAR/sklearn: median of 3 train/fit calls at "
          "the loosest setting reaching the target (in brackets); final rel. subopt. is that of "
          "the tightest setting tried. LIBLINEAR multicore: `liblinear-multicore` in its own venv."
          + ("" if liblinear else f" {NO_LIBLINEAR}.")
          + ("" if multicore else " LIBLINEAR multicore rows skipped: no venv (--setup-multicore)."))
    print(f"\nTotal benchmark time: {time.perf_counter() - t_start:.0f} s; load average at the end "
          f"{cb.load()} (this script's own ranks count too)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
