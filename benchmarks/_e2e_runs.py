"""The runs of ``e2e_bench.py``: the data, and each contender as whole processes
(``liblinear-train``, Spark ML through ``_spark_lr.py``, ``mpiexec ... distnewton
run`` cold, warm and from shards), timed by the wall clock with the peak resident
memory of every process or rank (``_memory.run_measured``).

A contender gives *rows*: dicts with ``what`` (the row's label), ``secs``, ``hwm``
({rank or process name: peak kB}), ``kind`` (``info``, ``liblinear``, ``spark``,
``cold``, ``warm``, ``shards``), and, for a model, ``f`` (its objective computed
here by :func:`objective`), ``solve`` and ``note``; ``_e2e_report.py`` turns them
into the table and the goals.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _memory import run_measured  # noqa: E402

WORK = os.path.join(os.path.expanduser("~"), ".cache", "distnewton-bench", "e2e")
BLAS1 = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
P = 2


def load():
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def mpiexec():
    here = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    return here if os.path.exists(here) else shutil.which("mpiexec")


def setup_liblinear():
    """apt-get install -y liblinear-tools (apt-get update first when that fails)."""
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    cmd = [*sudo, "apt-get", "install", "-y", "liblinear-tools"]
    if subprocess.run(cmd).returncode != 0:
        subprocess.run([*sudo, "apt-get", "update"], check=True)
        subprocess.run(cmd, check=True)


def liblinear_version():
    if not shutil.which("liblinear-train"):
        return None
    proc = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "liblinear-tools"],
                          capture_output=True, text=True)
    return proc.stdout.strip() or "unknown version"


def mib(hwm):
    """{rank or name: kB} -> 'r0 1234 / r1 567' or '1234' (one process)."""
    if not hwm:
        return "-"
    if len(hwm) == 1:
        return f"{next(iter(hwm.values())) / 1024:.0f}"
    keys = sorted(hwm, key=lambda k: (isinstance(k, str), k if isinstance(k, int) else -hwm[k]))
    return " / ".join(f"{'r' + str(k) if isinstance(k, int) else k} {hwm[k] / 1024:.0f}"
                      for k in keys if hwm[k] >= 1024)


def run(cmd, what, **kw):
    """run_measured, and a line on stderr; exits on failure."""
    print(f"  {what}: {' '.join(map(str, cmd))}", file=sys.stderr, flush=True)
    secs, rc, err, hwm = run_measured(cmd, **kw)
    if kw.get("match"):                     # the launcher's helpers (no PMI_RANK)
        hwm = {k: v for k, v in hwm.items() if k != -1}
    print(f"    {secs:.1f} s, exit {rc}, peak MiB {mib(hwm)}, load {load()}", file=sys.stderr,
          flush=True)
    return secs, rc, err, hwm


def objective(X, y, w, lam):
    """(1/n) sum log(1 + exp(-y x.w)) + lam/2 |w|^2 (logaddexp: no overflow)."""
    w = np.asarray(w, dtype=np.float64)
    if w.shape[0] < X.shape[1]:
        w = np.concatenate([w, np.zeros(X.shape[1] - w.shape[0])])
    m = y * (X @ w[: X.shape[1]])
    return float(np.mean(np.logaddexp(0.0, -m)) + 0.5 * lam * np.dot(w, w))



# ---------------------------------------------------------------- the data

def synth_cmd(path, args):
    return [sys.executable, "-m", "distnewton", "data", "synth", path, "--samples", args.samples,
            "--features", args.features, "--density", args.density, "--seed", args.seed]


def the_data(args, env):
    """(path, synth row or None): the LIBSVM file, generated once into --work."""
    if args.data:
        return os.path.abspath(args.data), None
    os.makedirs(args.work, exist_ok=True)
    name = f"synth-n{args.samples}-d{args.features}-p{args.density:g}-s{args.seed}"
    path = os.path.join(args.work, name + ".svm")
    meta = path + ".json"
    cmd = synth_cmd(path, args)
    if not (os.path.exists(path) and os.path.exists(meta)):
        secs, rc, err, hwm = run(cmd, "data synth", env=env, cwd=args.work)
        if rc != 0:
            sys.exit(f"data synth failed ({rc}):\n{err}")
        with open(meta, "w") as fh:
            json.dump({"seconds": secs, "hwm": hwm, "when": now(), "load": load()}, fh)
        note = ""
    else:
        note = " (cached: measured when generated"
    with open(meta) as fh:
        m = json.load(fh)
    if note:
        note += f" {m['when']}, load {m['load']})"
    line = " ".join(map(str, ["distnewton data synth", *cmd[6:]]))
    return path, {"what": f"`{line}`{note}", "secs": m["seconds"], "hwm": m["hwm"], "kind": "info"}


def read_csr(path):
    from distnewton.data.libsvm import read_libsvm
    ds = read_libsvm(path)
    y = np.where(np.asarray(ds.y) > 0, 1.0, -1.0)
    return ds.X.tocsr(), y


def now():
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")



# ---------------------------------------------------------------- contenders

def liblinear_rows(args, data, tmp, obj, fs):
    """liblinear-train at --liblinear-eps, tightened 10x while it misses the target
    (the best objective so far: ``fs`` and its own)."""
    model = os.path.join(tmp, "liblinear.model")

    def train(eps, what):
        cmd = ["liblinear-train", "-s", "0", "-c", "1", "-e", f"{eps:g}", "-B", "-1", data, model]
        secs, rc, err, hwm = run(cmd, what, cwd=tmp)
        if rc != 0:
            sys.exit(f"liblinear-train failed ({rc}):\n{err}")
        return {"secs": secs, "hwm": hwm}

    read = best_of(args.repeat, lambda: train(1e9, "LIBLINEAR, reading only"))
    rows = [read | {"what": "`liblinear-train ... -e 1e9`: reading the file and one gradient "
                            "(stops at once)", "kind": "info"}]
    eps = args.liblinear_eps
    for _ in range(args.liblinear_tries):
        r = best_of(args.repeat, lambda: train(eps, "LIBLINEAR"))
        f = obj(read_liblinear_model(model))
        fs = [*fs, f]
        gap = (f - min(fs)) / abs(min(fs))
        solve = r["secs"] - read["secs"]
        rows.append(r | {"what": f"`liblinear-train -s 0 -c 1 -e {eps:g} -B -1` (1 thread)",
                         "f": f, "kind": "liblinear",
                         "solve_text": f"~{solve:.1f}" if solve > 0 else "- (noise)"})
        if gap <= args.target:
            break
        print(f"    objective gap {gap:.1e} > {args.target:g}: -e {eps / 10:g}", file=sys.stderr)
        eps /= 10
    return rows


def read_liblinear_model(path):
    """The weights of a binary -s 0 model file, scoring label +1."""
    with open(path) as fh:
        lines = fh.read().split("\n")
    head = dict(ln.split(" ", 1) for ln in lines[: lines.index("w")])
    labels = [float(x) for x in head["label"].split()]
    w = np.array([float(ln.split()[0]) for ln in lines[lines.index("w") + 1:] if ln.strip()])
    return w if labels[0] > 0 else -w


def spark_row(args, data, d, lam, tmp, obj):
    out = os.path.join(tmp, "spark.npz")
    cmd = [args.spark_python, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                           "_spark_lr.py"),
           data, out, "--features", d, "--reg", repr(lam), "--tol", f"{args.spark_tol:g}",
           "--max-iter", args.spark_max_iter, "--threads", P, "--memory", args.spark_memory,
           "--tmp", tmp]
    secs, rc, err, hwm = run(cmd, "Spark", cwd=tmp)
    if rc != 0:
        sys.exit(f"Spark failed ({rc}):\n{err}")
    with np.load(out) as a:
        w, fit, iters, jvm = a["w"], float(a["fit"]), int(a["iterations"]), float(a["session"])
    return {"what": f"Spark ML LogisticRegression, local[{P}], tol {args.spark_tol:g}, "
                    f"maxIter {args.spark_max_iter} ({iters} iterations)",
            "secs": secs, "hwm": hwm, "f": obj(w), "kind": "spark", "solve": None,
            "note": f"session (JVM) start {jvm:.1f} s, fit incl. reading {fit:.1f} s"}


def dn_config(tmp, name, data_section, grad_rtol):
    cfg = {"data": data_section, "model": {"loss": "logistic", "lambda": "1/n",
                                           "fit_intercept": False},
           "algorithm": {"name": "newton"}, "run": {"grad_rtol": grad_rtol, "max_rounds": 1000}}
    path = os.path.join(tmp, f"{name}.yaml")
    with open(path, "w") as fh:
        yaml.safe_dump(cfg, fh)
    return path


LAYOUTS = {  # label: (ranks, extra arguments)
    f"-n {P + 1} (master + {P} workers)": (P + 1, []),
    f"-n {P} (rank 0 hosts worker 0)": (P, ["--workers", P, "--set", "run.master_shard=true"]),
}



def dn_run(tmp, cfg, ranks, extra, tag, obj, env, cache=None):
    """One distnewton job; None when it refused data.cache."""
    from distnewton.io.read import load as load_result
    out = os.path.join(tmp, f"dn-{tag}.h5")
    cmd = [mpiexec(), "-n", ranks, sys.executable, "-m", "distnewton", "run", cfg, "-o", out,
           "-q", "--overwrite", *extra]
    if cache is not None:
        cmd += ["--set", f"data.cache={cache}"]
    secs, rc, err, hwm = run(cmd, f"distnewton {tag}", env=env, cwd=tmp, match=b"distnewton")
    if rc == 2 and cache is not None and "data.cache" in err:
        return None
    if rc != 0:
        sys.exit(f"distnewton failed ({rc}):\n{err}")
    res = load_result(out)
    solve = float(res.history["wall_time"][-1])
    status = res.attrs.get("status")
    iters = int(res.history["iteration"][-1])
    return {"secs": secs, "hwm": hwm, "f": obj(res.w), "solve": solve,
            "note": f"{iters} iterations" + ("" if status == "converged" else f", {status}")}


def best_of(repeat, fn):
    """The fastest of ``repeat`` calls of ``fn()`` (rows); None when a call gives None."""
    best = None
    for _ in range(repeat):
        r = fn()
        if r is None:
            return None
        best = r if best is None or r["secs"] < best["secs"] else best
    return best


def dn_rows(args, data, shards, tmp, obj, env):
    rows, no_cache = [], False
    text_cfg = dn_config(tmp, "text", {"train": data}, args.grad_rtol)
    shard_cfg = dn_config(tmp, "shards", {"shards": shards}, args.grad_rtol)
    for label, (ranks, extra) in LAYOUTS.items():
        tag = f"n{ranks}"
        cache = os.path.join(tmp, f"cache-{tag}")

        def cold():                             # every time into an empty cache folder
            shutil.rmtree(cache, ignore_errors=True)
            os.makedirs(cache)
            return dn_run(tmp, text_cfg, ranks, extra, tag + "-cold", obj, env, cache)

        r = None if no_cache else best_of(args.repeat, cold)
        if r is None:
            if not no_cache:
                print("    distnewton refused data.cache: cold = the text file without it; "
                      "no warm rows", file=sys.stderr)
            no_cache = True
            r = best_of(args.repeat, lambda: dn_run(tmp, text_cfg, ranks, extra, tag + "-cold",
                                                    obj, env))
            rows.append(r | {"what": f"distnewton {label}, text file (no data.cache key)",
                             "kind": "cold"})
        else:
            size = sum(os.path.getsize(os.path.join(dp, f))
                       for dp, _, fnames in os.walk(cache) for f in fnames) / 2**20
            r["note"] += f"; the cache: {size:.0f} MiB on disk"
            rows.append(r | {"what": f"distnewton {label}, cold: text, empty data.cache",
                             "kind": "cold"})
            r = best_of(args.repeat, lambda: dn_run(tmp, text_cfg, ranks, extra, tag + "-warm",
                                                    obj, env, cache))
            rows.append(r | {"what": f"distnewton {label}, warm: data.cache filled", "kind": "warm"})
        shutil.rmtree(cache, ignore_errors=True)
        r = best_of(args.repeat, lambda: dn_run(tmp, shard_cfg, ranks, extra, tag + "-shards",
                                                obj, env))
        rows.append(r | {"what": f"distnewton {label}, data.shards", "kind": "shards"})
    return rows, no_cache
