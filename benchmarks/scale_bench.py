"""Scale and start-up: Hessian-free (CG) runs on news20, and mpiexec-to-first-round time.

(a) news20 (15,935 x 62,061, classes 1-10 -> +1, 11-20 -> -1), logistic, lambda = 1/n,
    ``algorithm.solver: cg``, K workers (``mpiexec -n K+1``): giant (cg_rtol 1e-4 and
    the default 1e-10), adaptive_localnewton and newton (Newton-CG, cg_rtol 1e-4 and 1e-1), each with a round
    cap and a wall-clock cap (SIGUSR1 at the cap: distnewton stops cleanly and writes
    the file). Reported: rounds, in-run seconds to relative suboptimality 1e-6 (or the
    best reached), iterations, CG iterations where logged, whole-process seconds, and
    peak resident memory (VmHWM) per rank, sampled from /proc/<pid>/status of the rank
    processes every 0.1 s while they run, next to the shard's CSR size.
    f*: LIBLINEAR -s 0 -e 1e-9 (C = 1) or the best distnewton loss, whichever is lower;
    the LIBLINEAR seconds to 1e-6 are printed for reference.
(b) start-up on a9a with ``mpiexec -n 5``: seconds from launching mpiexec to the
    header, to the iteration-0 line (the first round: data loaded and scattered,
    initial loss) and to the iteration-1 line (first algorithm step done), median of
    --startup-reps (5); the same for ``mpiexec -n 5 python -c pass`` and bare imports;
    the CPU seconds of each start-up phase in one process (imports, MPI_Init, rank 0's
    data setup, the workers' preload); and ``python -X importtime -c 'import
    distnewton.run'`` (and ``distnewton.cli``) grouped by top-level package.

Run (about 3-5 minutes on 2 cores):

    python benchmarks/scale_bench.py [--data-dir DIR] [--workers 4] [--cap-seconds 60]
                                     [--skip-news20] [--skip-startup] [--startup-reps 5]
"""

from __future__ import annotations

import argparse
import collections
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np
import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import core_bench as cb  # noqa: E402

TARGET = 1e-6
PY = sys.executable


# -- memory sampling -------------------------------------------------------
def _children():
    kids = collections.defaultdict(list)
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            kids[ppid].append(int(pid))
        except (OSError, IndexError, ValueError):
            pass
    return kids


def _descendants(root):
    kids, out, todo = _children(), [], [root]
    while todo:
        p = todo.pop()
        for c in kids.get(p, []):
            out.append(c)
            todo.append(c)
    return out


def _status(pid):
    with open(f"/proc/{pid}/status") as fh:
        return dict(ln.split(":", 1) for ln in fh if ":" in ln)


class MemSampler(threading.Thread):
    """VmHWM (kB) of every python descendant of ``root``, keyed by PMI_RANK."""

    def __init__(self, root, period=0.1):
        super().__init__(daemon=True)
        self.root, self.period, self.hwm, self.stop = root, period, {}, threading.Event()

    def run(self):
        rank_of = {}
        while not self.stop.is_set():
            for pid in _descendants(self.root):
                try:
                    if pid not in rank_of:
                        with open(f"/proc/{pid}/cmdline", "rb") as fh:
                            if b"distnewton" not in fh.read():
                                continue
                        with open(f"/proc/{pid}/environ", "rb") as fh:
                            env = dict(e.split(b"=", 1) for e in fh.read().split(b"\0") if b"=" in e)
                        rank_of[pid] = int(env.get(b"PMI_RANK", b"-1"))
                    kb = int(_status(pid)["VmHWM"].split()[0])
                    r = rank_of[pid]
                    self.hwm[r] = max(self.hwm.get(r, 0), kb)
                except (OSError, KeyError, ValueError):
                    pass
            self.stop.wait(self.period)


