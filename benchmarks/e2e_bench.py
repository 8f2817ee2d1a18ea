"""From text to model: LIBLINEAR's train, Spark ML and distnewton, whole processes timed.

    python benchmarks/e2e_bench.py --setup             # once: apt-get install liblinear-tools
    python benchmarks/e2e_bench.py --setup-spark       # once: pyspark in its own venv
    python benchmarks/e2e_bench.py [--data FILE | --samples N] [--skip spark] [--smoke]

Data: the 1 GB synthetic set ``distnewton data synth big.svm --samples 2000000
--features 1000 --density 0.02 --seed 0``, generated once into ``--work`` (default
``~/.cache/distnewton-bench/e2e/``; ``--samples`` scales it), or any LIBSVM file
(``--data FILE``).

Problem: logistic regression, L2, lambda = 1/n, no intercept:
f(w) = (1/n) sum log(1 + exp(-y x.w)) + lambda/2 |w|^2 (LIBLINEAR ``-s 0 -c 1 -B -1``
minimises C sum(...) + |w|^2/2 = C n f(w); Spark's LogisticRegression mean log-loss +
regParam/2 |w|^2 with regParam = lambda).

Contenders, P = 2 cores used (ranks or threads), each one whole process (or mpiexec
job) timed by the wall clock from its start to the written model, with the peak
resident memory (VmHWM, sampled from /proc) of every process or rank:

* ``liblinear-train -s 0 -c 1 -e EPS -B -1 FILE MODEL`` (Debian's liblinear-tools:
  one thread); EPS from ``--liblinear-eps``, divided by 10 (up to
  ``--liblinear-tries`` runs) while its objective misses the target;
* Spark ML ``LogisticRegression`` on ``local[2]`` (``_spark_lr.py`` in its own
  venv: JVM start, reading the text, L-BFGS at ``--spark-tol``, writing the weights);
* ``mpiexec -n 3 python -m distnewton run`` (master + 2 workers) and ``mpiexec -n 2
  ... --workers 2 --set run.master_shard=true`` (rank 0 hosts worker 0), algorithm
  ``newton`` at its defaults, ``run.grad_rtol`` ``--grad-rtol``; each: cold (the text
  file, ``--set data.cache=`` a fresh empty folder), warm (the same command again:
  the cache is there) and from shards (``data.shards``, written by ``distnewton data
  split FILE --parts 2``).  When distnewton refuses the ``data.cache`` key, cold is
  the text file without it and the warm rows are left out, saying so.
* ``distnewton data synth`` and ``data split`` as rows of their own (informative).

Every model's objective is computed here in numpy from the same CSR matrix (the
stable log(1 + exp(-m))), and its relative gap to the best of them printed; rows
missing ``--target`` (1e-9) are marked.  Then the goals: cold distnewton (the better
layout) <= 1/2 liblinear-train and <= 1/3 Spark, warm <= 1/4 liblinear-train.
Writes ``benchmarks/results/e2e_bench.md`` (not with ``--smoke``, ``--data``,
``--samples`` or ``--skip``).  Every run uses the OS page cache: the text file is
read once here first (for the objectives), so no contender pays for the disk.

``--smoke``: 20,000 samples in a temporary folder, the whole script in seconds: the
distnewton rows, LIBLINEAR's when installed (otherwise left out, saying so), Spark's
only with ``--with-spark`` (its JVM start alone takes 20-40 s).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _memory import run_measured  # noqa: E402
from _smoke import REPO, SMOKE_HELP  # noqa: E402
from _tables import markdown_table  # noqa: E402
import _spark_lr as spark_lr  # noqa: E402

OUT = os.path.join(REPO, "benchmarks", "results", "e2e_bench.md")
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


# ---------------------------------------------------------------- output

def header(args, data, n, d, nnz, lam, ll_ver, spark_ver, load_start):
    git = subprocess.run(["git", "-C", REPO, "describe", "--always", "--dirty"],
                         capture_output=True, text=True).stdout.strip() or "unknown"
    cpu = "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as fh:
        cpu = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), cpu)
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    java = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr
    java = java.splitlines()[0] if java else "not found"
    import importlib.metadata as md
    vers = []
    for pkg in ("distnewton", "numpy", "scipy", "mpi4py", "mpich", "h5py", "pyarrow"):
        try:
            vers.append(f"{pkg} {md.version(pkg)}")
        except md.PackageNotFoundError:
            pass
    argv = " ".join(sys.argv[1:])
    return (f"# From text to model: LIBLINEAR, Spark and distnewton, whole processes\n\n"
            f"`python benchmarks/e2e_bench.py{' ' + argv if argv else ''}`\n\n"
            f"- date: {now()}, commit {git}\n"
            f"- machine: {platform.node()}, {os.cpu_count()} cores ({cpu}), {mem:.0f} GiB; "
            f"load average {load_start} at the start\n"
            f"- python {platform.python_version()}; {', '.join(vers)}; liblinear-tools "
            f"{ll_ver or 'not installed'}; pyspark {spark_ver or 'not installed'}; {java}\n"
            f"- data: `{os.path.basename(data)}`, {os.path.getsize(data) / 1e6:.0f} MB of "
            f"LIBSVM text, n = {n}, d = {d}, {nnz} non-zeros; lambda = 1/n = {lam:.3e}\n"
            f"- problem: f(w) = (1/n) sum log(1 + exp(-y x.w)) + lambda/2 |w|^2, no "
            f"intercept; P = {P} (ranks or threads); every contender reads the file from "
            f"the OS page cache\n")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", help="a LIBSVM file instead of the synthetic set")
    ap.add_argument("--samples", type=int, default=2_000_000)
    ap.add_argument("--features", type=int, default=1000)
    ap.add_argument("--density", type=float, default=0.02)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", default=WORK, help="folder of the generated data (kept)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="runs per row (the fastest is shown; cold: each into an empty cache)")
    ap.add_argument("--target", type=float, default=1e-9,
                    help="objective relative gap every row must reach")
    ap.add_argument("--grad-rtol", type=float, default=1e-8,
                    help="distnewton run.grad_rtol (its default)")
    ap.add_argument("--liblinear-eps", type=float, default=1e-4)
    ap.add_argument("--liblinear-tries", type=int, default=3)
    ap.add_argument("--spark-tol", type=float, default=1e-12)
    ap.add_argument("--spark-max-iter", type=int, default=1000)
    ap.add_argument("--spark-memory", default="8g", help="spark.driver.memory")
    ap.add_argument("--spark-python", default=spark_lr.PYTHON,
                    help="python of the venv with pyspark (--setup-spark)")
    ap.add_argument("--skip", nargs="+", default=[], choices=["liblinear", "spark", "distnewton"])
    ap.add_argument("--setup", action="store_true",
                    help="apt-get install -y liblinear-tools (when missing) and exit")
    ap.add_argument("--setup-spark", action="store_true",
                    help=f"make the Spark venv ({spark_lr.VENV}; pip install pyspark) and exit")
    ap.add_argument("--smoke", action="store_true",
                    help=SMOKE_HELP + "; 20,000 samples, no Spark (a JVM start costs 20-40 s)")
    ap.add_argument("--with-spark", action="store_true", help="--smoke: the Spark row too")
    args = ap.parse_args(argv)
    if args.setup:
        if not shutil.which("liblinear-train"):
            setup_liblinear()
        print(f"liblinear-train: {shutil.which('liblinear-train')}")
        return 0
    if args.setup_spark:
        spark_lr.setup(os.path.dirname(os.path.dirname(args.spark_python)))
        print(f"pyspark {spark_lr.version(args.spark_python)} in {args.spark_python}")
        return 0
    write = not (args.smoke or args.data or args.skip or args.samples != 2_000_000)
    if args.smoke:
        args.samples, args.spark_memory = 20_000, "1g"
        if not args.with_spark:
            args.skip = [*args.skip, "spark"]
        with tempfile.TemporaryDirectory(prefix="e2e_bench-") as tmp:
            args.work = tmp
            return bench(args, write)
    return bench(args, write)


def bench(args, write):
    load_start, t_start = load(), time.perf_counter()
    env = dict(os.environ, **BLAS1)
    env.pop("DISTNEWTON_CACHE", None)
    ll_ver = None if "liblinear" in args.skip else liblinear_version()
    spark_ver = None if "spark" in args.skip else spark_lr.version(args.spark_python)
    rows, notes = [], []
    data, synth = the_data(args, env)
    if synth:
        rows.append(synth)
    print(f"reading {data} for the objectives ... (load {load()})", file=sys.stderr, flush=True)
    X, y = read_csr(data)
    n, d = X.shape
    lam = 1.0 / n
    obj = lambda w: objective(X, y, w, lam)  # noqa: E731
    with tempfile.TemporaryDirectory(prefix="e2e_bench-", dir=args.work) as tmp:
        no_cache = False
        if "distnewton" not in args.skip:
            shards = os.path.join(tmp, "shards")
            cmd = [sys.executable, "-m", "distnewton", "data", "split", data, "--parts", P,
                   "--out", shards, "--cache", "off"]     # text to parts; no user cache
            secs, rc, err, hwm = run(cmd, "data split", env=env, cwd=tmp)
            if rc != 0:
                sys.exit(f"data split failed ({rc}):\n{err}")
            rows.append({"what": f"`distnewton data split FILE --parts {P} --cache off` (once)",
                         "secs": secs, "hwm": hwm, "kind": "info"})
            dn, no_cache = dn_rows(args, data, shards, tmp, obj, env)
            rows += dn
        if ll_ver:
            rows += liblinear_rows(args, data, tmp, obj, [r["f"] for r in rows if "f" in r])
        else:
            notes.append("LIBLINEAR rows left out: " + ("--skip" if "liblinear" in args.skip else
                         "no liblinear-train (`python benchmarks/e2e_bench.py --setup`)"))
        if spark_ver:
            rows.append(best_of(args.repeat, lambda: spark_row(args, data, d, lam, tmp, obj)))
        else:
            why = ("--smoke (add --with-spark)" if args.smoke else "--skip") \
                if "spark" in args.skip else \
                "no venv with pyspark (`python benchmarks/e2e_bench.py --setup-spark`)"
            notes.append("Spark rows left out: " + why)
    if no_cache:
        notes.append("warm rows left out: this distnewton has no `data.cache` key (the cold rows "
                     "ran on the text file without it)")
    table, goals = report(rows, args.target)
    text = (header(args, data, n, d, X.nnz, lam, ll_ver, spark_ver, load_start) + "\n"
            + table + "\n" + goals + "\n"
            + "".join(f"- {x}\n" for x in notes) + explain(args)
            + f"\nThe benchmark took {time.perf_counter() - t_start:.0f} s; load average at "
            f"the end {load()} (one job at a time).\n")
    print(text)
    if write:
        with open(OUT, "w") as fh:
            fh.write(text)
        print(f"wrote {OUT}", file=sys.stderr)
    return 0


def report(rows, target):
    fbest = min(r["f"] for r in rows if "f" in r) if any("f" in r for r in rows) else None
    ll = next((r for r in rows if r["kind"] == "liblinear" and
               (r["f"] - fbest) / abs(fbest) <= target), None)
    ll = ll or next((r for r in reversed(rows) if r["kind"] == "liblinear"), None)
    sp = next((r for r in rows if r["kind"] == "spark"), None)
    out = []
    for r in rows:
        gap = "-"
        if "f" in r:
            g = (r["f"] - fbest) / abs(fbest)
            gap = f"{g:.1e}" + ("" if g <= target else f" MISS (> {target:g})")
        note = r.get("note") or ""
        solve = r.get("solve_text") or ("-" if r.get("solve") is None else f"{r['solve']:.1f}")
        out.append([r["what"], f"{r['secs']:.1f}",
                    f"{r['secs'] / ll['secs']:.2f}" if ll else "-", solve, mib(r["hwm"]), gap,
                    note])
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        markdown_table(["what", "seconds", "x liblinear-train", "of which solve s",
                        "peak RSS MiB (per rank / process)", "objective rel. gap", "note"], out)
    lines = [f"f(w) best = {fbest:.15f}; target: every objective within {target:g} "
             "(relative) of the best\n" if fbest is not None else ""]

    def best(kind):
        cand = [r for r in rows if r["kind"] == kind]
        return min(cand, key=lambda r: r["secs"]) if cand else None

    def goal(name, row, ref, k, ref_name):
        frac = f"1/{k}"
        if row is None or ref is None:
            lines.append(f"- goal: {name} <= {frac} x {ref_name}: n/a (a row is missing)")
            return
        lim = ref["secs"] / k
        ok = row["secs"] <= lim
        lines.append(f"- goal: {name} <= {frac} x {ref_name}: {row['secs']:.1f} s against "
                     f"{frac} x {ref['secs']:.1f} = {lim:.1f} s ({ref_name} / distnewton = "
                     f"{ref['secs'] / row['secs']:.2f}): {'PASS' if ok else 'MISS'}")
    cold, warm = best("cold"), best("warm")
    goal("cold distnewton (better layout)", cold, ll, 2, "liblinear-train")
    goal("cold distnewton (better layout)", cold, sp, 3, "Spark")
    goal("warm distnewton (better layout)", warm, ll, 4, "liblinear-train")
    return buf.getvalue(), "\n".join(lines) + "\n"


def explain(args):
    return (f"\nRows: seconds = the whole process (mpiexec job), wall clock from its start to "
            f"its exit with the model written, the fastest of {args.repeat} (synth and split: "
            f"one run); x liblinear-train = seconds over the LIBLINEAR "
            f"row that reached the target; of which solve = distnewton's history wall_time at "
            f"the last round (the rest is start-up, reading the data and writing the result), "
            f"LIBLINEAR's ~ its seconds less those of the `-e 1e9` row; "
            f"peak RSS = VmHWM sampled every 0.1 s per MPI rank (r0 = rank 0) or per process "
            f"(Spark: the JVM `java` and the driver `python`); objective rel. gap = (f(w) - "
            f"f_best)/f_best with f computed here from the model's weights. distnewton: "
            f"algorithm newton at its defaults, run.grad_rtol {args.grad_rtol:g}, BLAS threads "
            f"1; liblinear-train starts at -e {args.liblinear_eps:g} and is tightened 10x "
            f"while it misses the target; Spark: regParam = lambda, elasticNetParam 0, "
            f"fitIntercept False, standardization False, labels mapped to {{0, 1}}, "
            f"numFeatures given (no extra pass), spark.driver.memory {args.spark_memory}.\n")


if __name__ == "__main__":
    sys.exit(main())
