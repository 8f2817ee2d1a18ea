"""Reproduce the LocalNewton paper's comparison (Gupta et al., UAI 2021, Fig. 4).

For w8a, a9a and ijcnn1 (logistic regression, lambda = 1/n), runs
adaptive_localnewton, giant, lbfgs and localsgd from configs/paper-localnewton/
with K = 100 simulated workers and K = 4 real MPI workers (mpiexec -n 5), one
HDF5 per run in results/paper-localnewton/, and prints, per data set, K and
algorithm: communication rounds, in-run seconds and modelled seconds (the
configs' latency model: 0.1 s per round + 1e-8 s per byte, a stand-in for the
paper's serverless network) to reach relative suboptimality 1e-3 and 1e-6,
the final relative suboptimality and the test accuracy.  f* comes from
`newton` (grad_rtol 1e-14), cached in results/paper-localnewton/fstar.json.

    python benchmarks/paper_localnewton.py                 # everything (~15 min)
    python benchmarks/paper_localnewton.py --datasets a9a --modes sim100
    python benchmarks/paper_localnewton.py --smoke         # seconds: see below

``--smoke``: the a9a configs of adaptive_localnewton and lbfgs on a small synthetic
set (train and test), 6 rounds, K = 4 simulated and K = 1 MPI worker, files in a
temporary folder.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _smoke import SMOKE_HELP, synth_set  # noqa: E402

from distnewton.algorithms import ALGORITHMS  # noqa: E402
from distnewton.results import load, reaching  # noqa: E402

CONFIGS = ROOT / "configs" / "paper-localnewton"
ALGOS = ("adaptive_localnewton", "giant", "lbfgs", "localsgd")
MODES = {"sim100": ("sim", 100), "mpi4": ("mpi", 4)}
TARGETS = (1e-3, 1e-6)


def distnewton(*args, ranks=None):
    cmd = [sys.executable, "-m", "distnewton", *map(str, args)]
    if ranks:
        cmd = ["mpiexec", "-n", str(ranks), *cmd]
    t0 = time.perf_counter()
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{res.stderr}")
    return time.perf_counter() - t0


def f_star(dataset, out, stem, sets):
    cache = out / "fstar.json"
    known = json.loads(cache.read_text()) if cache.exists() else {}
    if dataset not in known:
        path = out / f"{dataset}-newton-fstar.h5"
        distnewton("run", CONFIGS / f"{stem}-giant.yaml", "--set", "algorithm.name=newton",
                   "--set", "run.grad_rtol=1e-14", "--set", "run.latency_model=", *sets,
                   "--backend", "sim", "--workers", 4, "-o", path, "-q", "--overwrite")
        known[dataset] = float(load(path).history["loss"].min())
        cache.write_text(json.dumps(known, indent=1))
    return known[dataset]


def fmt(hit, key):
    if hit is None:
        return "not reached"
    return f"{hit[key]}" if key == "comm_rounds" else f"{hit[key]:.2f}"


def smoke_sets(tmp):
    """--smoke: the a9a configs on a small synthetic set: {name: (config stem, --set args)}."""
    train, test = synth_set(tmp, "synth", 800, 20, density=0.3, n_test=200)
    overrides = [f"data.train={train}", f"data.test={test}", "data.n_features=20"]
    return {"synth": ("a9a", [a for o in overrides for a in ("--set", o)])}


def rows_for(ds, stem, sets, fs, modes, algos, out):
    """One table row per (mode, algorithm) of data set ``ds`` (``sets``: --set args)."""
    for mode in modes:
        backend, K = MODES[mode]
        for alg in algos:
            path = out / f"{ds}-{alg}-{mode}.h5"
            cfg = CONFIGS / f"{stem}-{alg}.yaml"
            if backend == "sim":
                secs = distnewton("run", cfg, *sets, "--backend", "sim", "--workers", K, "-o",
                                  path, "-q", "--overwrite")
            else:
                secs = distnewton("run", cfg, *sets, "-o", path, "-q", "--overwrite",
                                  ranks=K + 1)
            h = load(path).history
            row = [ds, str(K), alg]
            for t in TARGETS:
                hit = reaching(h, fs, t)
                row += [fmt(hit, "comm_rounds"), fmt(hit, "wall_time"),
                        fmt(hit, "modelled_time")]
            row += [f"{(h['loss'][-1] - fs) / fs:.1e}", f"{h['test_accuracy'][-1]:.4f}",
                    f"{secs:.1f}"]
            print("| " + " | ".join(row) + " |", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", nargs="+", default=["w8a", "a9a", "ijcnn1"])
    ap.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    ap.add_argument("--out", default=str(ROOT / "results" / "paper-localnewton"))
    ap.add_argument("--smoke", action="store_true", help=SMOKE_HELP)
    args = ap.parse_args()
    if not args.smoke and not (ROOT.parent / "shared" / "data").exists():
        sys.exit("../shared/data not found: the LIBSVM data sets live beside the checkout "
                 "(--smoke runs on synthetic data)")
    with tempfile.TemporaryDirectory(prefix="paper_localnewton-") as tmp:
        sets = {ds: (ds, []) for ds in args.datasets}
        out = Path(args.out)
        algos = [a for a in ALGOS if a in ALGORITHMS]
        rows_sets = []
        if args.smoke:
            MODES.update({"sim100": ("sim", 4), "mpi4": ("mpi", 1)})
            sets, out = smoke_sets(tmp), Path(tmp) / "results"
            algos, rows_sets = ["adaptive_localnewton", "lbfgs"], ["--set", "run.max_rounds=6"]
        out.mkdir(parents=True, exist_ok=True)
        cols = ["dataset", "K", "algorithm"]
        for t in TARGETS:
            cols += [f"rounds to {t:g}", f"s to {t:g}", f"modelled s to {t:g}"]
        cols += ["final rel. subopt", "test acc", "process s"]
        print("| " + " | ".join(cols) + " |")
        print("|" + "---|" * len(cols))
        for ds, (stem, overrides) in sets.items():
            fs = f_star(ds, out, stem, overrides)
            rows_for(ds, stem, overrides + rows_sets, fs, args.modes, algos, out)


if __name__ == "__main__":
    main()
