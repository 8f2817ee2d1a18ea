"""Loading a large data set on K MPI workers: pre-split shards vs. the whole file.

    python benchmarks/split_bench.py                      # 2,000,000 x 50, 8 workers
    python benchmarks/split_bench.py --samples 500000 --workers 4 --repeat 3

Steps (all through the `distnewton` command line, as a user would run them):

1. `distnewton data synth` writes a seeded synthetic LIBSVM file (cached in --work);
2. `distnewton data split FILE --parts K` writes K HDF5 CSR shards (a one-off cost,
   shown separately);
3. `mpiexec -n K+1 distnewton run` one iteration of gd, (a) with `data.train: FILE`:
   rank 0 parses the whole file and scatters the rows, (b) with `data.shards: DIR`:
   rank 0 reads only the manifest and every worker reads its own shard.

The table gives the job's wall time (MPI start-up, loading, one gd iteration and
writing the result: everything but loading is the same in (a) and (b)), the
setup bytes sent by rank 0 (the `setup_bytes` attribute) and the speed-up.
Both variants start the same processes.  On a machine with fewer cores than
ranks (a 2-core laptop running 9 ranks) the waiting ranks spin in MPI and take
CPU from rank 0 while it parses, which widens the gap; with one core per rank
expect the gain to be about the parse + scatter time (compare the split time).

Measured on the 2-core development VM (shared, loaded), defaults:

    data: 2000000 x 50 (193 MB LIBSVM text), 8 workers, mpiexec -n 9, best of 1
    one-off `distnewton data split --parts 8`: 8.2 s

    | loading                              | job seconds | setup bytes | speed-up |
    |--------------------------------------|-------------|-------------|----------|
    | whole file: rank 0 parses + scatters | 51.68       | 160,556,296 | 1.00x    |
    | pre-split: worker k reads part-k     | 3.96        | 0           | 13.06x   |

``--smoke``: 3000 x 20 rows, 2 workers, in a temporary folder (seconds).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _smoke import SMOKE_HELP  # noqa: E402
from _tables import markdown_table  # noqa: E402


def sh(cmd, **kw):
    t0 = time.perf_counter()
    res = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    if res.returncode != 0:
        sys.exit(f"failed: {' '.join(map(str, cmd))}\n{res.stdout}{res.stderr}")
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=2_000_000)
    ap.add_argument("--features", type=int, default=50)
    ap.add_argument("--density", type=float, default=0.08)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=1, help="runs per variant (best is shown)")
    ap.add_argument("--work", default="/tmp/distnewton-split-bench",
                    help="folder for the data (kept between runs; delete it afterwards)")
    ap.add_argument("--smoke", action="store_true", help=SMOKE_HELP)
    args = ap.parse_args()
    if args.smoke:
        with tempfile.TemporaryDirectory(prefix="split_bench-") as tmp:
            args.samples, args.features, args.workers, args.repeat = 3000, 20, 2, 1
            args.work = tmp
            bench(args)
    else:
        bench(args)


def bench(args):
    """Generate, split, run both ways; print the table."""
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    dn = [sys.executable, "-m", "distnewton"]
    mpiexec = shutil.which("mpiexec", path=os.path.dirname(sys.executable) + os.pathsep
                           + os.environ.get("PATH", ""))
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    K = args.workers

    data = work / f"synth-{args.samples}x{args.features}-{args.density}.svm"
    if data.exists():
        t_synth = None
    else:
        t_synth = sh([*dn, "data", "synth", data, "--samples", args.samples, "--features",
                      args.features, "--density", args.density, "--seed", 1], env=env)
    shards = work / f"{data.stem}-{K}"
    t_split = sh([*dn, "data", "split", data, "--parts", K, "--out", shards, "--overwrite"],
                 env=env)

    common = {"algorithm": {"name": "gd", "step_size": 1.0},
              "run": {"max_iterations": 1, "grad_rtol": None}}
    configs = {
        "whole file: rank 0 parses + scatters": {"data": {"train": str(data)}, **common},
        "pre-split: worker k reads part-k": {"data": {"shards": str(shards)}, **common},
    }
    rows = []
    for label, cfg in configs.items():
        path = work / "bench.yaml"
        path.write_text(yaml.safe_dump(cfg))
        times = []
        for _ in range(args.repeat):
            out = work / "bench.h5"
            times.append(sh([mpiexec, "-n", K + 1, *dn, "run", path, "-q", "-o", out,
                             "--overwrite"], env=env))
        with h5py.File(out, "r") as f:
            setup_bytes = int(f.attrs["setup_bytes"])
            n = int(f.attrs["n_samples"])
        rows.append((label, min(times), setup_bytes))

    size = data.stat().st_size
    print(f"data: {n} x {args.features} ({size / 1e6:.0f} MB LIBSVM text), {K} workers, "
          f"mpiexec -n {K + 1}, best of {args.repeat}")
    if t_synth is not None:
        print(f"(generating the file took {t_synth:.1f} s)")
    print(f"one-off `distnewton data split --parts {K}`: {t_split:.1f} s\n")
    base = rows[0][1]
    markdown_table(["loading", "job seconds", "setup bytes", "speed-up"],
                   [[label, f"{t:.2f}", f"{b:,d}", f"{base / t:.2f}x"] for label, t, b in rows])


if __name__ == "__main__":
    main()
