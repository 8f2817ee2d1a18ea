"""One data set in every input format: seconds and MB/s from file to CSR and labels.

    python benchmarks/formats_bench.py [--rows 100000] [--features 100] [--repeat 3]

A synthetic set (``distnewton.data.make_synthetic``, ``--features`` columns, 30%
dense) is written once into a temporary folder as LIBSVM text, CSV, ``.npy``,
``.npz`` (``X``/``y``), scipy.sparse ``save_npz``, Parquet (numeric columns, and
Spark ML vectors) and HDF5 CSR. Each is read by ``distnewton.data.formats.read``
(the reader a run uses before its cache) in this process, BLAS pinned to one thread
and pyarrow at its default thread pool (``pyarrow.cpu_count()``, the machine's
cores: the CSV and Parquet readers use them); the best of ``--repeat`` reads is
reported and each result is checked equal to the LIBSVM file's. "MB/s" is the file's
size on disk over the read time (so a compact binary format shows a lower MB/s for
the same rows).

The CSV file is also read as the MPI ranks read it (:mod:`distnewton.data.csv_ranges`):
its byte range parsed in blocks by pyarrow, float64 columns, one thread (one range,
in this process); the same with ``numpy.loadtxt`` per block (the alternative parser);
and ``--ranks`` real ranks under ``mpiexec`` (:func:`distnewton.shares.local_rows`,
cache off, wall time of the slowest rank, the shares checked to add up to the rows).
Writes ``benchmarks/results/formats_bench.md`` (``--smoke``: a tiny set, stdout only).
"""

from __future__ import annotations

import argparse
import functools
import os
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from _smoke import REPO, SMOKE_HELP  # noqa: E402,F401
from _tables import markdown_table  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "formats_bench.md")


def write_all(folder, rows, features):
    """The same rows in every format: {name: (path, format)}."""
    import h5py
    import pyarrow as pa
    import pyarrow.parquet as pq
    import scipy.sparse as sp

    from distnewton.data import make_synthetic, write_libsvm
    X, y, _ = make_synthetic(rows, features, density=0.3, seed=1, loss="logistic")
    X = sp.csr_matrix(X)
    D = X.toarray()
    out = {}

    def path(name):
        return os.path.join(folder, name)
    write_libsvm(path("d.svm"), X, y)
    out["LIBSVM text"] = (path("d.svm"), "libsvm")
    np.savetxt(path("d.csv"), np.column_stack([y, D]), delimiter=",", fmt="%.17g")
    out["CSV"] = (path("d.csv"), "csv")
    np.save(path("d.npy"), np.column_stack([y, D]))
    out[".npy (dense)"] = (path("d.npy"), "npy")
    np.savez(path("d.npz"), X=D, y=y)
    out[".npz X, y (dense)"] = (path("d.npz"), "npz")
    sp.save_npz(path("s.npz"), sp.hstack([sp.csr_matrix(y[:, None]), X]).tocsr())
    out[".npz save_npz (sparse)"] = (path("s.npz"), "npz")
    pq.write_table(pa.table({"label": y, **{f"f{j}": D[:, j] for j in range(features)}}),
                   path("d.parquet"))
    out["Parquet columns"] = (path("d.parquet"), "parquet")
    vectors = pa.StructArray.from_arrays(
        [pa.array(np.zeros(rows, np.int8)), pa.array(np.full(rows, features, np.int32)),
         pa.ListArray.from_arrays(pa.array(X.indptr.astype(np.int32)),
                                  pa.array(X.indices.astype(np.int32))),
         pa.ListArray.from_arrays(pa.array(X.indptr.astype(np.int32)), pa.array(X.data))],
        names=["type", "size", "indices", "values"])
    pq.write_table(pa.table({"label": y, "features": vectors}), path("v.parquet"))
    out["Parquet Spark vectors"] = (path("v.parquet"), "parquet")
    with h5py.File(path("d.h5"), "w") as f:
        f["indptr"], f["indices"], f["data"], f["y"] = X.indptr, X.indices, X.data, y
    out["HDF5 CSR"] = (path("d.h5"), "hdf5")
    return out, X, y


def best_read(path, fmt, repeat):
    from distnewton.data import formats
    best, ds = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        ds = formats.read(path, fmt)
        best = min(best, time.perf_counter() - t0)
    return best, ds


def ranges_read(path, parser):
    """Seconds to parse ``path`` as one byte range in blocks with ``parser`` ("pyarrow":
    :func:`~distnewton.data.csv_ranges.parse_block`; "numpy": ``numpy.loadtxt`` per
    block); and the rows read, as CSR and labels."""
    from distnewton.data import csv_ranges
    from distnewton.data.libsvm import concat_parts
    from distnewton.shares import canonical, parse_share
    lay = csv_ranges.layout(path, "csv")
    parse = functools.partial(csv_ranges.parse_block, lay) if parser == "pyarrow" else \
        functools.partial(numpy_block, lay)
    t0 = time.perf_counter()
    parts, _, bad = parse_share(path, 0, 1, False, None, parse=parse)
    X, y = canonical(concat_parts(parts), lay.width)
    assert bad is None, bad
    return time.perf_counter() - t0, X, y


def numpy_block(lay, block, name, lines_before, first):
    """The alternative to pyarrow for a block: ``numpy.loadtxt`` (C parser since numpy 1.23)."""
    import io

    from distnewton.data.csv_ranges import rows_of
    M = np.loadtxt(io.BytesIO(block), delimiter=lay.delimiter, skiprows=int(first and lay.header),
                   ndmin=2)
    return rows_of(lay, M)


