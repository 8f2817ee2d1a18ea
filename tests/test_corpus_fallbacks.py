"""Adversarial corpus, class *results* (continued from tests/test_corpus_results.py):
the fallback archive (``.fallback.npz``, written when the final HDF5 write fails)
read by ``recover``, ``report`` and ``predict``, and warm starts (``model.w0``: a
result file, a ``.npy``, a fallback archive) read by ``run``, in-process and under
``mpiexec``.  A damaged file is refused in one line naming the file and the field
(exit 2), never used quietly; the positive cases check that undamaged ones still
work.  The damaged copies come from tests/support/result_files.py.
"""

from pathlib import Path

import numpy as np
import pytest

from support.corpus import Case, check, params
from support.result_files import (F, NAN, NPZ, SVM, both, npz, result, set_w,
                                  truncate)


def drop(key):
    def change(a):
        del a[key]
    return change


def nan_w0(tmp):
    np.save(Path(tmp) / "w0.npy", np.array([0.1, np.inf, 0.0, 0.2, 0.0]))


def complex_w0(tmp):
    np.save(Path(tmp) / "w0.npy", np.zeros(5, dtype=complex))


def object_w0(tmp):
    np.save(Path(tmp) / "w0.npy", np.array([0.1, "x", None, 0.2, 0.0], dtype=object),
            allow_pickle=True)


RUN_W0 = ["run", "{tmp}/c.yaml", "--backend", "sim", "--workers", "2", "-o", "{tmp}/o2.h5",
          "-q"]
W0 = {"model": {"fit_intercept": True, "w0": "{tmp}/out.h5"}, "data": {"cache": "off"}}
W0_NPY = {"model": {"fit_intercept": True, "w0": "{tmp}/w0.npy"}, "data": {"cache": "off"}}

CASES = [
    # -- the fallback archive ------------------------------------------------------
    Case("fallback truncated", ["recover", NPZ, "-o", "{tmp}/r.h5"],
         prepare=both(npz(), truncate("out.h5.fallback.npz")),
         message=NPZ + ": damaged or not a fallback file (BadZipFile"),
    Case("fallback pickled objects", ["report", NPZ, "--no-compute"],
         prepare=npz(lambda a: a.update(w=np.array([1.0, "x"], dtype=object))),
         message=NPZ + ": damaged or not a fallback file (ValueError: Object arrays cannot"),
    Case("fallback without w", ["recover", NPZ, "-o", "{tmp}/r.h5"], prepare=npz(drop("w")),
         message=NPZ + ": w: missing (damaged fallback file)"),
    Case("fallback attrs not JSON", ["report", NPZ, "--no-compute"],
         prepare=npz(lambda a: a.update(attrs=np.array("{not json"))),
         message=NPZ + ": attrs: not valid JSON"),
    Case("fallback attrs an array", ["recover", NPZ, "-o", "{tmp}/r.h5"],
         prepare=npz(lambda a: a.update(attrs=np.arange(3))),
         message=NPZ + ": attrs: expected one string, got int64"),
    Case("fallback history unequal", ["recover", NPZ, "-o", "{tmp}/r.h5"],
         prepare=npz(lambda a: a.update({"history/loss": np.ones(7)})),
         message=NPZ + ": history: columns of unequal length: loss has 7 rows"),
    Case("fallback w strings", ["predict", NPZ, SVM],
         prepare=npz(lambda a: a.update(w=np.array(["a", "b"]))),
         message=NPZ + ": /model/w: expected floating-point weights, got <U1"),
    Case("fallback nan w", ["predict", NPZ, SVM],
         prepare=npz(lambda a: a.update(w=a["w"] * np.nan)),
         message=NPZ + ": /model/w: 5 of 5 weights are not finite"),
    Case("fallback format a string", ["report", NPZ, "--no-compute"],
         prepare=npz(lambda a: a.update(distnewton_fallback=np.array("one"))),
         message=NPZ + ": distnewton_fallback: expected the format number"),
    Case("fallback without requested_path", ["recover", NPZ], prepare=npz(drop("requested_path")),
         message=NPZ + ": requested_path: missing (give the result file with -o)"),
    # -- warm starts -------------------------------------------------------------
    Case("w0 result with nan weights", RUN_W0, config=W0, prepare=result(NAN),
         message="model.w0: " + F + ": weights must be finite (3 of 5 are not)"),
    Case("w0 result truncated", RUN_W0, config=W0, prepare=both(result(), truncate("out.h5")),
         message="model.w0: " + F + ": not a readable HDF5 file"),
    Case("w0 result with string weights", RUN_W0, config=W0,
         prepare=result(set_w(lambda w: np.array([b"a"] * 5))),
         message="model.w0: " + F + ": /model/w: expected floating-point weights"),
    Case("w0 npy with inf", RUN_W0, config=W0_NPY, prepare=nan_w0,
         message="model.w0: {tmp}/w0.npy: weights must be finite (1 of 5 are not)"),
    Case("w0 npy complex", RUN_W0, config=W0_NPY, prepare=complex_w0,
         message="model.w0: {tmp}/w0.npy: expected a 1-D numeric vector, got shape (5,) of "
                 "complex128"),
    Case("w0 npy of objects", RUN_W0, config=W0_NPY, prepare=object_w0,
         message="model.w0: {tmp}/w0.npy: not a readable .npy file"),
    Case("w0 npy truncated", RUN_W0, config=W0_NPY,
         prepare=both(nan_w0, truncate("w0.npy", 0.9)),
         message="model.w0: {tmp}/w0.npy: not a readable .npy file"),
    Case("w0 fallback truncated", RUN_W0,
         config={"model": {"fit_intercept": True, "w0": NPZ}, "data": {"cache": "off"}},
         prepare=both(npz(), truncate("out.h5.fallback.npz")),
         message="model.w0: " + NPZ + ": damaged or not a fallback file"),
    Case("w0 nan under mpiexec", ["run", "{tmp}/c.yaml", "-o", "{tmp}/o2.h5", "-q"],
         config=W0, prepare=result(NAN), launch="mpi", timeout=120,
         message="model.w0: " + F + ": weights must be finite"),
    Case("w0 npy of objects under mpiexec", ["run", "{tmp}/c.yaml", "-o", "{tmp}/o2.h5", "-q"],
         config=W0_NPY, prepare=object_w0, launch="mpi", timeout=120,
         message="model.w0: {tmp}/w0.npy: not a readable .npy file"),
    # -- valid files still work ------------------------------------------------------
    Case("valid recover", ["recover", NPZ, "-o", "{tmp}/r.h5"], prepare=npz(), code=0,
         lines=None, new=("r.h5",)),
    Case("valid fallback predict", ["predict", NPZ, SVM], prepare=npz(), code=0, lines=None),
    Case("valid w0 result", RUN_W0, config=W0, prepare=result(), code=0, lines=None,
         new=("o2.h5",)),
]


@pytest.mark.parametrize("case", params(CASES, "results"))
def test_results(case, tmp_path):
    check(case, tmp_path)
