"""FedNL benchmark at the FedNL papers' settings, side by side with u-FedNL (C++).

Settings (Safaryan et al. 2022; Burlachenko & Richtarik, arXiv 2410.08760): logistic
loss, lambda = 1e-3, intercept added, clients x rows per client w8a 142 x 350, a9a
80 x 407, phishing 100 x 110 (``data.rows_per_worker``: the rows beyond are left
out, as the FedNL code does: 49, 1 and 55 rows), target ||grad f|| <= 1e-9.  For
every method: communication rounds, iterations, MB sent up (clients -> master) and
seconds of the run (``wall_time``: data loading and set-up excluded) to the target,
split into compute (master and the slowest worker rank) and communication (the rest
of the rounds' time: latency, transfer, waiting), and distnewton's time over u-FedNL's.

Methods: fednl with each compressor (K = 8d; ``preset: paper``: theoretical alpha,
option 1; h0 local),
with and without line search (FedNL-LS: option 2, c = 0.49, gamma = 0.5, as u-FedNL
runs it), FedNL-PP (tau = 12, randseqk), and newton, giant, ranl, lbfgs at the same
settings.  distnewton runs with ``--backend sim`` (one process) or ``--backend mpi``
(``mpiexec -n R+1``: R worker ranks hosting the clients as logical workers).

u-FedNL (``../shared/peers/build-ufednl.sh`` builds ``bin_fednl_local``; pass
``--ufednl PATH`` or let the script find ``~/.cache/ufednl``): FedNL-LS with RandSeqK
and with the identity compressor (theoretical alpha, option B, K = 8d), with as many
threads as distnewton has worker ranks (``--ranks``), on the same decompressed
file; its rounds are raised (x1.5) until its printed ||grad f|| reaches the target.
Its time is its own "Time spent to execution" (loading included, ~0.1-0.3 s).

    python benchmarks/fednl_bench.py [--sets w8a,a9a,phishing] [--backend sim|mpi]
        [--ranks 2] [--methods all|fednl-ls|...] [--ufednl PATH] [--data-dir DIR] [--smoke]
"""

from __future__ import annotations

import argparse
import bz2
import os
import re
import shutil
import subprocess
import sys
import tempfile

import numpy as np
from _smoke import SMOKE_HELP, synth_set  # noqa: E402  (benchmarks/, the script's folder)
from _tables import markdown_table  # noqa: E402

import distnewton

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: set -> (file, features, clients, rows per client)
SETS = {"w8a": ("w8a.bz2", 300, 142, 350), "a9a": ("a9a.bz2", 123, 80, 407),
        "phishing": ("phishing.crlf.bz2", 68, 100, 110)}
TARGET = 1e-9
PAPER = {"preset": "paper"}       # option 1, theoretical alpha, no line search
LS = {**PAPER, "line_search": True, "option": 2, "ls_c": 0.49, "ls_gamma": 0.5}
COMPRESSORS = ("identity", "topk", "randk", "randseqk", "toplek", "rankr")


def methods():
    out = {}
    for c in COMPRESSORS:
        out[f"fednl {c}"] = {"name": "fednl", "compressor": c, **PAPER}
        out[f"fednl-ls {c}"] = {"name": "fednl", "compressor": c, **LS}
    out["fednl-pp randseqk tau=12"] = {"name": "fednl", "compressor": "randseqk",
                                       "participation": 12, **PAPER}
    for name in ("newton", "giant", "ranl", "lbfgs"):
        out[name] = {"name": name}
    # ranl as measured (the defaults until 0.3: capacity 1, full-batch gradients, the
    # paper preset's frozen Hessian and plain step)
    out["ranl"].update(preset="paper", capacities=1.0, eval_at="full", batch=None)
    return out


def config(train, features, clients, rows, algo, max_rounds):
    return {"data": {"train": train, "n_features": features, "rows_per_worker": rows},
            "model": {"loss": "logistic", "lambda": 1e-3, "fit_intercept": True},
            "algorithm": algo,
            "run": {"workers": clients, "max_rounds": max_rounds, "grad_norm": TARGET,
                    "grad_rtol": None, "seed": 0}}


def run_distnewton(cfg, backend, ranks, tmp):
    """(status, rounds, iterations, MB up, seconds, final ||grad||, compute s, comm s)."""
    if backend == "sim":
        r = distnewton.solve(cfg)
        h = r.history
    else:
        import yaml
        path = os.path.join(tmp, "c.yaml")
        with open(path, "w") as fh:
            yaml.safe_dump(cfg, fh)
        out = os.path.join(tmp, "r.h5")
        mpiexec = shutil.which("mpiexec", path=os.path.dirname(sys.executable)) or "mpiexec"
        env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
               "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
               "OMPI_MCA_rmaps_base_oversubscribe": "1"}
        res = subprocess.run([mpiexec, "-n", str(ranks + 1), sys.executable, "-m", "distnewton",
                              "run", path, "-o", out, "--overwrite", "-q"],
                             capture_output=True, text=True, env=env)
        if res.returncode != 0:
            raise RuntimeError(res.stderr)
        from distnewton.io.read import load
        r = load(out)
        h = r.history
    g = np.asarray(h["grad_norm"])
    hit = np.flatnonzero(g <= TARGET)
    i = int(hit[0]) if hit.size else len(g) - 1
    return (r.status, int(h["comm_rounds"][i]), int(h["iteration"][i]),
            h["bytes_up"][i] / 1e6, float(h["wall_time"][i]), float(g[i]),
            float(h["time_compute"][i]), float(h["time_comm"][i]))


