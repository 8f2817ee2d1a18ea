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
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _e2e_report import explain, header, report  # noqa: E402
from _e2e_runs import (BLAS1, P, WORK, best_of, dn_rows, liblinear_rows,  # noqa: E402
                       liblinear_version, load, objective, read_csr, run,
                       setup_liblinear, spark_row, the_data)
from _smoke import REPO, SMOKE_HELP  # noqa: E402
import _spark_lr as spark_lr  # noqa: E402

OUT = os.path.join(REPO, "benchmarks", "results", "e2e_bench.md")


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


if __name__ == "__main__":
    sys.exit(main())
