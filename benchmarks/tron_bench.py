"""Trust region against line search: ``newton`` with ``solver: tron`` and ``solver: cg``.

Problem: L2-regularised logistic regression without intercept, lambda = 1/n, on a9a,
w8a, ijcnn1, phishing and news20 (binary: classes 1-10 against 11-20), 2 workers.

Per data set:

* f*: as in ``vs_liblinear.py`` (the smaller of a tight distnewton solve and a tight
  scikit-learn / LIBLINEAR one);
* ``newton`` with ``solver: cg`` (line-search Newton-CG at its default CG tolerance)
  and ``solver: tron`` (trust-region Newton-CG, LIBLINEAR's TRON), stopped at relative
  suboptimality 1e-6 (``run.target_subopt``), on the sim backend (2 simulated workers)
  and over ``mpiexec -n 3`` (2 worker ranks): Hessian-vector-product rounds (the
  history's ``cg_iterations`` summed), all rounds, iterations (TRON: rejected steps
  too, counted apart) and in-run seconds (history ``wall_time``, median of
  ``--repeat`` runs) at the first row at or below 1e-6; the counts of the two backends must agree (same iterates);
* at LIBLINEAR's own stopping rule (``run.liblinear_eps: 0.01``, LIBLINEAR's default
  -e): the same counts and the relative suboptimality reached (sim backend);
* LIBLINEAR ``-s 0`` (``liblinear-official``; since 2.40 a line-search Newton method,
  not TRON): its CG iterations summed from its verbose log, at the loosest -e
  (1e-1 .. 1e-8) reaching 1e-6, and at -e 0.01.

Run (about 4 minutes on 2 idle cores):

    python benchmarks/tron_bench.py [--datasets a9a w8a ijcnn1 phishing news20]
                                    [--data-dir DIR] [--repeat 3] [--out FILE] [--smoke]

Writes the tables to ``benchmarks/results/tron_bench.md`` too (``--smoke``: stdout
only; a small synthetic set, LIBLINEAR left out).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import core_bench as cb  # noqa: E402
import vs_liblinear as vl  # noqa: E402
from _smoke import NO_LIBLINEAR, SMOKE_HELP, have_liblinear  # noqa: E402

TARGET = 1e-6
WORKERS = 2
SOLVERS = ("cg", "tron")
LIBLINEAR_EPS = 0.01
RESULTS = os.path.join(cb.REPO, "benchmarks", "results", "tron_bench.md")

#: LIBLINEAR in a child process (its verbose log goes to the C stdout): one train
#: call per -e, each after a marker line; the weights (scoring +1) into an npz.
CHILD = r"""
import sys, json
import numpy as np
from sklearn.datasets import load_svmlight_file
from liblinear.liblinearutil import parameter, problem, train
train_file, d, positive, C, eps_list, out = sys.argv[1:]
X, y = load_svmlight_file(train_file, n_features=int(d))
pos = json.loads(positive)
y = np.where(np.isin(y, pos), 1.0, -1.0) if pos else np.where(y > 0, 1.0, -1.0)
prob, ws = problem(y, X), {}
for i, e in enumerate(json.loads(eps_list)):
    print(f"=== eps {e!r}", flush=True)
    m = train(prob, parameter(f"-s 0 -c {C} -B -1 -e {e!r}"))
    w = np.array(m.get_decfun()[0])
    ws[f"w{i}"] = w if m.get_labels()[0] == 1 else -w
np.savez(out, **ws)
"""


def liblinear_cg(tmp, name, train, d, lam, n, eps_list):
    """[(eps, w, CG iterations, Newton iterations)] from LIBLINEAR's verbose log."""
    out = os.path.join(tmp, f"{name}-ll.npz")
    proc = subprocess.run([sys.executable, "-c", CHILD, train, str(d),
                           repr(vl.POSITIVE.get(name, [])), repr(1.0 / (lam * n)),
                           repr(list(eps_list)), out], capture_output=True, text=True,
                          check=True)
    logs = proc.stdout.split("=== eps ")[1:]
    with np.load(out) as ws:
        res = [(e, ws[f"w{i}"], sum(int(c) for c in re.findall(r"CG\s+(\d+)", log)),
                len(re.findall(r"^iter ", log, re.M))) for i, (e, log) in enumerate(zip(eps_list, logs))]
    os.remove(out)
    return res


