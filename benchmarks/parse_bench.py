"""LIBSVM text to CSR: the parsers side by side, MB/s on one thread.

    python benchmarks/parse_bench.py [--file F.svm] [--mb 100] [--repeat 3]

Without ``--file`` a synthetic set of about ``--mb`` MB is written once into a
temporary folder (``distnewton.data.make_synthetic``, 1,000 features, 2% dense,
values as Python's ``repr``: 17 significant digits, the worst case for the
numpy parser's exact fast path).  Rows: distnewton's ``read_libsvm`` with Arrow's
kernels (the default) and with the numpy parser only, scikit-learn's
``load_svmlight_file``, and polars' string kernels (when installed; a sketch of
the same tokenise-and-cast, not a reader).  Every parser runs in this process
with one thread (``POLARS_MAX_THREADS=1``, BLAS pinned); the best of
``--repeat`` runs is reported, and each result is checked equal to the default's.
Writes ``benchmarks/results/parse_bench.md`` (``--smoke``: a tiny file, stdout only).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import tempfile
import time

os.environ.setdefault("POLARS_MAX_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from _smoke import REPO, SMOKE_HELP  # noqa: E402,F401
from _tables import markdown_table  # noqa: E402

import distnewton.data.libsvm as L  # noqa: E402
from distnewton.data import make_synthetic, write_libsvm  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "parse_bench.md")


def write_set(folder, mb):
    rows = max(200, int(mb * 1e6 / 500))          # about 500 bytes per row
    X, y, _ = make_synthetic(rows, 1000, density=0.02, seed=1, loss="logistic")
    path = os.path.join(folder, "parse.svm")
    write_libsvm(path, X, y)
    return path


def distnewton_arrow(path):
    L.ARROW = True
    ds = L.read_libsvm(path)
    return ds.X, ds.y


def distnewton_numpy(path):
    L.ARROW = False
    try:
        ds = L.read_libsvm(path)
    finally:
        L.ARROW = L.libsvm_arrow.available()
    return ds.X, ds.y


def sklearn_reader(path):
    from sklearn.datasets import load_svmlight_file
    X, y = load_svmlight_file(path)
    return X, y


def polars_sketch(path):
    """Tokenise and cast with polars' kernels (labels, indices, values; no checks)."""
    import polars as pl
    import scipy.sparse as sp
    with open(path, "rb") as fh:
        text = fh.read().decode("ascii")
    s = pl.Series("l", text.split("\n"))
    s = s.str.strip_chars().filter(s.str.len_bytes() > 0)
    toks = s.str.split(" ")
    n = toks.list.len().to_numpy().astype(np.int64)
    flat = toks.explode()
    first = np.zeros(len(flat), bool)
    first[np.concatenate([[0], np.cumsum(n)[:-1]])] = True
    y = flat.filter(pl.Series(first)).cast(pl.Float64).to_numpy()
    parts = flat.filter(pl.Series(~first)).str.split_exact(":", 1).struct.unnest()
    idx = parts["field_0"].cast(pl.Int64).to_numpy() - 1
    val = parts["field_1"].cast(pl.Float64).to_numpy().copy()
    indptr = np.concatenate([[0], np.cumsum(n - 1)])
    X = sp.csr_matrix((val, idx, indptr), shape=(len(y), int(idx.max()) + 1))
    X.eliminate_zeros()
    return X, y


def candidates():
    out = [("distnewton read_libsvm, Arrow kernels (default)", distnewton_arrow),
           ("distnewton read_libsvm, numpy parser", distnewton_numpy)]
    for module, name, fn in (("sklearn", "scikit-learn load_svmlight_file", sklearn_reader),
                             ("polars", "polars string kernels (sketch, no checks)",
                              polars_sketch)):
        try:
            __import__(module)
            out.append((name, fn))
        except ImportError:
            print(f"({name}: {module} not installed, left out)")
    return out


def same(a, b):
    Xa, ya = a
    Xb, yb = b
    Xb = Xb.tocsr()
    if Xb.shape[1] < Xa.shape[1]:
        Xb.resize(Xb.shape[0], Xa.shape[1])
    return Xa.shape == Xb.shape and (Xa != Xb).nnz == 0 and np.array_equal(ya, yb)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--file")
    ap.add_argument("--mb", type=float, default=100)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--smoke", action="store_true", help=SMOKE_HELP)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        path = args.file or write_set(tmp, 0.2 if args.smoke else args.mb)
        mb = os.path.getsize(path) / 1e6
        rows, ref = [], None
        for name, fn in candidates():
            best = np.inf
            for _ in range(1 if args.smoke else args.repeat):
                t0 = time.perf_counter()
                got = fn(path)
                best = min(best, time.perf_counter() - t0)
            ref = got if ref is None else ref
            rows.append([name, f"{best:.2f}", f"{mb / best:.0f}", "yes" if same(ref, got) else "NO"])
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            markdown_table(["parser", "seconds", "MB/s", "same CSR and labels"], rows)
        table = buf.getvalue().strip() + "\n"
        head = (f"# LIBSVM parsing, one thread\n\n`python benchmarks/parse_bench.py"
                f"{' --file ' + os.path.basename(path) if args.file else f' --mb {args.mb:g}'}`: "
                f"{mb:.0f} MB, {ref[0].shape[0]} rows x {ref[0].shape[1]} features, "
                f"{ref[0].nnz} non-zeros; best of {args.repeat}; load average "
                f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores when it ended.\n\n")
        print(head + table)
        if not args.smoke:
            with open(OUT, "w") as fh:
                fh.write(head + table + "\n")


if __name__ == "__main__":
    sys.exit(main())
