"""Scale and start-up: Hessian-free runs on news20 and on d = 1,000,000, and start-up time.

(a) news20 (15,935 x 62,061, classes 1-10 -> +1, 11-20 -> -1), logistic, lambda = 1/n, and
    the synthetic set of ``configs/synth1m/giant.yaml`` (150,000 x 1,000,000, ~30 non-zeros
    per row, lambda = 1e-7; generated into --synth-dir on first use), all with the default
    ``solver: auto`` (CG on Hessian-vector products, as d > cg_threshold): giant and
    adaptive_localnewton (global Newton-CG directions, as every shard has n_k < d: see
    distnewton/algorithms/giant.py) and newton (Newton-CG), with K = --workers and K = 2
    workers (``mpiexec -n K+1``); on news20 also giant with ``direction: local`` (the
    paper's averaged local directions) to show why the fallback exists.  Each run has a
    round cap and a wall-clock cap (SIGUSR1: distnewton stops cleanly and writes the
    file).  Reported: rounds and in-run seconds to relative suboptimality 1e-6, the best
    reached, iterations and CG iterations, and peak resident memory (VmHWM) of the
    master and of the largest worker, sampled from /proc/<pid>/status every 0.1 s, next
    to the largest shard's CSR size.  f*: news20 LIBLINEAR -s 0 -e 1e-9 (C = 1), synth the
    config's value (newton to ||grad|| 2e-14), or the best distnewton loss if lower.
(b) start-up on a9a with ``mpiexec -n 5``: seconds from launching mpiexec to the
    header, to the iteration-0 line (the first round: data loaded and scattered,
    initial loss) and to the iteration-1 line (first algorithm step done), median of
    --startup-reps (5); the same for ``mpiexec -n 5 python -c pass`` and bare imports;
    the CPU seconds of each start-up phase in one process (imports, MPI_Init, rank 0's
    data setup, scipy.linalg); and ``python -X importtime -c 'import
    distnewton.session'`` (and ``distnewton.cli``) grouped by top-level package.

Run (about 15-25 minutes on 2 cores; the synthetic file is 125 MB):

    python benchmarks/scale_bench.py [--data-dir DIR] [--workers 4] [--cap-seconds 300]
                                     [--synth-dir DIR] [--skip-news20] [--skip-synth]
                                     [--skip-startup] [--startup-reps 5] [--startup-ranks 5]
                                     [--baseline-reps 3] [--round-cap N] [--smoke]

``--smoke`` (seconds, no ../shared/data): a 2,000 x 123 synthetic stand-in for a9a, a
400 x 6,000 one for news20 and the d = 1e6 set shrunk to 400 x 8,000 (CG path, as
d > cg_threshold), 1 worker (mpiexec -n 2), one run per table, 20 rounds, every
repetition once.
"""

from __future__ import annotations

import argparse
import collections
import os
import statistics
import subprocess
import sys
import tempfile
import time

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _hessian_free  # noqa: E402
import core_bench as cb  # noqa: E402
from _smoke import SMOKE_HELP, synth_set  # noqa: E402

PY = sys.executable


