"""Part (a) of scale_bench.py: Hessian-free runs on news20 and on a d = 1,000,000
synthetic set, with peak memory per rank next to the shard's CSR size."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import yaml
from sklearn.datasets import load_svmlight_file

import core_bench as cb
from _memory import run_capped
from _smoke import have_liblinear, synth_set

TARGET = 1e-6
PY = sys.executable
SYNTH_CONFIG = os.path.join(cb.REPO, "configs", "synth1m", "giant.yaml")


def csr_mib(X):
    return (X.data.nbytes + X.indices.nbytes + X.indptr.nbytes) / 2**20


def shard_mib(X, y, K, seed=0):
    """Largest CSR size of the K iid shards distnewton makes (same partition)."""
    sys.path.insert(0, cb.REPO)
    from distnewton.data import partition
    return max(csr_mib(X[p]) for p in partition(y, K, "iid", seed=seed))


def run_one(tmp, tag, data, model, alg, max_rounds, f_star, K, cap, grad_rtol=1e-14):
    cfg = {"data": {**data, "partition": "iid", "seed": 0}, "model": model, "algorithm": alg,
           "run": {"max_rounds": max_rounds, "grad_rtol": grad_rtol, "f_star": f_star,
                   "target_subopt": None if f_star is None else TARGET, "backend": "mpi"}}
    path = os.path.join(tmp, f"{tag}.yaml")
    with open(path, "w") as fh:
        yaml.safe_dump(cfg, fh)
    out = os.path.join(tmp, f"{tag}.h5")
    cmd = ["mpiexec", "-n", str(K + 1), PY, "-m", "distnewton", "run", path, "-o", out, "-q",
           "--overwrite"]
    whole, capped, rc, hwm = run_capped(cmd, cap)
    hist, status = {}, f"no result (exit {rc})"
    if os.path.exists(out):
        import h5py
        with h5py.File(out, "r") as f:
            hist = {k: f["history"][k][:] for k in f["history"]}
            status = str(f.attrs["status"])
    print(f"  {tag}: {status}, whole {whole:.1f} s, load {cb.load()}", file=sys.stderr, flush=True)
    return {"whole": whole, "capped": capped, "status": status, "hist": hist, "hwm": hwm,
            "max_rounds": max_rounds}


def sweep(args, tmp, name, data, model, f_star, plan):
    """plan: [(label, algorithm section, max_rounds, K)] -> list of (label, K, result).

    ``--smoke`` keeps the first entry, ``--round-cap`` lowers every round cap."""
    plan = plan[:getattr(args, "smoke_plans", None) or len(plan)]
    cap = getattr(args, "round_cap", None)
    return [(label, K, run_one(tmp, f"{name}-{i}", data, model, alg,
                               min(rounds, cap or rounds), f_star, K, args.cap_seconds))
            for i, (label, alg, rounds, K) in enumerate(plan)]


def best_f_star(known, results):
    """The lowest of ``known`` (None: unknown) and every run's best loss."""
    losses = [float(np.min(r["hist"]["loss"])) for *_, r in results if r["hist"]]
    return min(([known] if known is not None else []) + losses)


def news20_data(args, tmp):
    """(train, d, positive labels): news20, or a 400 x 6000 synthetic stand-in (--smoke)."""
    if getattr(args, "smoke", False):
        return synth_set(tmp, "news20-like", 400, 6000, density=0.003)[0], 6000, [1]
    return os.path.join(os.path.abspath(args.data_dir), "news20.bz2"), 62061, list(range(1, 11))


def news20(args, tmp):
    train, d, positive = news20_data(args, tmp)
    X, y_raw = load_svmlight_file(train, n_features=d)
    X = X.tocsr()
    y = np.where(np.isin(y_raw, positive), 1.0, -1.0)
    n, lam = X.shape[0], 1.0 / X.shape[0]
    f_ll = t_ll = None
    if have_liblinear():
        w_ll, t_ll = cb.liblinear_fitter(X, y, lam)(1e-9)
        f_ll = cb.objective(X, y, w_ll, lam)
    plan = []
    for K in dict.fromkeys((args.workers, 2)):
        plan += [("giant", {"name": "giant"}, 1500, K),
                 ("adaptive_localnewton", {"name": "adaptive_localnewton"}, 1500, K),
                 ("newton (Newton-CG)", {"name": "newton", "solver": "cg"}, 1500, K)]
    plan.append(("giant, direction: local (the paper's)", {"name": "giant", "direction": "local"},
                 300, args.workers))
    data = {"train": train, "n_features": d, "positive_labels": positive}
    model = {"loss": "logistic", "lambda": "1/n", "fit_intercept": False}
    results = sweep(args, tmp, "news20", data, model, f_ll, plan)
    f_star = best_f_star(f_ll, results)
    shards = {K: shard_mib(X, y, K) for K in {K for _, K, _ in results}}
    ll = ("LIBLINEAR not installed: the best distnewton loss" if f_ll is None else
          f"LIBLINEAR -s 0 -e 1e-9: {f_ll:.15f}, {t_ll:.1f} s")
    head = (f"{os.path.basename(train)}: n = {n}, d = {d}, nnz = {X.nnz}, CSR "
            f"{csr_mib(X):.1f} MiB in all; a dense d x d Hessian would be "
            f"{d * d * 8 / 1e9:.2g} GB. lambda = 1/n = {lam:.3e}. f* = {f_star:.15f} ({ll}).")
    return head, f_star, shards, results


