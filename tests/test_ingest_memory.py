"""A training file too large for one rank to read trains under a per-rank memory limit.

Four MPI ranks each run under the same memory limit.  With the parallel ingestion
(:mod:`distnewton.ingest_parallel`: every rank parses its own byte range, rows move to
their owners with ``Alltoallv``) the job trains to scikit-learn's optimum of the file;
the rank-0 path (``DISTNEWTON_PARALLEL_INGEST=0``: rank 0 reads the whole file, then
scatters) fails under the same limit with a ``MemoryError``, which proves the limit
bites.

The limit: ``RLIMIT_DATA``, set in each rank by a wrapper that calls
``resource.setrlimit`` and then execs ``python -m distnewton`` (``mpiexec -n 4 python
-c WRAP LIMIT -m distnewton run ...``), so only the ranks are limited, never the
launcher.  Since Linux 4.7 ``RLIMIT_DATA`` counts the heap and every private writable
mapping (the anonymous ``mmap`` behind numpy's large arrays), and not shared mappings
(MPI's shared-memory segments) nor the libraries' code: it measures the data a rank
holds, and an allocation over it fails with ``ENOMEM``, i.e. a Python ``MemoryError``
and a clean exit.  Not used:

* ``RLIMIT_AS`` (``prlimit --as``) counts every reservation: allocator arenas,
  libraries, thread stacks, MPI's shared memory; the budget then depends on the MPI
  and the wheels more than on the data;
* a cgroup (``memory.max``): this machine kind has no cgroup v2 memory controller
  (``/sys/fs/cgroup/unified/cgroup.controllers`` lists only ``hugetlb``) and the v1
  hierarchy belongs to the sandbox, a CI runner need not allow one, and the OOM
  killer's SIGKILL is no ``MemoryError``.

The ranks run with ``ARROW_DEFAULT_MEMORY_POOL=system``: pyarrow's default pool
(mimalloc) reserves arenas that ``RLIMIT_DATA`` counts (a rank's data segment reaches
1.36 GiB for about 0.55 GiB resident), so under a limit mimalloc fails parses that fit;
with the system allocator the data segment follows the resident memory.

Sizes, measured on the project's 2-core machine: 600,000 x 200, 12.0 M non-zeros,
85 MB of text, 140 MiB as a CSR matrix.  The smallest ``RLIMIT_DATA`` that lets every
rank through is about 275 MiB with the parallel path, its first run writing the binary
cache as here (250 MiB once the cache is there, whose rows are read a block at a time
as they are sent; it was 535 MiB before the exchange moved rows a block at a time), and
rank 0 of the rank-0 path needs about 940 MiB: LIMIT, 400 MiB, is 45% above the one and
less than half the other.

What this does *not* show: that the limit may be below the file's CSR size.  A rank's
data segment counts about 150 MiB before it reads a byte (the interpreter, its
libraries, Arrow's kernels on their first call), and while the rows move a rank holds
its preallocated shards (``RLIMIT_DATA`` counts an allocation in full when it is made)
and, on a first run, its parsed share until it is written to the cache; with the parse
and exchange temporaries that is about 150 MiB + 2 x its quarter's CSR + some 30 MiB,
so the whole file's CSR must exceed about 350 MiB (30 M non-zeros) before a limit can
sit below it.

Runs 4 ranks with ``run.master_shard`` and 4 workers rather than a master and 3
workers: every rank then parses a quarter of the file and hosts a quarter of the rows,
so one limit fits all ranks (with 3 workers a worker hosts a third and rank 0 none).

The reference is fit on the arrays the file is written from (no parser involved):
the values are dyadic (``+-0.5``, ``+-1``, ``+-1.5``, ``+-2``), exact in decimal text.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from support.launch import env, mpiexec, read_result, write_config
from support.references import logistic_gradient, logistic_objective

N_ROWS, N_FEATURES, DENSITY = 600_000, 200, 0.1
VALUES = np.array([-2.0, -1.5, -1.0, -0.5, 0.5, 1.0, 1.5, 2.0])
LIMIT = 400 * 2**20                 # RLIMIT_DATA of each rank, bytes

#: ``python -c WRAP LIMIT ARGS...``: limit this process's data segment, then exec
#: ``python ARGS...`` (the limit is inherited across exec)
WRAP = ("import os, resource, sys; lim = int(sys.argv[1]); "
        "resource.setrlimit(resource.RLIMIT_DATA, (lim, lim)); "
        "os.execv(sys.executable, [sys.executable, *sys.argv[2:]])")


def dyadic_problem(path):
    """Write a 600,000 x 200 logistic problem (values in VALUES, labels +-1 from a
    logistic model); return its (X, y).  Tokens come from a table (``j:v``), not from
    float formatting: 12 M non-zeros in a few seconds."""
    from distnewton.data import make_synthetic
    X, _, _ = make_synthetic(N_ROWS, N_FEATURES, density=DENSITY, seed=1)
    rng = np.random.default_rng(2)
    X.data = VALUES[rng.integers(0, len(VALUES), X.nnz)]
    margin = X @ (rng.standard_normal(N_FEATURES) / np.sqrt(DENSITY * N_FEATURES))
    y = np.where(rng.random(N_ROWS) < 1 / (1 + np.exp(-margin)), 1.0, -1.0)
    table = np.array([f"{j + 1}:{v:g}" for j in range(N_FEATURES) for v in VALUES], object)
    toks = table[X.indices * len(VALUES) + np.searchsorted(VALUES, X.data)].tolist()
    ptr, labels = X.indptr.tolist(), ["1" if v > 0 else "-1" for v in y.tolist()]
    path.write_text("".join([f"{labels[i]} {' '.join(toks[ptr[i]:ptr[i + 1]])}\n"
                             for i in range(N_ROWS)]))
    return X, y


def limited_run(cfg, out, parallel):
    """``mpiexec -n 4`` with every rank under RLIMIT_DATA = LIMIT."""
    cmd = [mpiexec(), "-n", "4", sys.executable, "-c", WRAP, str(LIMIT),
           "-m", "distnewton", "run", str(cfg), "-q", "-o", str(out)]
    e = env()
    e.update(ARROW_DEFAULT_MEMORY_POOL="system",
             DISTNEWTON_PARALLEL_INGEST="1" if parallel else "0")
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=e)


@pytest.mark.mpi
@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"),
                    reason="RLIMIT_DATA counts mmap'ed memory on Linux >= 4.7 only")
def test_a_file_too_large_for_one_rank_to_read_trains_within_a_per_rank_limit(tmp_path):
    train = tmp_path / "train.svm"
    X, y = dyadic_problem(train)
    cfg = write_config(tmp_path / "c.yaml",
                       data={"train": str(train), "partition": "iid", "seed": 3,
                             "cache": str(tmp_path / "cache")},
                       model={"loss": "logistic", "lambda": "1/n"},
                       algorithm={"name": "newton"},
                       run={"workers": 4, "master_shard": True, "max_rounds": 60,
                            "grad_rtol": 1e-9})

    # the limit bites: rank 0 cannot read the whole file under it
    res = limited_run(cfg, tmp_path / "rank0.h5", parallel=False)
    assert res.returncode != 0, "the rank-0 path read the file under the limit"
    assert "rank 0: internal error" in res.stderr and "MemoryError" in res.stderr, \
        res.stderr[-3000:]
    assert not (tmp_path / "rank0.h5").exists()

    res = limited_run(cfg, tmp_path / "r.h5", parallel=True)
    assert res.returncode == 0, res.stderr[-3000:]
    attrs, hist, w = read_result(tmp_path / "r.h5")
    assert attrs["status"] == "converged", attrs["message"]
    assert (attrs["n_samples"], attrs["n_features"]) == (N_ROWS, N_FEATURES)
    assert sum(attrs["shard_sizes"]) == N_ROWS and len(attrs["shard_sizes"]) == 4

    # scikit-learn's optimum of mean_j log(1 + exp(-y_j x_j.w)) + (lam/2)||w||^2:
    # C = 1/(lam n).  lbfgs (newton-cholesky's sparse Hessian takes ~10 s a step
    # here) stops at ||grad|| ~ 3e-10; the Hessian's eigenvalues at w* are >= 0.019,
    # so such a point is within ||grad||/0.019 ~ 2e-8 of w* and its objective within
    # ||grad||^2/(2 * 0.019) ~ 1e-17 relative of f*.  The tolerances leave two orders
    # of magnitude, and still catch one row lost or counted twice (~1e-6 relative in f).
    from sklearn.linear_model import LogisticRegression
    lam = 1.0 / N_ROWS
    ref = LogisticRegression(C=1.0 / (lam * N_ROWS), fit_intercept=False, solver="lbfgs",
                             tol=1e-12, max_iter=1000).fit(X, y)
    w_ref = ref.coef_.ravel()
    assert np.abs(logistic_gradient(X, y, w_ref, lam)).max() < 1e-8   # it is the optimum
    f_ref = logistic_objective(X, y, w_ref, lam)
    f = logistic_objective(X, y, w, lam)
    assert abs(f - f_ref) <= 1e-9 * f_ref, (f, f_ref)
    assert abs(hist["loss"][-1] - f_ref) <= 1e-9 * f_ref, (hist["loss"][-1], f_ref)
    np.testing.assert_allclose(w, w_ref, rtol=0, atol=1e-6 * np.abs(w_ref).max())
    train.unlink()                       # 85 MB: pytest keeps the last runs' folders