def run_capped(cmd, cap_seconds):
    """Run mpiexec with memory sampling; SIGUSR1 at the cap (clean stop), kill 30 s later."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    mem = MemSampler(proc.pid)
    mem.start()
    capped = False
    try:
        _, err = proc.communicate(timeout=cap_seconds)
    except subprocess.TimeoutExpired:
        capped = True
        proc.send_signal(signal.SIGUSR1)
        try:
            _, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
    whole = time.perf_counter() - t0
    mem.stop.set()
    mem.join()
    if proc.returncode not in (0, 3):
        print(f"  {' '.join(cmd)} exited {proc.returncode}:\n{err[-1500:]}", file=sys.stderr)
    return whole, capped, proc.returncode, mem.hwm


# -- (a) news20 --------------------------------------------------------------
def news20(args, tmp):
    import h5py
    from sklearn.datasets import load_svmlight_file
    train = os.path.join(os.path.abspath(args.data_dir), "news20.bz2")
    d = 62061
    t = time.perf_counter()
    X, y_raw = load_svmlight_file(train, n_features=d)
    X = X.tocsr()
    print(f"news20 parsed by sklearn in {time.perf_counter() - t:.1f} s", file=sys.stderr, flush=True)
    y = np.where(y_raw <= 10, 1.0, -1.0)
    n, lam = X.shape[0], 1.0 / X.shape[0]
    csr_mb = (X.data.nbytes + X.indices.nbytes + X.indptr.nbytes) / 2**20
    fit = cb.liblinear_fitter(X, y, lam)
    obj = lambda w: cb.objective(X, y, w, lam)  # noqa: E731
    w_ll, t_ll = fit(1e-9)
    f_ll = obj(w_ll)
    ll_rows = []
    for eps in (1e-2, 1e-3, 1e-4, 1e-5, 1e-6):
        w, dt = fit(eps)
        ll_rows.append((eps, dt, obj(w)))

    K = args.workers
    runs = [  # label, algorithm section, max_rounds
        ("giant, cg_rtol 1e-4", {"name": "giant", "solver": "cg", "cg_rtol": 1e-4, "cg_maxiter": 500}, 90),
        ("giant, cg_rtol 1e-10", {"name": "giant", "solver": "cg", "cg_rtol": 1e-10, "cg_maxiter": 500}, 30),
        ("adaptive_localnewton, cg_rtol 1e-4", {"name": "adaptive_localnewton", "solver": "cg",
                                                "cg_rtol": 1e-4, "cg_maxiter": 500}, 90),
        ("newton (Newton-CG), cg_rtol 1e-4", {"name": "newton", "solver": "cg", "cg_rtol": 1e-4,
                                              "cg_maxiter": 500}, 1500),
        ("newton (Newton-CG), cg_rtol 1e-1", {"name": "newton", "solver": "cg", "cg_rtol": 1e-1,
                                              "cg_maxiter": 500}, 1500),
    ]
    results = []
    for label, alg, max_rounds in runs:
        cfg = {"data": {"train": train, "n_features": d, "partition": "iid", "seed": 0,
                        "positive_labels": list(range(1, 11))},
               "model": {"loss": "logistic", "lambda": "1/n", "fit_intercept": False},
               "algorithm": alg,
               "run": {"max_rounds": max_rounds, "grad_rtol": 1e-14, "f_star": f_ll,
                       "target_subopt": TARGET, "backend": "mpi"}}
        path = os.path.join(tmp, f"news20-{len(results)}.yaml")
        with open(path, "w") as fh:
            yaml.safe_dump(cfg, fh)
        out = os.path.join(tmp, f"news20-{len(results)}.h5")
        cmd = ["mpiexec", "-n", str(K + 1), PY, "-m", "distnewton", "run", path, "-o", out, "-q",
               "--overwrite"]
        whole, capped, rc, hwm = run_capped(cmd, args.cap_seconds)
        hist = {}
        if os.path.exists(out):
            with h5py.File(out, "r") as f:
                hist = {k: f["history"][k][:] for k in f["history"]}
                status = str(f.attrs["status"])
        else:
            status = f"no result (exit {rc})"
        results.append((label, alg, max_rounds, whole, capped, status, hist, hwm))
        print(f"  news20 {label}: {status}, whole {whole:.1f} s, load {cb.load()}",
              file=sys.stderr, flush=True)
    f_star = min([f_ll] + [float(np.min(h["loss"])) for *_, h, _ in results if h])
    return n, d, X.nnz, csr_mb, lam, f_ll, t_ll, f_star, ll_rows, obj, results


def print_news20(K, n, d, nnz, csr_mb, lam, f_ll, t_ll, f_star, ll_rows, results):
    print(f"## (a) news20, Hessian-free (solver: cg), {K} workers\n")
    print(f"n = {n}, d = {d}, nnz = {nnz}, CSR {csr_mb:.1f} MiB in all (~{csr_mb / K:.1f} MiB per "
          f"worker shard); a dense d x d Hessian would be {d * d * 8 / 1e9:.0f} GB. lambda = {lam:.3e}. "
          f"f* = {f_star:.15f} (LIBLINEAR -e 1e-9: {f_ll:.15f}, {t_ll:.2f} s).\n")
    print("LIBLINEAR -s 0 on news20 for reference: " + "; ".join(
        f"-e {e:.0e}: {dt:.2f} s, rel. subopt {(f - f_star) / f_star:.1e}" for e, dt, f in ll_rows) + "\n")
    rows = []
    for label, alg, max_rounds, whole, capped, status, h, hwm in results:
        mem = ", ".join(f"r{r}: {kb / 1024:.0f}" for r, kb in sorted(hwm.items()))
        if not h:
            rows.append([label, f"{max_rounds}", status, "-", "-", "-", "-", "-", f"{whole:.1f}", mem])
            continue
        sub = (h["loss"] - f_star) / abs(f_star)
        (i,) = cb.first_reaching(sub, [TARGET])
        cgs = f"{int(h['cg_iterations'].sum())}" if "cg_iterations" in h else "-"
        first_it = f"{h['wall_time'][1]:.2f}" if len(h["wall_time"]) > 1 else "-"
        rows.append([label, f"{max_rounds}" + (" + time cap" if capped else ""), status,
                     "not reached" if i is None else str(int(h["comm_rounds"][i])),
                     "not reached" if i is None else f"{h['wall_time'][i]:.2f}",
                     f"{int(h['iteration'][-1])} it / {int(h['comm_rounds'][-1])} rounds / "
                     f"{h['wall_time'][-1]:.1f} s", f"{np.min(sub):.1e}", first_it + f" (CG its {cgs})",
                     f"{whole:.1f}", mem])
    print(cb.markdown(["run", "round cap", "status", "rounds to 1e-6", "in-run s to 1e-6",
                       "at the end", "best rel. subopt.", "1st iteration s (total CG its)",
                       "whole-process s", "peak RSS per rank (MiB, r0 = master)"], rows))
    print()


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
t = c(); import distnewton.run; run = c() - t
t = c(); from mpi4py import MPI; mpi = c() - t
from distnewton.config import load_yaml, resolve
from distnewton.driver import prepare
cfg = resolve(load_yaml(sys.argv[1]), [], source=sys.argv[1])
t = c(); prepare(cfg, 4); setup = c() - t
t = c(); raw = bz2.open(cfg["data"]["train"]).read(); unzip = c() - t
from distnewton.data.libsvm_fast import parse_block
t = c(); parse_block(raw, False, 123); parse = c() - t
t = c(); from distnewton.objectives import preload; preload(); special = c() - t
t = c(); from distnewton.linalg import preload; preload(); linalg = c() - t
print(cli, run, mpi, setup, unzip, parse, special, linalg)
"""
PHASE_NAMES = ["import distnewton.cli (click)", "import distnewton.run (numpy, scipy.sparse, yaml, "
               "the algorithms)", "from mpi4py import MPI (MPI_Init, singleton)",
               "rank 0: prepare(cfg, 4) (read a9a, map labels, partition, sha256)",
               "  of which bz2 decompression", "  of which parse_block (numpy parser)",
               "workers: scipy.special (preload before the first round)",
               "rank 0: scipy.linalg (after the first round, outside the timed steps)"]


