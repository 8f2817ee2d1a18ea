"""BLAS threads per rank: ``run.blas_threads`` (default 1).

On a node with more ranks than cores, a BLAS that starts one thread per core
in every rank oversubscribes it many times: a 300 x 300 Cholesky on an
oversubscribed 2-core machine took 120 ms instead of 2.
"""

from __future__ import annotations

import contextlib
import os

BLAS_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")


def pin_blas_threads(n):
    """``n`` BLAS threads in this rank, now and later.

    threadpoolctl limits the BLAS libraries already loaded (numpy's); the
    environment variables cover the ones loaded later (scipy.linalg's own
    OpenBLAS is imported lazily, after this).
    """
    for var in BLAS_THREAD_VARS:
        os.environ[var] = str(n)
    from threadpoolctl import threadpool_limits
    threadpool_limits(limits=n)


@contextlib.contextmanager
def blas_threads(n):
    """:func:`pin_blas_threads` for the duration of a block (the Python API): the
    environment variables and the loaded libraries' limits are restored after."""
    from threadpoolctl import threadpool_limits
    saved = {var: os.environ.get(var) for var in BLAS_THREAD_VARS}
    os.environ.update({var: str(n) for var in BLAS_THREAD_VARS})
    try:
        with threadpool_limits(limits=n):
            yield
    finally:
        for var, value in saved.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value
