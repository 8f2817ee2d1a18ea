"""Core benchmark: distnewton (newton, giant, disco, dane, gd over real MPI) against
LIBLINEAR and scikit-learn on a9a and w8a: the method-comparison table.

Problem: L2-regularised logistic regression without intercept,
    f(w) = mean_j log(1 + exp(-y_j x_j.w)) + (lambda/2) ||w||^2,   lambda = 1/n,
i.e. LIBLINEAR / scikit-learn with C = 1/(lambda n) = 1.

What it measures, per data set:

* f*: distnewton ``newton`` (sim backend, grad_rtol 1e-14), cross-checked against
  scikit-learn ``newton-cholesky`` (tol 1e-14); the smaller of the two is used as f*.
* distnewton ``newton``, ``giant``, ``disco``, ``dane``, ``gd`` (``--methods``), each
  at its defaults, launched for real as
  ``mpiexec -n K+1 distnewton run CONFIG -o FILE -q --overwrite`` (K workers): from the
  HDF5 history, the communication rounds, the bytes (down + up, MiB) and the in-run
  ``wall_time`` (seconds, logging excluded) at the first iteration whose relative
  suboptimality (f - f*)/f* reaches 1e-6 and 1e-10, plus the whole-process time of the mpiexec command (start-up, data
  loading and logging-only evaluation included). Runs stop at 1e-10 (run.target_subopt);
  gd is capped at --gd-rounds rounds.
* LIBLINEAR (``liblinear-official``, ``-s 0 -c 1 -B -1 -q``) with -e tightened
  1e-2 .. 1e-8, and scikit-learn ``newton-cholesky`` / ``lbfgs`` with tol tightened
  1e-2 .. 1e-12: for each target the loosest setting that reaches it and the median of
  3 timings of that fit/train call alone (data conversion excluded). The setting is
  shown in brackets.

Run (from the repo root or anywhere; ~5 minutes on 2 cores, ``--quick`` ~1 minute,
``--smoke`` seconds on a small synthetic set, 1 worker):

    python benchmarks/core_bench.py [--datasets a9a w8a] [--data-dir DIR] [--workers 4]
                                    [--methods newton giant disco dane gd]
                                    [--gd-rounds 10000] [--quick] [--smoke]

Needs the ``bench`` extra (``pip install -e '.[bench]'``) for the LIBLINEAR rows.
Do not run anything else heavy at the same time: the timings are wall-clock.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata as md
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

import h5py
import numpy as np
import yaml
from sklearn.datasets import load_svmlight_file
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _smoke import NO_LIBLINEAR, SMOKE_HELP, have_liblinear, synth_set  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATASETS = {  # name: (train file, test file or None, n_features)
    "a9a": ("a9a.bz2", "a9a.t.bz2", 123),
    "w8a": ("w8a.bz2", None, 300),
}
TARGETS = (1e-6, 1e-10)


def objective(X, y, w, lam):
    return float(np.mean(np.logaddexp(0.0, -y * (X @ w))) + 0.5 * lam * (w @ w))


def load():
    with open("/proc/loadavg") as fh:
        return " ".join(fh.read().split()[:3])


def machine_header(title="distnewton core benchmark"):
    """Print the title, date, commit, machine, load and package versions."""
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), cpu)
    except OSError:
        pass
    nproc = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    vers = []
    for pkg in ("distnewton", "numpy", "scipy", "scikit-learn", "liblinear-official", "mpi4py", "mpich", "h5py"):
        try:
            vers.append(f"{pkg} {md.version(pkg)}")
        except md.PackageNotFoundError:
            vers.append(f"{pkg} (not installed)")
    git = subprocess.run(["git", "-C", REPO, "describe", "--always", "--dirty"],
                         capture_output=True, text=True).stdout.strip() or "unknown"
    print(f"# {title}\n")
    print(f"- date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}, commit {git}")
    print(f"- machine: {platform.node()}, nproc {nproc}, CPU: {cpu}, load average {load()}")
    print(f"- python {platform.python_version()}; " + ", ".join(vers) + "\n", flush=True)


def distnewton_config(tmp, ds_files, name, algo, run):
    train, test, d = ds_files
    cfg = {"data": {"train": train, "n_features": d, "partition": "iid", "seed": 0},
           "model": {"loss": "logistic", "lambda": "1/n", "fit_intercept": False},
           "algorithm": {"name": algo}, "run": run}
    if test:
        cfg["data"]["test"] = test
    path = os.path.join(tmp, f"{name}-{algo}.yaml")
    with open(path, "w") as fh:
        yaml.safe_dump(cfg, fh)
    return path


def run_cli(cmd):
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return elapsed


def read_history(path):
    with h5py.File(path, "r") as f:
        h = f["history"]
        return (h["loss"][:], h["comm_rounds"][:], h["wall_time"][:],
                str(f.attrs["status"]), int(f.attrs["n_workers"]),
                h["bytes_down"][:] + h["bytes_up"][:])


def first_reaching(subopt, targets):
    """index of the first entry with subopt <= t, for every target (None if never)."""
    out = []
    for t in targets:
        hit = np.flatnonzero(subopt <= t)
        out.append(int(hit[0]) if hit.size else None)
    return out


def f_star(tmp, name, files, X, y, lam):
    cfg = distnewton_config(tmp, files, name, "newton", {"max_rounds": 400, "grad_rtol": 1e-14})
    out = os.path.join(tmp, f"{name}-fstar.h5")
    run_cli(["distnewton", "run", cfg, "--backend", "sim", "--workers", "4", "-o", out, "-q", "--overwrite"])
    f_dn = float(np.min(read_history(out)[0]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = LogisticRegression(C=1.0 / (lam * X.shape[0]), fit_intercept=False,
                                 solver="newton-cholesky", tol=1e-14, max_iter=1000).fit(X, y)
    w = clf.coef_.ravel() if clf.classes_[1] == 1 else -clf.coef_.ravel()
    f_sk = objective(X, y, w, lam)
    return f_dn, f_sk


#: each method's round cap (gd's is --gd-rounds)
ROUND_CAPS = {"newton": 400, "giant": 600, "disco": 1500, "dane": 600}


def distnewton_rows(tmp, name, files, fs, workers, gd_rounds, methods):
    rows = []
    for algo in methods:
        max_rounds = ROUND_CAPS.get(algo, gd_rounds)
        run = {"max_rounds": max_rounds, "grad_rtol": 1e-14, "f_star": fs,
               "target_subopt": min(TARGETS), "backend": "mpi"}
        cfg = distnewton_config(tmp, files, name, algo, run)
        out = os.path.join(tmp, f"{name}-{algo}.h5")
        whole = run_cli(["mpiexec", "-n", str(workers + 1), "distnewton", "run", cfg,
                         "-o", out, "-q", "--overwrite"])
        loss, rounds, wall, status, k, nbytes = read_history(out)
        sub = (loss - fs) / abs(fs)
        cells = []
        for i in first_reaching(sub, TARGETS):
            cells += (["not reached"] * 3 if i is None else
                      [str(int(rounds[i])), f"{nbytes[i] / 2**20:.3f}", f"{wall[i]:.3f}"])
        note = "" if status == "converged" else f" ({status}, {int(rounds[-1])} rounds)"
        rows.append([name, f"distnewton {algo}", str(k), *cells, f"{whole:.2f}",
                     f"{sub[-1]:.2e}{note}"])
        print(f"  {name} {algo}: {status}, {int(rounds[-1])} rounds, whole {whole:.1f} s", file=sys.stderr, flush=True)
    return rows


def tighten(label, name, settings, fit, obj, fs, tag):
    """fit(setting) -> (w, seconds): loosest setting reaching each target, median of 3 timings."""
    best, sub = [None] * len(TARGETS), None
    for s in settings:
        sub = (obj(fit(s)[0]) - fs) / abs(fs)
        for j, t in enumerate(TARGETS):
            if best[j] is None and sub <= t:
                best[j] = s
        if best[-1] is not None:
            break
    cells, cache = [], {}
    for s in best:
        if s is None:
            cells += ["-", "-", "not reached"]
            continue
        if s not in cache:
            cache[s] = statistics.median(fit(s)[1] for _ in range(3))
        cells += ["-", "-", f"{cache[s]:.3f} ({tag}={s:.0e})"]
    return [name, label, "1", *cells, "-", f"{sub:.2e}"]


def liblinear_fitter(X, y, lam):
    from liblinear.liblinearutil import parameter, problem, train
    prob = problem(y, X)                         # conversion once, not timed
    C = 1.0 / (lam * X.shape[0])

    def run(eps):
        param = parameter(f"-s 0 -c {C!r} -B -1 -e {eps!r} -q")
        t0 = time.perf_counter()
        model = train(prob, param)
        dt = time.perf_counter() - t0
        w = np.array(model.get_decfun()[0])
        # w scores get_labels()[0]: the first label seen in old LIBLINEAR, +1 for {-1, +1}
        # labels since 2.4x. Negate when it scores -1; the objective confirms the sign.
        if model.get_labels()[0] != 1:
            w = -w
        assert objective(X, y, w, lam) < objective(X, y, -w, lam), "LIBLINEAR sign"
        return w, dt
    return run


def sklearn_fitter(X, y, lam, solver):
    C = 1.0 / (lam * X.shape[0])

    def run(tol):
        clf = LogisticRegression(C=C, fit_intercept=False, solver=solver, tol=tol, max_iter=100000)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            t0 = time.perf_counter()
            clf.fit(X, y)
            dt = time.perf_counter() - t0
        w = clf.coef_.ravel()
        return (w if clf.classes_[1] == 1 else -w), dt
    return run


def markdown(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def data_sets(args, data_dir, tmp):
    """name -> (train, test or None, n_features): the real sets found in ``data_dir``,
    or one small synthetic set (``--smoke``)."""
    if args.smoke:
        train, test = synth_set(tmp, "synth", 600, 20, density=0.4, n_test=200)
        return {"synth": (train, test, 20)}
    sets = {}
    for name in args.datasets:
        train, test, d = DATASETS[name]
        train = os.path.join(data_dir, train)
        test = os.path.join(data_dir, test) if test else None
        if not os.path.exists(train):
            print(f"core_bench: {train} not found; skipping {name}")
            continue
        sets[name] = (train, test if test and os.path.exists(test) else None, d)
    return sets


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--datasets", nargs="+", choices=sorted(DATASETS), default=["a9a", "w8a"])
    ap.add_argument("--data-dir", default=os.path.join(REPO, "..", "shared", "data"))
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--methods", nargs="+", choices=["newton", "giant", "disco", "dane", "gd"],
                    default=["newton", "giant", "disco", "dane", "gd"],
                    help="the distnewton methods run (each at its defaults)")
    ap.add_argument("--gd-rounds", type=int, default=10000, help="gd's run.max_rounds cap")
    ap.add_argument("--quick", action="store_true", help="a9a only, fewer settings, gd 2000 rounds")
    ap.add_argument("--smoke", action="store_true", help=SMOKE_HELP)
    args = ap.parse_args(argv)
    data_dir = os.path.abspath(args.data_dir)
    if not args.smoke and not os.path.isdir(data_dir):
        print(f"core_bench: data directory {data_dir} not found; skipping (use --data-dir "
              "or --smoke)")
        return 0
    if shutil.which("mpiexec") is None or shutil.which("distnewton") is None:
        print("core_bench: mpiexec or distnewton not on PATH; skipping")
        return 0
    gd_rounds = args.gd_rounds
    eps_list = [10.0 ** -k for k in range(2, 9)]
    tol_list = [10.0 ** -k for k in range(2, 13)]
    if args.quick:
        args.datasets, gd_rounds = ["a9a"], min(gd_rounds, 2000)
        eps_list, tol_list = [1e-2, 1e-4, 1e-6, 1e-8], [1e-3, 1e-6, 1e-9, 1e-12]
    if args.smoke:
        args.workers, gd_rounds = 1, 30
        eps_list, tol_list = [1e-2, 1e-6, 1e-8], [1e-3, 1e-8, 1e-12]
    liblinear = have_liblinear()
    machine_header()
    print(f"- arguments: {' '.join(sys.argv[1:] if argv is None else argv) or '(none)'}\n")
    fs_rows, rows = [], []
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="core_bench-") as tmp:
        for name, files in data_sets(args, data_dir, tmp).items():
            train, _, d = files
            X, y = load_svmlight_file(train, n_features=d)
            X = X.tocsr()
            y = np.where(y > 0, 1.0, -1.0)
            n, lam = X.shape[0], 1.0 / X.shape[0]
            print(f"{name}: f* ...", file=sys.stderr, flush=True)
            f_dn, f_sk = f_star(tmp, name, files, X, y, lam)
            fs = min(f_dn, f_sk)
            fs_rows.append([name, str(n), str(d), f"{lam:.4e}", f"{f_dn:.15f}", f"{f_sk:.15f}",
                            f"{(f_dn - f_sk) / abs(f_sk):.2e}"])
            rows += distnewton_rows(tmp, name, files, fs, args.workers, gd_rounds, args.methods)
            obj = lambda w: objective(X, y, w, lam)  # noqa: E731
            if liblinear:
                rows.append(tighten("LIBLINEAR -s 0", name, eps_list, liblinear_fitter(X, y, lam),
                                    obj, fs, "e"))
            for solver in ("newton-cholesky", "lbfgs"):
                rows.append(tighten(f"sklearn {solver}", name, tol_list,
                                    sklearn_fitter(X, y, lam, solver), obj, fs, "tol"))
            print(f"  {name} done at {time.perf_counter() - t_start:.0f} s", file=sys.stderr, flush=True)
    print("## f* (L2-regularised logistic regression, lambda = 1/n, no intercept)\n")
    print(markdown(["dataset", "n", "d", "lambda", "f* distnewton newton (sim)",
                    "f* sklearn newton-cholesky", "rel. diff"], fs_rows))
    print("\nf* used below: the smaller of the two.\n")
    print("## Time to relative suboptimality (f - f*)/f*\n")
    print(markdown(["dataset", "method", "workers", "rounds to 1e-6", "MiB to 1e-6",
                    "seconds to 1e-6 (in-run)", "rounds to 1e-10", "MiB to 1e-10",
                    "seconds to 1e-10 (in-run)", "whole-process seconds",
                    "final rel. subopt."], rows))
    print(f"\ndistnewton: `mpiexec -n {args.workers + 1}` (rank 0 master + {args.workers} workers), "
          f"runs stop at 1e-10; gd capped at {gd_rounds} rounds. MiB: the algorithm's bytes down + up "
          "(star network, counted by distnewton; disco's preconditioner rounds go to one worker). "
          "In-run seconds: history wall_time "
          "(logging-only evaluation excluded). Whole-process: the mpiexec command. LIBLINEAR/sklearn: "
          "median of 3 train/fit calls at the loosest setting (in brackets) reaching the target; "
          "final rel. subopt. is that of the tightest setting tried."
          + ("" if liblinear else f" {NO_LIBLINEAR}."))
    print(f"\nTotal benchmark time: {time.perf_counter() - t_start:.0f} s; load average at the end "
          f"{load()} (this script's own ranks count too)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
