"""LIBLINEAR in another interpreter: ``liblinear-multicore`` in its own virtual environment.

``liblinear-multicore`` (PyPI) installs the same ``liblinear`` module name as
``liblinear-official``, so the two cannot share an environment.  ``vs_liblinear.py``
keeps the multicore one in a virtual environment (``VENV``; made by
``python benchmarks/vs_liblinear.py --setup-multicore``: numpy, scipy and
liblinear-multicore from PyPI) and runs this file there as a script:

    VENV/bin/python _liblinear_venv.py IN.npz OUT.npz

IN.npz holds the CSR arrays of X (``data``, ``indices``, ``indptr``, ``shape``), y in
{-1, +1}, ``C``, the ``eps`` settings to try, ``threads`` (``-m``, 0 for the
single-thread solver) and ``repeat``; OUT.npz gets, per eps, the weights (``w``,
scoring +1) and the ``repeat`` timings of the train call (``seconds``; the conversion
of the data to LIBLINEAR's format once, outside the timings).  The caller computes the
objective and picks the loosest eps reaching its target.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np

import _venv

VENV = os.path.join(os.path.expanduser("~"), ".cache", "distnewton-bench", "liblinear-multicore")
PYTHON = os.path.join(VENV, "bin", "python")
PACKAGES = ("numpy", "scipy", "liblinear-multicore")


def setup(venv=VENV):
    """Make the virtual environment with liblinear-multicore (PyPI, via pip)."""
    _venv.make(venv, PACKAGES)


def version(python=PYTHON):
    """liblinear-multicore's version in that environment, or None when it is not there."""
    return _venv.version(python, "liblinear-multicore")


def fit_all(X, y, C, eps_list, threads, repeat, tmp, python=PYTHON):
    """[(eps, w, [seconds] * repeat)] from a run of this file under ``python``."""
    src, dst = os.path.join(tmp, "ll-in.npz"), os.path.join(tmp, "ll-out.npz")
    np.savez(src, data=X.data, indices=X.indices, indptr=X.indptr, shape=np.array(X.shape),
             y=y, C=C, eps=np.array(eps_list), threads=threads, repeat=repeat)
    subprocess.run([python, os.path.abspath(__file__), src, dst], check=True)
    with np.load(dst) as out:
        res = [(float(e), out[f"w{i}"], list(out[f"s{i}"])) for i, e in enumerate(eps_list)]
    os.remove(src)
    os.remove(dst)
    return res


def _main(src, dst):
    import scipy.sparse as sp
    from liblinear.liblinearutil import parameter, problem, train
    a = np.load(src)
    X = sp.csr_matrix((a["data"], a["indices"], a["indptr"]), shape=tuple(a["shape"]))
    y = a["y"]
    prob = problem(y, X)
    threads = int(a["threads"])
    out = {}
    for i, eps in enumerate(a["eps"]):
        opts = f"-s 0 -c {float(a['C'])!r} -B -1 -e {float(eps)!r} -q"
        if threads:
            opts += f" -m {threads}"
        secs = []
        for _ in range(int(a["repeat"])):
            t0 = time.perf_counter()
            model = train(prob, parameter(opts))
            secs.append(time.perf_counter() - t0)
        w = np.array(model.get_decfun()[0])
        out[f"w{i}"] = w if model.get_labels()[0] == 1 else -w
        out[f"s{i}"] = np.array(secs)
    np.savez(dst, **out)


if __name__ == "__main__":
    _main(sys.argv[1], sys.argv[2])
