"""``--smoke``: tiny synthetic data sets, so that every benchmark script runs its
whole code path in seconds without ``../shared/data`` (tests/test_benchmarks.py).

A smoke run prints the same tables as a real one, from a few hundred rows and
a few rounds: the numbers mean nothing, only that the script works.  It writes
only into temporary folders (never the committed ``benchmarks/results/*.md``).
"""

from __future__ import annotations

import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

SMOKE_HELP = ("tiny synthetic data and very few rounds: runs the whole script in seconds "
              "(a test that it works; the numbers mean nothing)")


def synth_set(folder, name, n, d, density=0.3, loss="logistic", seed=0, n_test=0, ext="svm",
              noise=0.1):
    """Write ``name.ext`` (n rows x d features) and, with ``n_test``, ``name.t.ext``
    (more rows of the same model) in ``folder``; returns (train, test or None)."""
    from distnewton.data import make_synthetic, write_libsvm
    os.makedirs(folder, exist_ok=True)
    X, y, _ = make_synthetic(n + n_test, d, density=density, seed=seed, loss=loss,
                             noise=noise)
    train = os.path.join(folder, f"{name}.{ext}")
    write_libsvm(train, X[:n], y[:n])
    if not n_test:
        return train, None
    test = os.path.join(folder, f"{name}.t.{ext}")
    write_libsvm(test, X[n:], y[n:])
    return train, test


def have_liblinear() -> bool:
    """True when LIBLINEAR's Python package (``liblinear-official``) imports."""
    try:
        import liblinear.liblinearutil  # noqa: F401
    except ImportError:
        return False
    return True


NO_LIBLINEAR = "LIBLINEAR rows skipped: `pip install liblinear-official` (the bench extra)"


def set_bench_args(doc, sets, data_dir, argv=None, workers=4, max_rounds=500):
    """The arguments of a benchmark over named real sets (svm_bench, poisson_bench):
    ``--data-dir``, ``--workers``, ``--sets`` (comma-separated, default ``sets``),
    ``--max-rounds`` and ``--smoke``; ``doc``'s first line is the description."""
    import argparse
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--data-dir", default=data_dir)
    ap.add_argument("--workers", type=int, default=workers)
    ap.add_argument("--sets", default=",".join(sets))
    ap.add_argument("--max-rounds", type=int, default=max_rounds)
    ap.add_argument("--smoke", action="store_true", help=SMOKE_HELP)
    return ap.parse_args(argv)