# -- (b) start-up ------------------------------------------------------------
def timed_lines(cmd):
    """seconds from Popen to the header, the iteration-0 and iteration-1 lines, and exit."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    marks = {}
    for line in proc.stdout:
        t = time.perf_counter() - t0
        tok = line.split()
        if tok and tok[0] == "iter":
            marks.setdefault("header", t)
        elif tok and tok[0] == "0":
            marks.setdefault("iter0", t)
        elif tok and tok[0].isdigit():
            marks.setdefault("iter1", t)
    proc.wait()
    marks["exit"] = time.perf_counter() - t0
    return marks


def plain_time(cmd):
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - t0


def importtime(module):
    proc = subprocess.run([PY, "-X", "importtime", "-c", f"import {module}"],
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": cb.REPO})
    top = collections.Counter()
    total = 0
    for ln in proc.stderr.splitlines():
        if not ln.startswith("import time:") or "cumulative" in ln:
            continue
        self_us, _cum_us, name = ln[len("import time:"):].split("|")
        pkg = name.strip().split(".")[0]
        top[pkg] += int(self_us)
        total += int(self_us)
    return total, top


PHASES = r"""
import bz2, sys, time
c = time.process_time
t = c(); import distnewton.cli; cli = c() - t
t = c(); import distnewton.session; run = c() - t
t = c(); from mpi4py import MPI; mpi = c() - t
from distnewton.config import load_yaml, resolve
from distnewton.ingest import prepare
cfg = resolve(load_yaml(sys.argv[1]), [], source=sys.argv[1])
t = c(); prepare(cfg, 4); setup = c() - t
t = c(); raw = bz2.open(cfg["data"]["train"]).read(); unzip = c() - t
from distnewton.data.libsvm_fast import parse_block
t = c(); parse_block(raw, False, 123); parse = c() - t
t = c(); from distnewton.linalg import preload; preload(); linalg = c() - t
print(cli, run, mpi, setup, unzip, parse, linalg)
"""
PHASE_NAMES = ["import distnewton.cli (click)", "import distnewton.session (numpy, scipy.sparse, yaml, "
               "the algorithms)", "from mpi4py import MPI (MPI_Init, singleton)",
               "rank 0: prepare(cfg, 4) (read a9a, map labels, partition, sha256)",
               "  of which bz2 decompression", "  of which parse_block (numpy parser)",
               "rank 0: scipy.linalg (after the first round, outside the timed steps)"]


def child_cpu(cmd):
    """User + system CPU seconds of one child process."""
    import resource
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(cmd, check=True, capture_output=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def startup(args, tmp):
    train = args.startup_train
    cfg = {"data": {"train": train, "n_features": 123, "partition": "iid", "seed": 0},
           "model": {"loss": "logistic", "lambda": "1/n", "fit_intercept": False},
           "algorithm": {"name": "newton"}, "run": {"max_rounds": 2, "backend": "mpi"}}
    path = os.path.join(tmp, "a9a-start.yaml")
    with open(path, "w") as fh:
        yaml.safe_dump(cfg, fh)
    out = os.path.join(tmp, "a9a-start.h5")
    n, reps_b = str(args.startup_ranks), args.baseline_reps
    cmd = ["mpiexec", "-n", n, PY, "-m", "distnewton", "run", path, "-o", out, "--overwrite"]
    reps = [timed_lines(cmd) for _ in range(args.startup_reps)]
    med = {k: statistics.median(r[k] for r in reps if k in r) for k in ("header", "iter0", "iter1", "exit")}
    base = {
        f"mpiexec -n {n} python -c pass": [PY, "-c", "pass"],
        f"mpiexec -n {n} python -c 'import numpy, scipy.sparse, mpi4py.MPI'":
            [PY, "-c", "import numpy, scipy.sparse; from mpi4py import MPI"],
        f"mpiexec -n {n} python -c 'import distnewton.session'": [PY, "-c",
                                                                  "import distnewton.session"],
        f"mpiexec -n {n} python -m distnewton --help": [PY, "-m", "distnewton", "--help"],
    }
    base_t = {k: statistics.median(plain_time(["mpiexec", "-n", n, *c]) for _ in range(reps_b))
              for k, c in base.items()}
    imps = {m: importtime(m) for m in ("distnewton.session", "distnewton.cli")}
    runs = [[float(v) for v in subprocess.run([PY, "-c", PHASES, path], capture_output=True,
                                              text=True, check=True).stdout.split()]
            for _ in range(reps_b)]
    phases = [statistics.median(r[i] for r in runs) for i in range(len(PHASE_NAMES))]
    phases.insert(0, statistics.median(child_cpu([PY, "-c", "pass"]) for _ in range(reps_b)))
    return med, reps, base_t, imps, phases


def print_startup(args, med, reps, base_t, imps, phases):
    ranks, data = args.startup_ranks, os.path.basename(args.startup_train)
    print(f"## (b) Start-up on {data}, `mpiexec -n {ranks}` (master + {ranks - 1} workers), "
          "newton\n")
    print(cb.markdown(["event (seconds after launching mpiexec)", f"median of {len(reps)}", "runs"],
                      [[k, f"{med[k]:.2f}", ", ".join(f"{r.get(k, float('nan')):.2f}" for r in reps)]
                       for k in ("header", "iter0", "iter1", "exit")]))
    print(f"\n**Time from mpiexec to the first round: {med['iter0']:.2f} s** (median; the "
          f"iteration-0 line is printed when the first round, the initial loss/gradient, is "
          f"back). header: printed just before that round, after MPI start, imports, reading "
          f"a9a on rank 0 and scattering the shards; iter1: the first Newton iteration done "
          f"(rank 0 imports scipy.linalg between the two, outside the timed steps). Load "
          f"average now: {cb.load()}.\n")
    print(cb.markdown(["baseline command", f"seconds (median of {args.baseline_reps})"],
                      [[k, f"{v:.2f}"] for k, v in base_t.items()]))
    names = ["python -c pass (interpreter, site)"] + PHASE_NAMES
    print(f"\nCPU seconds per phase, one process alone (median of {args.baseline_reps}):\n")
    print(cb.markdown(["phase", "CPU s"], [[n, f"{v:.3f}"] for n, v in zip(names, phases)]))
    py, cli, run, mpi, setup, _, _, _ = phases
    need = ranks * (py + cli + run + mpi) + setup
    print(f"\nCPU the {ranks} ranks need before the first round, estimated from the phases: "
          f"{ranks} x "
          f"(python + cli + run + MPI) + setup = {need:.2f} s, about "
          f"{need / 2:.2f} s on 2 cores (single-process CPU times vary with the machine's load).")
    for mod, (total, top) in imps.items():
        print(f"\n`python -X importtime -c 'import {mod}'`: {total / 1e6:.3f} s in all "
              "(self time summed per top-level package, single process):\n")
        print(cb.markdown(["package", "seconds", "share"],
                          [[p, f"{us / 1e6:.3f}", f"{100 * us / total:.0f}%"] for p, us in top.most_common(12)]))
    print()



def smoke_args(args, tmp):
    """--smoke: small synthetic stand-ins, one rep, 1 worker (2 ranks), 20 rounds."""
    args.startup_train = synth_set(tmp, "a9a-like", 2000, 123, density=0.1, ext="bz2")[0]
    args.startup_reps = args.baseline_reps = 1
    args.startup_ranks, args.workers, args.round_cap, args.cap_seconds = 2, 1, 20, 120.0
    args.synth_dir = os.path.join(tmp, "synth")
    args.smoke_plans = 1


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", default=os.path.join(cb.REPO, "..", "shared", "data"))
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--cap-seconds", type=float, default=300.0, help="wall-clock cap per run")
    ap.add_argument("--synth-dir", default=os.path.join(cb.REPO, "data"),
                    help="where the d = 1e6 synthetic file is written (once)")
    ap.add_argument("--skip-news20", action="store_true")
    ap.add_argument("--skip-synth", action="store_true")
    ap.add_argument("--skip-startup", action="store_true")
    ap.add_argument("--startup-reps", type=int, default=5, help="start-up runs (median)")
    ap.add_argument("--startup-ranks", type=int, default=5, help="ranks of the start-up runs")
    ap.add_argument("--baseline-reps", type=int, default=3,
                    help="runs of each start-up baseline and phase measurement (median)")
    ap.add_argument("--round-cap", type=int, help="lower every run's round cap to this")
    ap.add_argument("--smoke", action="store_true",
                    help=SMOKE_HELP + "; small synthetic stand-ins for a9a, news20 and the "
                    "d = 1e6 set, 1 worker, one run per table, mpiexec -n 2")
    args = ap.parse_args(argv)
    os.environ["PYTHONPATH"] = cb.REPO + os.pathsep + os.environ.get("PYTHONPATH", "")
    cb.machine_header("distnewton scale and start-up benchmark")
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="scale_bench-") as tmp:
        args.startup_train = os.path.join(os.path.abspath(args.data_dir), "a9a.bz2")
        if args.smoke:
            smoke_args(args, tmp)
        if not args.skip_startup:
            print_startup(args, *startup(args, tmp))
            print(f"(load average after start-up part: {cb.load()})\n", flush=True)
        _hessian_free.run_all(args, tmp)
    print(f"Total benchmark time: {time.perf_counter() - t_start:.0f} s; load average at the end "
          f"{cb.load()} (this script's own ranks count too)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
