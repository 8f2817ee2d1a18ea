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

    python benchmarks/paper_localnewton.py                 # everything (~1 h)
    python benchmarks/paper_localnewton.py --datasets a9a --modes sim100 --tables main
    python benchmarks/paper_localnewton.py --tables variants fig2 fig4
    python benchmarks/paper_localnewton.py --smoke         # seconds: see below

``--tables`` (default: all): ``main`` the table above; ``variants`` Adaptive
LocalNewton's control-flow choices one at a time (K = 100 sim, rounds to 1e-3 and
the fraction of GIANT's, :mod:`_localnewton_variants`); ``fig2`` LocalNewton
L = 1, 2, 3 against GIANT and Adaptive on w8a (the error floor, the paper's Fig. 2);
``fig4`` rounds to the paper's absolute training-loss target (w8a 0.19) and to
relative 1e-2 / 1e-3, with full BFGS (backtracking), L-BFGS and Local SGD at the
paper's batch 1 and one epoch per round (Fig. 3/4).  The variants, fig2 and fig4
tables take f* from scikit-learn (newton-cholesky), run in this process on the sim
backend, and without ``--smoke`` are also written to
benchmarks/results/paper_localnewton.md.

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

import _localnewton_variants as V  # noqa: E402
from _smoke import SMOKE_HELP, synth_set  # noqa: E402
from _tables import markdown_table  # noqa: E402

from distnewton.algorithms import ALGORITHMS  # noqa: E402
from distnewton.io.read import load, reaching  # noqa: E402
from distnewton.yamlio import load_file  # noqa: E402

CONFIGS = ROOT / "configs" / "paper-localnewton"
ALGOS = ("adaptive_localnewton", "giant", "lbfgs", "localsgd")
MODES = {"sim100": ("sim", 100), "mpi4": ("mpi", 4)}
TARGETS = (1e-3, 1e-6)
TABLES = ("main", "variants", "fig2", "fig4")
N_FEATURES = {"w8a": 300, "a9a": 123, "ijcnn1": 22}
RESULTS_MD = ROOT / "benchmarks" / "results" / "paper_localnewton.md"


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
        config = out / f"{dataset}-newton-fstar.yaml"      # the giant config's problem
        cfg = load_file(str(CONFIGS / f"{stem}-giant.yaml"))
        cfg["algorithm"] = {"name": "newton"}             # (giant's keys are not newton's)
        config.write_text(json.dumps(cfg))                 # JSON is YAML
        distnewton("run", config, "--set", "run.grad_rtol=1e-14", "--set", "run.latency_model=",
                   *sets,
                   "--backend", "sim", "--workers", 4, "-o", path, "-q", "--overwrite")
        known[dataset] = float(load(path).history["loss"].min())
        cache.write_text(json.dumps(known, indent=1))
    return known[dataset]


def fmt(hit, key):
    if hit is None:
        return "not reached"
    return f"{hit[key]}" if key == "comm_rounds" else f"{hit[key]:.2f}"


def shared_sets(ds):
    """The --set args that read data set ``ds`` from ../shared/data in place (the
    configs name registered sets, which a user fetches once into the cache)."""
    shared = ROOT.parent / "shared" / "data"
    return ["--set", f"data.train={shared / f'{ds}.bz2'}",
            "--set", f"data.test={shared / f'{ds}.t.bz2'}"]


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


def paper_tables(args, sets, out, smoke):
    """The variants / fig2 / fig4 tables, in this process; returns Markdown text."""
    import os

    import yaml
    os.chdir(ROOT)                        # the run's relative paths are relative to it
    K, big, sgd = (4, 6, 3) if smoke else (100, 200, 50)
    known = {}
    for ds, (stem, overrides) in sets.items():
        if smoke:
            train = overrides[overrides.index("--set") + 1].split("=", 1)[1]
            fs = V.f_star_sklearn(train, 20, out / "fstar_sklearn.json", ds)
        else:
            fs = V.f_star_sklearn(ROOT.parent / "shared" / "data" / f"{ds}.bz2",
                                  N_FEATURES[ds], out / "fstar_sklearn.json", ds)
        ds_sets = {k: yaml.safe_load(v) for k, v in (o.split("=", 1) for o in overrides[1::2])}
        known[ds] = (stem, fs, ds_sets)
    md = []

    def emit(title, header, rows):
        markdown_table(header, rows, title)
        md.extend([f"## {title}", "", "| " + " | ".join(header) + " |",
                   "|" + "---|" * len(header)] + ["| " + " | ".join(r) + " |" for r in rows]
                  + [""])
    if "variants" in args.tables:
        header, rows = V.variants_table(known, CONFIGS, K, big, 1e-3)
        emit(f"Adaptive LocalNewton's choices: rounds to relative suboptimality 1e-3 "
             f"(K = {K}, sim, lambda = 1/n; % of GIANT with beta 0.1)", header, rows)
    if "fig2" in args.tables:
        ds = "w8a" if "w8a" in known else next(iter(known))
        stem, fs, ds_sets = known[ds]
        header, rows = V.fig2_table(stem, fs, CONFIGS, K, min(big, 100), ds_sets)
        emit(f"Fig. 2: LocalNewton's error floor on {ds}, relative suboptimality after r "
             f"rounds (K = {K})", header, rows)
    if "fig4" in args.tables:
        rows = []
        for ds, (stem, fs, ds_sets) in known.items():
            rows += V.fig4_rows(ds, stem, fs, CONFIGS, K, big, sgd, ds_sets)
        emit(f"Fig. 3/4: rounds to the paper's training-loss target and to relative 1e-2, "
             f"1e-3 (K = {K}; Local SGD {sgd} rounds)", V.FIG4_HEADER, rows)
    return "\n".join(md)


def write_results(md):
    """benchmarks/results/paper_localnewton.md: this run's sections replace the ones with
    the same title (up to its first colon); the other tables stay, the Claims section
    (paper_localnewton_claims.py) first."""
    def sections(text):
        parts = ("\n" + text).split("\n## ")[1:]
        return {p.split(":", 1)[0]: "## " + p.rstrip() + "\n" for p in parts}
    old = sections(RESULTS_MD.read_text().split("\n", 4)[-1]) if RESULTS_MD.exists() else {}
    old.update(sections(md))
    RESULTS_MD.write_text(
        "# benchmarks/paper_localnewton.py: the LocalNewton paper's settings\n\n"
        "Written by `python benchmarks/paper_localnewton_claims.py` (the Claims section and "
        "the figures) and `python benchmarks/paper_localnewton.py --tables variants fig2 "
        "fig4` (the other sections); rounds are exact (sim backend).  f* from scikit-learn "
        "newton-cholesky.\n\n"
        + "\n".join(old[k] for k in sorted(old, key=lambda k: (k != "Claims", k))))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", nargs="+", default=["w8a", "a9a", "ijcnn1"])
    ap.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    ap.add_argument("--tables", nargs="+", default=list(TABLES), choices=TABLES)
    ap.add_argument("--out", default=str(ROOT / "results" / "paper-localnewton"))
    ap.add_argument("--smoke", action="store_true", help=SMOKE_HELP)
    args = ap.parse_args()
    if not args.smoke and not (ROOT.parent / "shared" / "data").exists():
        sys.exit("../shared/data not found: the LIBSVM data sets live beside the checkout "
                 "(--smoke runs on synthetic data)")
    with tempfile.TemporaryDirectory(prefix="paper_localnewton-") as tmp:
        sets = {ds: (ds, shared_sets(ds)) for ds in args.datasets}
        out = Path(args.out)
        algos = [a for a in ALGOS if a in ALGORITHMS]
        rows_sets = []
        if args.smoke:
            MODES.update({"sim100": ("sim", 4), "mpi4": ("mpi", 1)})
            sets, out = smoke_sets(tmp), Path(tmp) / "results"
            algos, rows_sets = ["adaptive_localnewton", "lbfgs"], ["--set", "run.max_rounds=6"]
        out.mkdir(parents=True, exist_ok=True)
        if "main" in args.tables:
            cols = ["dataset", "K", "algorithm"]
            for t in TARGETS:
                cols += [f"rounds to {t:g}", f"s to {t:g}", f"modelled s to {t:g}"]
            cols += ["final rel. subopt", "test acc", "process s"]
            print("| " + " | ".join(cols) + " |")
            print("|" + "---|" * len(cols))
            for ds, (stem, overrides) in sets.items():
                fs = f_star(ds, out, stem, overrides)
                rows_for(ds, stem, overrides + rows_sets, fs, args.modes, algos, out)
        if set(args.tables) - {"main"}:
            md = paper_tables(args, {ds: (stem, ov) for ds, (stem, ov) in sets.items()},
                              out, args.smoke)
            if not args.smoke:
                write_results(md)

if __name__ == "__main__":
    main()