def synth(args, tmp):
    with open(SYNTH_CONFIG) as fh:
        cfg = yaml.safe_load(fh)
    s = cfg["data"]["synth"]
    name = "synth1m.svm"
    if getattr(args, "smoke", False):                  # the same generator, shrunk
        s = {**s, "n_samples": 400, "n_features": 8000,      # as many non-zeros per row
             "density": min(1.0, s["density"] * s["n_features"] / 8000)}
        name = "synth-smoke.svm"
    train = os.path.join(args.synth_dir, name)
    if not os.path.exists(train):
        os.makedirs(args.synth_dir, exist_ok=True)
        subprocess.run([PY, "-m", "distnewton", "data", "synth", train, "--samples",
                        str(s["n_samples"]), "--features", str(s["n_features"]), "--density",
                        str(s["density"]), "--noise", str(s["noise"]), "--seed", str(s["seed"])],
                       check=True, capture_output=True)
    d = s["n_features"]
    X, y = load_svmlight_file(train, n_features=d)
    X = X.tocsr()
    lam = cfg["model"]["lambda"]
    f_cfg = None if getattr(args, "smoke", False) else cfg["run"]["f_star"]
    plan = []
    for K in dict.fromkeys((args.workers, 2)):
        plan += [("giant", {"name": "giant"}, 400, K),
                 ("adaptive_localnewton", {"name": "adaptive_localnewton"}, 400, K),
                 ("newton (Newton-CG)", {"name": "newton", "solver": "cg"}, 400, K)]
    data = {"train": train, "n_features": d}
    model = {"loss": "logistic", "lambda": lam}
    results = sweep(args, tmp, "synth1m", data, model, f_cfg, plan)
    f_star = best_f_star(f_cfg, results)
    shards = {K: shard_mib(X, y, K) for K in {K for _, K, _ in results}}
    known = ("--smoke: the best distnewton loss" if f_cfg is None else
             f"config: {f_cfg:.15f}, from newton solver cg to ||grad|| 2e-14")
    head = (f"synthetic (configs/synth1m/giant.yaml): n = {X.shape[0]}, d = {d}, nnz = {X.nnz}, "
            f"CSR {csr_mib(X):.1f} MiB in all; a dense Hessian would be {d * d * 8 / 1e12:.2g} TB. "
            f"lambda = {lam:g}. f* = {f_star:.15f} ({known}).")
    return head, f_star, shards, results


def print_table(title, head, f_star, shards, results):
    print(f"## {title}\n\n{head}\n")
    rows = []
    for label, K, r in results:
        h, hwm = r["hist"], r["hwm"]
        workers = [kb / 1024 for rank, kb in hwm.items() if rank > 0]
        mem = (f"{hwm.get(0, 0) / 1024:.0f}", f"{max(workers):.0f}" if workers else "-")
        cap = f"{r['max_rounds']}" + (" + time cap" if r["capped"] else "")
        if not h:
            rows.append([label, str(K), cap, r["status"], "-", "-", "-", "-", *mem,
                         f"{shards[K]:.1f}"])
            continue
        sub = (h["loss"] - f_star) / abs(f_star)
        (i,) = cb.first_reaching(sub, [TARGET])
        cgs = int(h["cg_iterations"].sum()) if "cg_iterations" in h else 0
        rows.append([label, str(K), cap, r["status"],
                     "not reached" if i is None else str(int(h["comm_rounds"][i])),
                     "not reached" if i is None else f"{h['wall_time'][i]:.1f}",
                     f"{np.min(sub):.1e}", f"{int(h['iteration'][-1])} / {cgs}", *mem,
                     f"{shards[K]:.1f}"])
    print(cb.markdown(["run", "K", "round cap", "status", "rounds to 1e-6", "in-run s to 1e-6",
                       "best rel. subopt.", "iterations / CG its", "peak MiB rank 0 (master)",
                       "peak MiB per worker (max)", "shard CSR MiB (max)"], rows))
    print("\nPeak memory: VmHWM of each rank, sampled every 0.1 s. Rank 0 reads the whole file "
          "and scatters the shards; a worker holds its shard (CSR) and O(d) vectors (CG, "
          "line search), never a d x d array.\n")


def run_all(args, tmp):
    t = time.perf_counter()
    if not args.skip_news20:
        print_table("(a) news20, Hessian-free (solver: auto -> CG)", *news20(args, tmp))
    if not args.skip_synth:
        print_table("(a') synthetic, d = 1,000,000, Hessian-free", *synth(args, tmp))
    print(f"(Hessian-free part: {time.perf_counter() - t:.0f} s, load average {cb.load()})\n")
