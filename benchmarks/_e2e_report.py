"""The output of ``e2e_bench.py``: the Markdown file's header (machine, versions,
data, problem), the table of rows (``_e2e_runs.py``) with their objective gaps
against the best, the speed goals as PASS/MISS, and the paragraph that says what
the columns measure.
"""

from __future__ import annotations

import contextlib
import io
import os
import platform
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _e2e_runs import P, mib, now  # noqa: E402
from _smoke import REPO  # noqa: E402
from _tables import markdown_table  # noqa: E402


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
