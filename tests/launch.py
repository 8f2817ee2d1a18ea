"""Launching real jobs from tests: ``mpiexec -n N python -m distnewton ...``."""

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
NO_DATA = "../shared/data not found: real LIBSVM data sets live beside the checkout"


def env():
    e = dict(os.environ)
    e.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    e["PYTHONPATH"] = str(ROOT) + os.pathsep + e.get("PYTHONPATH", "")
    return e


def mpiexec():
    exe = shutil.which("mpiexec", path=os.path.dirname(sys.executable) + os.pathsep
                       + os.environ.get("PATH", ""))
    assert exe, "mpiexec not found: `pip install -e .` brings it (the mpich wheel)"
    return exe


def cli(*args, n=None, timeout=240, cwd=None, extra_env=None):
    """Run ``distnewton ARGS`` (under ``mpiexec -n n`` when n is given)."""
    cmd = [sys.executable, "-m", "distnewton", *map(str, args)]
    if n is not None:
        cmd = [mpiexec(), "-n", str(n), *cmd]
    e = env()
    e.update(extra_env or {})
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          cwd=cwd or ROOT, env=e)


def write_config(path, **sections):
    import yaml
    Path(path).write_text(yaml.safe_dump(sections, sort_keys=False))
    return path


def read_result(path):
    with h5py.File(path, "r") as f:
        attrs = dict(f.attrs)
        hist = {k: f["history"][k][()] for k in f["history"]}
        w = f["model/w"][()]
    return attrs, hist, w


def logistic_objective(X, y, w, lam):
    return float(np.mean(np.logaddexp(0.0, -y * (X @ w))) + 0.5 * lam * w @ w)


@functools.lru_cache(maxsize=None)
def a9a_reference():
    """a9a (lambda = 1/n) and its independent reference optimum: (X, y, lam, w*, f*).

    scikit-learn minimises C sum_j l_j + ||w||^2/2, the same minimiser as
    f(w) = mean_j l_j + (lambda/2)||w||^2 when C = 1/(lambda n).  Computed once
    per test session.
    """
    from sklearn.datasets import load_svmlight_file
    from sklearn.linear_model import LogisticRegression
    X, y = load_svmlight_file(str(SHARED / "a9a.bz2"), n_features=123, zero_based=False)
    lam = 1.0 / X.shape[0]
    ref = LogisticRegression(C=1.0 / (lam * X.shape[0]), fit_intercept=False,
                             solver="newton-cholesky", tol=1e-12, max_iter=200).fit(X, y)
    w_ref = ref.coef_.ravel()
    return X, y, lam, w_ref, logistic_objective(X, y, w_ref, lam)


def synth(path, samples, features, density=0.5, seed=3):
    """Write a small synthetic logistic problem with `distnewton data synth` (the CLI)."""
    res = cli("data", "synth", path, "--samples", samples, "--features", features,
              "--density", density, "--seed", seed)
    assert res.returncode == 0, res.stderr
    return path