def run(tmp, name, files, solver, backend, run_keys):
    """One distnewton run (``newton``, ``solver``, 2 workers); returns its history."""
    tag = f"{solver}-{backend}-{'ll' if 'liblinear_eps' in run_keys else 't'}"
    keys = {"max_rounds": 3000, "grad_rtol": 1e-14, **run_keys, "backend": backend}
    cfg = vl.write_config(tmp, name, files, f"newton:{solver}", keys, tag, f"{name}-{tag}")
    out = os.path.join(tmp, f"{name}-{tag}.h5")
    cmd = [sys.executable, "-m", "distnewton", "run", cfg, "-o", out, "-q", "--overwrite"]
    if backend == "mpi":
        cmd = ["mpiexec", "-n", str(WORKERS + 1)] + cmd
    else:
        cmd += ["--workers", str(WORKERS)]
    whole = cb.run_cli(cmd)
    with h5py.File(out) as f:
        h = {k: f["history"][k][()] for k in f["history"]}
        h["status"] = str(f.attrs["status"])
    os.remove(out)
    print(f"  {name} {solver} {backend}: {h['status']}, {h['comm_rounds'][-1]} rounds, "
          f"whole {whole:.2f} s, load {cb.load()}", file=sys.stderr, flush=True)
    return h


def counts(h, fs, i=None):
    """(hvp rounds, rounds, iterations, rejected steps, seconds, rel. subopt) at row i
    (default: the first at or below TARGET; None when never reached)."""
    sub = (h["loss"] - fs) / abs(fs)
    if i is None:
        hit = np.flatnonzero(sub <= TARGET)
        if hit.size == 0:
            return None
        i = int(hit[0])
    rejected = int(np.sum(h["step_size"][1:i + 1] == 0.0))
    return (int(h["cg_iterations"][: i + 1].sum()), int(h["comm_rounds"][i]),
            int(h["iteration"][i]), rejected, float(h["wall_time"][i]), float(sub[i]))