def child_cpu(cmd):
    """User + system CPU seconds of one child process."""
    import resource
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(cmd, check=True, capture_output=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def startup(args, tmp):
    train = os.path.join(os.path.abspath(args.data_dir), "a9a.bz2")
    cfg = {"data": {"train": train, "n_features": 123, "partition": "iid", "seed": 0},
           "model": {"loss": "logistic", "lambda": "1/n", "fit_intercept": False},
           "algorithm": {"name": "newton"}, "run": {"max_rounds": 2, "backend": "mpi"}}
    path = os.path.join(tmp, "a9a-start.yaml")
    with open(path, "w") as fh:
        yaml.safe_dump(cfg, fh)
    out = os.path.join(tmp, "a9a-start.h5")
    cmd = ["mpiexec", "-n", "5", PY, "-m", "distnewton", "run", path, "-o", out, "--overwrite"]
    reps = [timed_lines(cmd) for _ in range(args.startup_reps)]
    med = {k: statistics.median(r[k] for r in reps if k in r) for k in ("header", "iter0", "iter1", "exit")}
    base = {
        "mpiexec -n 5 python -c pass": [PY, "-c", "pass"],
        "mpiexec -n 5 python -c 'import numpy, scipy.sparse, mpi4py.MPI'":
            [PY, "-c", "import numpy, scipy.sparse; from mpi4py import MPI"],
        "mpiexec -n 5 python -c 'import distnewton.run'": [PY, "-c", "import distnewton.run"],
        "mpiexec -n 5 python -m distnewton --help": [PY, "-m", "distnewton", "--help"],
    }
    base_t = {k: statistics.median(plain_time(["mpiexec", "-n", "5", *c]) for _ in range(3))
              for k, c in base.items()}
    imps = {m: importtime(m) for m in ("distnewton.run", "distnewton.cli")}
    runs = [[float(v) for v in subprocess.run([PY, "-c", PHASES, path], capture_output=True,
                                              text=True, check=True).stdout.split()]
            for _ in range(3)]
    phases = [statistics.median(r[i] for r in runs) for i in range(len(PHASE_NAMES))]
    phases.insert(0, statistics.median(child_cpu([PY, "-c", "pass"]) for _ in range(3)))
    return med, reps, base_t, imps, phases


def print_startup(med, reps, base_t, imps, phases):
    print("## (b) Start-up on a9a, `mpiexec -n 5` (master + 4 workers), newton\n")
    print(cb.markdown(["event (seconds after launching mpiexec)", f"median of {len(reps)}", "runs"],
                      [[k, f"{med[k]:.2f}", ", ".join(f"{r.get(k, float('nan')):.2f}" for r in reps)]
                       for k in ("header", "iter0", "iter1", "exit")]))
    print(f"\n**Time from mpiexec to the first round: {med['iter0']:.2f} s** (median; the "
          f"iteration-0 line is printed when the first round, the initial loss/gradient, is "
          f"back). header: printed just before that round, after MPI start, imports, reading "
          f"a9a on rank 0 and scattering the shards; iter1: the first Newton iteration done "
          f"(rank 0 imports scipy.linalg between the two, outside the timed steps). Load "
          f"average now: {cb.load()}.\n")
    print(cb.markdown(["baseline command", "seconds (median of 3)"],
                      [[k, f"{v:.2f}"] for k, v in base_t.items()]))
    names = ["python -c pass (interpreter, site)"] + PHASE_NAMES
    print("\nCPU seconds per phase, one process alone (median of 3):\n")
    print(cb.markdown(["phase", "CPU s"], [[n, f"{v:.3f}"] for n, v in zip(names, phases)]))
    py, cli, run, mpi, setup, _, _, special, _ = phases
    need = 5 * (py + cli + run + mpi) + setup + 4 * special
    print(f"\nCPU the 5 ranks need before the first round, estimated from the phases: 5 x "
          f"(python + cli + run + MPI) + setup + 4 x scipy.special = {need:.2f} s, about "
          f"{need / 2:.2f} s on 2 cores (single-process CPU times vary with the machine's load).")
    for mod, (total, top) in imps.items():
        print(f"\n`python -X importtime -c 'import {mod}'`: {total / 1e6:.3f} s in all "
              "(self time summed per top-level package, single process):\n")
        print(cb.markdown(["package", "seconds", "share"],
                          [[p, f"{us / 1e6:.3f}", f"{100 * us / total:.0f}%"] for p, us in top.most_common(12)]))
    print()


def header():
    """core_bench's machine header under this script's title."""
    import contextlib
    import io
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        cb.machine_header()
    print(buf.getvalue().replace("# distnewton core benchmark", "# distnewton scale and start-up benchmark", 1), end="", flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", default=os.path.join(cb.REPO, "..", "shared", "data"))
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--cap-seconds", type=float, default=60.0, help="wall-clock cap per news20 run")
    ap.add_argument("--skip-news20", action="store_true")
    ap.add_argument("--skip-startup", action="store_true")
    ap.add_argument("--startup-reps", type=int, default=5, help="start-up runs (median)")
    args = ap.parse_args(argv)
    os.environ["PYTHONPATH"] = cb.REPO + os.pathsep + os.environ.get("PYTHONPATH", "")
    header()
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="scale_bench-") as tmp:
        if not args.skip_startup:
            print_startup(*startup(args, tmp))
            print(f"(load average after start-up part: {cb.load()})\n", flush=True)
        if not args.skip_news20:
            n, d, nnz, csr_mb, lam, f_ll, t_ll, f_star, ll_rows, _, results = news20(args, tmp)
            print_news20(args.workers, n, d, nnz, csr_mb, lam, f_ll, t_ll, f_star, ll_rows, results)
    print(f"Total benchmark time: {time.perf_counter() - t_start:.0f} s; load average at the end "
          f"{cb.load()} (this script's own ranks count too)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