def mpi_read(path, ranks, fmt):
    """Seconds for ``ranks`` MPI ranks to read their byte ranges (the slowest rank)."""
    import shutil
    exe = shutil.which("mpiexec", path=os.path.dirname(sys.executable) + os.pathsep
                       + os.environ.get("PATH", ""))      # the mpich wheel's, beside python
    out = subprocess.run([exe, "-n", str(ranks), sys.executable, __file__,
                          "--mpi-read", path, "--mpi-format", fmt], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": REPO})
    seconds, rows = out.stdout.split()
    return float(seconds), int(rows)


def mpi_read_rank(path, fmt):
    """Under mpiexec: every rank reads its share; rank 0 prints the slowest rank's
    seconds and the rows read in all."""
    from mpi4py import MPI

    from distnewton.shares import local_rows
    comm = MPI.COMM_WORLD
    cfg = {"data": {"n_features": None, "format": fmt, "zero_based": False, "cache": "off",
                    "label_column": None}}
    comm.Barrier()
    t0 = time.perf_counter()
    share = local_rows(comm, cfg, path)
    seconds = comm.allreduce(time.perf_counter() - t0, op=MPI.MAX)
    rows = comm.allreduce(share.n_rows)
    if comm.Get_rank() == 0:
        print(seconds, rows)


def csv_rows(path, X, y, repeat, ranks):
    """The table rows of the CSV file read by byte ranges."""
    mb, out, best = os.path.getsize(path) / 1e6, [], {}
    for _ in range(repeat):                   # interleaved: both parsers see the same load
        for parser in ("pyarrow", "numpy"):
            seconds, Xr, yr = ranges_read(path, parser)
            best[parser] = min(best.get(parser, float("inf")), seconds)
            if (Xr != X).nnz or not np.array_equal(yr, y):
                raise SystemExit(f"CSV by ranges ({parser}): the rows read differ")
    for parser, seconds in best.items():
        out.append([f"CSV, 1 byte range, {parser} blocks", "csv", f"{mb:.1f}",
                    f"{seconds:.3f}", f"{mb / seconds:.0f}"])
    if ranks:
        out.append(mpi_row("CSV", path, "csv", ranks, repeat, len(y)))
    return out


def mpi_row(name, path, fmt, ranks, repeat, n):
    """The table row of ``ranks`` ranks reading ``path`` by byte ranges, best of ``repeat``."""
    best, mb = float("inf"), os.path.getsize(path) / 1e6
    for _ in range(repeat):
        seconds, rows = mpi_read(path, ranks, fmt)
        if rows != n:
            raise SystemExit(f"{name} under mpiexec: {rows} rows read of {n}")
        best = min(best, seconds)
    return [f"{name}, mpiexec -n {ranks}: byte ranges", fmt, f"{mb:.1f}", f"{best:.3f}",
            f"{mb / best:.0f}"]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--features", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--ranks", type=int, default=2,
                    help="MPI ranks reading the CSV by byte ranges (0: none)")
    ap.add_argument("--mpi-read", help=argparse.SUPPRESS)
    ap.add_argument("--mpi-format", default="csv", help=argparse.SUPPRESS)
    ap.add_argument("--smoke", action="store_true", help=SMOKE_HELP)
    args = ap.parse_args(argv)
    if args.mpi_read:
        return mpi_read_rank(args.mpi_read, args.mpi_format)
    if args.smoke:
        args.rows, args.features, args.repeat = 300, 8, 1
    from threadpoolctl import threadpool_limits
    rows, load = [], os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as folder, threadpool_limits(1):
        files, X, y = write_all(folder, args.rows, args.features)
        for name, (path, fmt) in files.items():
            seconds, ds = best_read(path, fmt, args.repeat)
            if (ds.X != X).nnz or not np.array_equal(ds.y, y):
                raise SystemExit(f"{name}: the rows read differ from the data written")
            mb = os.path.getsize(path) / 1e6
            rows.append([name, fmt, f"{mb:.1f}", f"{seconds:.3f}", f"{mb / seconds:.0f}"])
            if fmt == "libsvm" and args.ranks:
                rows.append(mpi_row(name, path, fmt, args.ranks, args.repeat, len(y)))
            if fmt == "csv":
                rows += csv_rows(path, X, y, args.repeat, args.ranks)
    header = ["file", "data.format", "MB on disk", "s to read", "MB/s"]
    title = (f"{args.rows} rows x {args.features} features (30% dense), best of "
             f"{args.repeat}, formats.read in one process")
    markdown_table(header, rows, title)
    if not args.smoke:
        import io
        import contextlib
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            markdown_table(header, rows)
        with open(OUT, "w") as fh:
            fh.write("# Input formats: file to CSR\n\n`python benchmarks/formats_bench.py "
                     f"--rows {args.rows} --features {args.features} --repeat {args.repeat}`"
                     f" on the 2-core machine, with other jobs running (load average {load:.1f} at "
                     "the start). The `mpiexec -n` rows are the byte-range readers of a run "
                     "(`distnewton.shares.local_rows`, cache off): the slowest rank's wall "
                     "time; with fewer free cores than ranks they show the contention, not "
                     f"the speed-up.\n\n{title}.\n\n"
                     + buf.getvalue())


if __name__ == "__main__":
    main()
