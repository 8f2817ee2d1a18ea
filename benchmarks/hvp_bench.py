"""The Hessian-vector product on one shard: two passes (what distnewton runs) against
one pass over the rows (issue 16: "X^T (D (X v)) reading each row once").

Per data set (a9a, w8a, news20 from ``../shared/data``) and shard (all rows, and the
first half: one of 2 workers), milliseconds per product, median of ``--repeat`` timings
of ``--inner`` products each, one BLAS thread:

* ``two passes``: :meth:`distnewton.objectives.Shard.hvp_sum`, scipy's CSR X v, then
  X^T r (``csc_matvec`` over the same arrays, no transposed copy);
* ``blocked``: the rows cut into blocks of about B non-zeros, each block's X_B v and
  X_B^T (D_B X_B v) back to back, so the second pass reads the block from cache (pure
  scipy, B = 16,000 and 100,000);
* ``numba fused``: one loop per row, dot(x_j, v) then the axpy into the result, as
  LIBLINEAR's Hv (only when numba imports: ``pip install numba``; it is not a
  dependency), with the seconds its import and its compile (or cache load) cost.

Run (about a minute): ``python benchmarks/hvp_bench.py [--data-dir DIR] [--repeat 7]``;
``--smoke``: a small synthetic shard, seconds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _smoke import SMOKE_HELP, synth_set  # noqa: E402
from _tables import markdown_table  # noqa: E402

import numpy as np  # noqa: E402
from scipy.sparse._sparsetools import csc_matvec, csr_matvec  # noqa: E402

from distnewton.data.libsvm import read_libsvm  # noqa: E402
from distnewton.objectives import Shard  # noqa: E402

DATASETS = {"a9a": ("a9a.bz2", 123), "w8a": ("w8a.bz2", 300), "news20": ("news20.bz2", 62061)}
BLOCKS = (16_000, 100_000)


def timed(f, repeat, inner):
    """Median milliseconds per call of ``f`` (after one warm-up call)."""
    f()
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        for _ in range(inner):
            f()
        runs.append((time.perf_counter() - t) / inner * 1e3)
    return statistics.median(runs)


def blocked_hvp(X, nnz_block):
    """A function D, v -> X^T (D (X v)) over row blocks of about ``nnz_block`` non-zeros."""
    ip, n, d = X.indptr, X.shape[0], X.shape[1]
    cuts = np.unique(np.r_[np.searchsorted(ip, np.arange(0, X.nnz, nnz_block)), n])
    blocks = [(a, b, (ip[a:b + 1] - ip[a]).astype(ip.dtype), X.indices[ip[a]:ip[b]],
               X.data[ip[a]:ip[b]]) for a, b in zip(cuts[:-1], cuts[1:])]

    def hvp(D, v):
        out, z = np.zeros(d), np.zeros(n)
        for a, b, bp, bi, bd in blocks:
            zb = z[a:b]
            csr_matvec(b - a, d, bp, bi, bd, v, zb)
            zb *= D[a:b]
            csc_matvec(d, b - a, bp, bi, bd, zb, out)
        return out
    return hvp


def numba_hvp():
    """(fused kernel or None, import seconds, compile-or-load seconds)."""
    t = time.perf_counter()
    try:
        import numba
    except ImportError:
        return None, None, None
    imported = time.perf_counter() - t

    @numba.njit(cache=True)
    def fused(indptr, indices, data, D, v, out):
        out[:] = 0.0
        for j in range(indptr.size - 1):
            s = 0.0
            for k in range(indptr[j], indptr[j + 1]):
                s += data[k] * v[indices[k]]
            s *= D[j]
            for k in range(indptr[j], indptr[j + 1]):
                out[indices[k]] += s * data[k]
        return out
    t = time.perf_counter()
    fused(np.array([0, 1], np.int32), np.array([0], np.int32), np.ones(1), np.ones(1),
          np.ones(1), np.zeros(1))
    return fused, imported, time.perf_counter() - t


def shards(args, tmp):
    """(label, X, y, d) for each data set found, or the smoke set."""
    if args.smoke:
        path, _ = synth_set(tmp, "synth", 2000, 200, density=0.05)
        yield "synth", path, 200
        return
    for name, (fname, d) in DATASETS.items():
        path = os.path.join(os.path.abspath(args.data_dir), fname)
        if os.path.exists(path):
            yield name, path, d
        else:
            print(f"hvp_bench: {path} not found; skipping {name}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", default=os.path.join(os.path.dirname(__file__), "..", "..",
                                                       "shared", "data"))
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--inner", type=int, default=20)
    ap.add_argument("--smoke", action="store_true", help=SMOKE_HELP)
    args = ap.parse_args(argv)
    if args.smoke:
        args.repeat, args.inner = 2, 2
    fused, t_import, t_compile = numba_hvp()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, path, d in shards(args, tmp):
            ds = read_libsvm(path, n_features=d)
            for part, label in ((slice(None), "all rows"), (slice(0, ds.X.shape[0] // 2), "half")):
                X = ds.X[part]
                sh = Shard(X, np.where(ds.y[part] > ds.y.min(), 1.0, -1.0), "logistic", 1e-4)
                if sh._blas:                    # a dense BLAS shard: no sparse hvp to compare
                    continue
                v = np.random.default_rng(0).standard_normal(d)
                w = 0.01 * v
                D = sh.curvature(w)
                ref = sh.hvp_sum(w, v)
                row = [name, f"{label} ({X.shape[0]:,} x {d:,}, nnz {X.nnz:,})",
                       f"{timed(lambda: sh.hvp_sum(w, v), args.repeat, args.inner):.3f}"]
                for nb in BLOCKS:
                    hvp = blocked_hvp(sh.X, nb)
                    assert np.allclose(hvp(D, v), ref, rtol=1e-12, atol=1e-12 * abs(ref).max())
                    row.append(f"{timed(lambda: hvp(D, v), args.repeat, args.inner):.3f}")
                if fused is None:
                    row.append("-")
                else:
                    out, Xs = np.zeros(d), sh.X
                    call = lambda: fused(Xs.indptr, Xs.indices, Xs.data, D, v, out)  # noqa: E731
                    call()
                    assert np.allclose(out, ref, rtol=1e-12, atol=1e-12 * abs(ref).max())
                    row.append(f"{timed(call, args.repeat, args.inner):.3f}")
                rows.append(row)
    markdown_table(["data", "shard", "two passes (ms)", *(f"blocked {b:,} (ms)" for b in BLOCKS),
                    "numba fused (ms)"], rows,
                   title="Hessian-vector product X^T (D (X v)), ms per product, one thread")
    print("numba: " + ("not installed (pip install numba to add its column)" if fused is None
                       else f"import {t_import:.2f} s, compile or cache load {t_compile:.2f} s"
                       " per process"))


if __name__ == "__main__":
    main()