def timed(tmp, name, files, solver, backend, fs, repeat):
    """:func:`counts` to TARGET, the seconds the median of ``repeat`` runs (whose
    counts must agree: the iterates do not depend on timing)."""
    runs = [counts(run(tmp, name, files, solver, backend, {"f_star": fs,
                                                          "target_subopt": TARGET}), fs)
            for _ in range(repeat)]
    if None in runs:
        return None
    assert all(r[:4] == runs[0][:4] for r in runs), runs
    return runs[0][:4] + (statistics.median(r[4] for r in runs),) + runs[0][5:]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--datasets", nargs="+", choices=sorted(vl.DATASETS), default=list(vl.DATASETS))
    ap.add_argument("--data-dir", default=os.path.join(cb.REPO, "..", "shared", "data"))
    ap.add_argument("--out", default=RESULTS, help="Markdown file for the tables")
    ap.add_argument("--repeat", type=int, default=3, help="runs per timed cell (median)")
    ap.add_argument("--smoke", action="store_true", help=SMOKE_HELP)
    args = ap.parse_args(argv)
    if args.smoke:
        args.repeat = 1
    liblinear = have_liblinear() and not args.smoke
    lines = []

    def emit(text=""):
        print(text, flush=True)
        lines.append(text)

    header = io.StringIO()
    with contextlib.redirect_stdout(header):
        cb.machine_header("newton: trust region (solver tron) against line search (solver cg)")
    emit(header.getvalue().rstrip("\n") + "\n")
    t_start = time.perf_counter()
    main_rows, ll_rows, fs_rows, verdict = [], [], [], []
    with tempfile.TemporaryDirectory(prefix="tron_bench-") as tmp:
        for name, (train, d) in vl.data_sets(args, tmp).items():
            files = (train, None, d)
            X, y = vl.load_binary(name, train, d)
            n, lam = X.shape[0], 1.0 / X.shape[0]
            f_dn, f_ref = vl.f_star(tmp, name, files, X, y, lam, liblinear)
            fs = min(f_dn, f_ref)
            fs_rows.append([name, str(n), str(d), f"{fs:.15f}"])
            hvps = {}
            for solver in SOLVERS:
                got = {b: timed(tmp, name, files, solver, b, fs, args.repeat)
                       for b in ("sim", "mpi")}
                sim, mpi = got["sim"], got["mpi"]
                same = sim is not None and mpi is not None and sim[:4] == mpi[:4]
                hvps[solver] = None if sim is None else sim[0]
                main_rows.append([name, f"newton solver {solver}"] + (
                    ["not reached"] * 4 if sim is None else
                    [str(sim[0]), str(sim[1]), f"{sim[2]} ({sim[3]} rejected)" if solver == "tron"
                     else str(sim[2]), f"{sim[4]:.3f}"])
                    + ["not reached" if mpi is None else f"{mpi[4]:.3f}", "yes" if same else "NO"])
                h = run(tmp, name, files, solver, "sim", {"grad_rtol": None,
                                                          "liblinear_eps": LIBLINEAR_EPS})
                c = counts(h, fs, len(h["loss"]) - 1)
                ll_rows.append([name, f"newton solver {solver}, run.liblinear_eps {LIBLINEAR_EPS}",
                                str(c[0]), str(c[1]), f"{c[5]:.1e}"])
            if hvps["cg"] is not None and hvps["tron"] is not None:
                verdict.append((name, hvps["tron"] < hvps["cg"]))
            if liblinear:
                eps = [10.0 ** -k for k in range(1, 9)]
                res = liblinear_cg(tmp, name, train, d, lam, n, eps)
                subs = [(cb.objective(X, y, w, lam) - fs) / abs(fs) for _, w, _, _ in res]
                hit = next((j for j, s in enumerate(subs) if s <= TARGET), None)
                main_rows.append([name, "LIBLINEAR -s 0 (line-search Newton)"] + (
                    ["not reached"] * 4 if hit is None else
                    [str(res[hit][2]), "-", str(res[hit][3]), f"(-e {res[hit][0]:.0e})"])
                    + ["-", "-"])
                j = eps.index(LIBLINEAR_EPS)
                ll_rows.append([name, f"LIBLINEAR -s 0 -e {LIBLINEAR_EPS}", str(res[j][2]), "-",
                                f"{subs[j]:.1e}"])
            print(f"  {name} done at {time.perf_counter() - t_start:.0f} s", file=sys.stderr,
                  flush=True)
    emit(f"Logistic regression, lambda = 1/n, {WORKERS} workers, iid partition.\n")
    emit("## f*\n")
    emit(cb.markdown(["dataset", "n", "d", "f*"], fs_rows))
    emit(f"\n## To relative suboptimality {TARGET:g}\n")
    emit(cb.markdown(["dataset", "method", "hvp rounds", "rounds", "iterations", "sim s",
                      f"mpiexec -n {WORKERS + 1} s", "sim = mpi counts"], main_rows))
    emit("\nhvp rounds: Hessian-vector-product rounds (one per CG iteration); rounds: all "
         "algorithm rounds (TRON: #CG + 1 per iteration, line search: #CG + 2); seconds: "
         "history wall_time at the first row at or below the target, median of "
         f"{args.repeat} runs (the counts of every run agree). LIBLINEAR: CG "
         "iterations from its verbose log at the loosest -e reaching the target (in "
         "brackets), one process." + ("" if liblinear else f" {NO_LIBLINEAR}."))
    emit(f"\n## At LIBLINEAR's stopping rule (eps {LIBLINEAR_EPS})\n")
    emit(cb.markdown(["dataset", "method", "hvp rounds", "rounds", "rel. subopt."], ll_rows))
    fewer = [name for name, yes in verdict if yes]
    emit(f"\ntron needs fewer Hessian-vector products than cg to {TARGET:g} on {len(fewer)} of "
         f"{len(verdict)} sets{': ' + ', '.join(fewer) if fewer else ''}.")
    emit(f"\nTotal benchmark time: {time.perf_counter() - t_start:.0f} s; load average at the "
         f"end {cb.load()}")
    if not args.smoke:
        with open(args.out, "w") as fh:
            fh.write("\n".join(lines) + "\n")
        print(f"\n(written to {args.out})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
