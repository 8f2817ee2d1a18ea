"""Waiting when ranks outnumber cores: the per-round penalty of each launch and wait mode.

K = 2 workers on a 2-core machine, ``newton`` at its defaults (logistic, lambda = 1/n,
``grad_rtol`` 1e-10), one real ``mpiexec`` run per cell (median of ``--repeat``):

* ``-n 3`` (rank 0 master + 2 worker ranks, the plain launch: 3 ranks on 2 cores) with
  the waiting modes of ``distnewton.runtime.waiting``: ``auto`` (the default: sleep
  between polls when the node has more ranks than cores), ``spin`` (``sched_yield``
  between polls), ``sleep``, ``block`` (MPI's own blocking wait);
* ``-n 2`` with ``run.workers: 2``: rank 1 hosts both workers one after another
  (``run.master_shard: false``), or rank 0 hosts worker 0 itself and rank 1 worker 1
  (``run.master_shard: auto``, its default there): 2 ranks on 2 cores, nobody waits
  on a core a worker needs.

Per cell: in-run seconds (history ``wall_time`` at the end), rounds, the history's
``time_compute`` / ``time_comm`` / ``time_idle``, communication ms per round, and
max |w - w_sim| against the sim backend with 2 workers (the iterates do not depend on
the launch: 0 or rounding).

Run (about a minute on 2 idle cores):

    python benchmarks/waiting_bench.py [--datasets a9a w8a ijcnn1 phishing]
                                       [--data-dir DIR] [--repeat 3] [--smoke]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np
import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _smoke import SMOKE_HELP  # noqa: E402
from _tables import markdown_table  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FEATURES = {"a9a": 123, "w8a": 300, "ijcnn1": 22, "phishing": 68}
FILES = {"phishing": "phishing.crlf.bz2"}
#: (label, ranks, env DISTNEWTON_WAIT, extra run keys)
CELLS = [
    ("-n 3, wait auto (default)", 3, "auto", {}),
    ("-n 3, wait spin", 3, "spin", {}),
    ("-n 3, wait sleep", 3, "sleep", {}),
    ("-n 3, wait block (MPI_Wait)", 3, "block", {}),
    ("-n 2, rank 1 hosts both (master_shard false)", 2, "auto",
     {"workers": 2, "master_shard": False}),
    ("-n 2, rank 0 hosts worker 0 (master_shard auto)", 2, "auto", {"workers": 2}),
]


def config(tmp, name, train, d, run):
    doc = {"data": {"train": train, "n_features": d, "partition": "iid"},
           "model": {"loss": "logistic", "lambda": "1/n"},
           "algorithm": {"name": "newton"},
           "run": {"max_rounds": 400, "grad_rtol": 1e-10} | run}
    path = os.path.join(tmp, f"{name}-{abs(hash(str(run)))}.yaml")
    with open(path, "w") as fh:
        yaml.safe_dump(doc, fh)
    return path


def read(out):
    with h5py.File(out) as f:
        h = f["history"]
        last = {k: float(h[k][-1]) for k in ("wall_time", "time_compute", "time_comm",
                                              "time_idle", "comm_rounds")}
        return last, f["model"]["w"][()]


def run_cell(tmp, name, train, d, ranks, mode, run, repeat):
    cfg = config(tmp, name, train, d, {"backend": "mpi"} | run)
    out = os.path.join(tmp, f"{name}.h5")
    env = dict(os.environ, DISTNEWTON_WAIT=mode, OPENBLAS_NUM_THREADS="1",
               OMP_NUM_THREADS="1")
    rows = []
    for _ in range(repeat):
        subprocess.run(["mpiexec", "-n", str(ranks), sys.executable, "-m", "distnewton", "run",
                        cfg, "-o", out, "-q", "--overwrite"], check=True, env=env, cwd=REPO)
        rows.append(read(out))
    pick = sorted(rows, key=lambda r: r[0]["wall_time"])[len(rows) // 2]
    return pick


def sim_w(tmp, name, train, d):
    cfg = config(tmp, name, train, d, {"backend": "sim", "workers": 2})
    out = os.path.join(tmp, f"{name}-sim.h5")
    subprocess.run([sys.executable, "-m", "distnewton", "run", cfg, "-o", out, "-q",
                    "--overwrite"], check=True, cwd=REPO)
    return read(out)[1]


def synthetic(tmp):
    path = os.path.join(tmp, "smoke.svm")
    subprocess.run([sys.executable, "-m", "distnewton", "data", "synth", path, "--samples",
                    "2000", "--features", "20", "--density", "0.5"], check=True, cwd=REPO,
                   stdout=subprocess.DEVNULL)
    return path


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--datasets", nargs="+", choices=sorted(FEATURES),
                    default=["a9a", "w8a", "ijcnn1", "phishing"])
    ap.add_argument("--data-dir", default=os.path.join(REPO, "..", "shared", "data"))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--smoke", action="store_true", help=SMOKE_HELP)
    args = ap.parse_args(argv)
    cells = CELLS
    with tempfile.TemporaryDirectory(prefix="waiting-") as tmp:
        if args.smoke:
            sets = {"synthetic": (synthetic(tmp), 20)}
            cells, args.repeat = [CELLS[0], CELLS[-1]], 1
        else:
            sets = {n: (os.path.join(args.data_dir, FILES.get(n, f"{n}.bz2")), FEATURES[n])
                    for n in args.datasets}
        table = []
        for name, (train, d) in sets.items():
            w_sim = sim_w(tmp, name, train, d)
            for label, ranks, mode, run in cells:
                last, w = run_cell(tmp, name, train, d, ranks, mode, run, args.repeat)
                r = last["comm_rounds"]
                table.append([name, label, f"{last['wall_time']:.3f}", f"{r:.0f}",
                              f"{last['time_compute']:.3f}", f"{last['time_comm']:.3f}",
                              f"{last['time_idle']:.3f}",
                              f"{1e3 * last['time_comm'] / r:.2f}",
                              f"{np.abs(w - w_sim).max():.1e}"])
                print(f"  {name} {label}: {last['wall_time']:.3f} s", file=sys.stderr,
                      flush=True)
    markdown_table(["data", "launch / wait", "in-run s", "rounds", "compute s", "comm s",
                          "idle s", "comm ms/round", "max abs(w - w_sim)"], table)
    print(f"newton at its defaults, 2 workers, grad_rtol 1e-10; median of {args.repeat} runs "
          "by in-run seconds; load average " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