def find_ufednl(given):
    for path in ([given] if given else []) + [
            os.path.expanduser("~/.cache/ufednl/build/bin_fednl_local/bin_fednl_local")]:
        if path and os.access(path, os.X_OK):
            return path
    return None


def run_ufednl(binary, text, clients, compressor, ranks, rounds, tmp):
    """(rounds, seconds, final ||grad||) of u-FedNL's FedNL-LS, option B."""
    cmd = [binary, "--line_search", "--c_line_search", "0.49", "--gamma_line_search", "0.5",
           "--server_grad_workers", "1", "--server_hessian_workers", "1",
           "--workers", str(ranks), "--k_compressor_as_d_mult", "8", "--algorithm", "fednl1",
           "--train", "--train_dataset", text, "--add_intercept", "--reshuffle_train",
           "--clients", str(clients), "--lambda", "0.001", "--fednl-option-b",
           "--rounds", str(rounds), "--check_split", "--compressor", compressor,
           "--theoretical_alpha", "--out", os.path.join(tmp, "u.bin")]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp).stdout
    grad = float(re.search(r"Norm of full gradient in last iterate: (\S+)", out).group(1))
    ms = float(re.search(r"Time spent to execution is (\S+) milliseconds", out).group(1))
    return rounds, ms / 1e3, grad


def ufednl_to_target(binary, text, clients, compressor, ranks, start, tmp, cap=2000):
    rounds = max(int(start), 5)
    while True:
        r, s, g = run_ufednl(binary, text, clients, compressor, ranks, rounds, tmp)
        if g <= TARGET or rounds >= cap:
            return r, s, g
        rounds = min(cap, int(rounds * 1.5) + 1)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", default="w8a,a9a,phishing")
    ap.add_argument("--backend", default="sim", choices=("sim", "mpi"))
    ap.add_argument("--ranks", type=int, default=2, help="worker ranks (mpi) and u-FedNL threads")
    ap.add_argument("--methods", default="all",
                    help="comma-separated names (see the table), 'fednl-ls' or 'all'")
    ap.add_argument("--max-rounds", type=int, default=1000)
    ap.add_argument("--ufednl", default=None, help="path of u-FedNL's bin_fednl_local")
    ap.add_argument("--data-dir", default=os.path.join(REPO, "..", "shared", "data"))
    ap.add_argument("--smoke", action="store_true", help=SMOKE_HELP)
    args = ap.parse_args(argv)
    chosen = methods()
    if args.methods == "fednl-ls":
        chosen = {k: v for k, v in chosen.items() if k.startswith("fednl-ls")}
    elif args.methods != "all":
        chosen = {k: chosen[k] for k in args.methods.split(",")}
    binary = None if args.smoke else find_ufednl(args.ufednl)
    tmp = tempfile.mkdtemp(prefix="fednl_bench.")
    sets = SETS
    if args.smoke:               # 6 clients x 50 rows of a 20-feature synthetic set
        train, _ = synth_set(tmp, "smoke", 320, 20, density=0.3)
        sets = {"smoke": (train, 20, 6, 50)}
        args.sets, args.max_rounds = "smoke", 30
        chosen = {k: chosen[k] for k in ("fednl-ls randseqk", "fednl toplek", "newton")}
    for name in args.sets.split(","):
        file, d, clients, rows = sets[name]
        train = file if args.smoke else os.path.join(args.data_dir, file)
        if not os.path.exists(train):
            print(f"\n{name}: {train} not found, skipped")
            continue
        table = []
        for label, algo in chosen.items():
            if algo.get("participation", 0) > clients:
                algo = {**algo, "participation": max(1, clients // 2)}
            cfg = config(train, d, clients, rows, algo, args.max_rounds)
            st, rounds, its, mb, sec, g, comp, comm = run_distnewton(cfg, args.backend,
                                                                     args.ranks, tmp)
            table.append([label, f"distnewton {args.backend}", st, rounds, its, f"{mb:.2f}",
                          f"{sec:.2f}", f"{comp:.2f}", f"{comm:.2f}", f"{g:.1e}", ""])
            if binary and label in ("fednl-ls randseqk", "fednl-ls identity"):
                text = os.path.join(tmp, f"{name}.txt")
                if not os.path.exists(text):
                    with bz2.open(train, "rb") as src, open(text, "wb") as dst:
                        shutil.copyfileobj(src, dst)
                comp = "seqk" if "randseqk" in label else "identical"
                r, s, g2 = ufednl_to_target(binary, text, clients, comp, args.ranks, its, tmp)
                table.append([label, f"u-FedNL {args.ranks} threads",
                              "converged" if g2 <= TARGET else "max_rounds", r, r, "",
                              f"{s:.2f}", "", "", f"{g2:.1e}", ""])
                table[-2][-1] = f"{sec / s:.2f}x u-FedNL"
        if not binary and not args.smoke:
            print("\n(u-FedNL rows left out: build it with ../shared/peers/build-ufednl.sh "
                  "or pass --ufednl PATH)")
        markdown_table(["method", "implementation", "status", "rounds", "iterations",
                        "MB up", "seconds", "compute s", "comm s", "grad norm",
                        "time ratio"], table,
                       title=f"{name}: {clients} clients x {rows} rows, d = {d} + 1, "
                             f"lambda = 1e-3, to ||grad f|| <= {TARGET:g}")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
