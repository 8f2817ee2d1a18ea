"""The plugin guide's proof: DANE (examples/dane_plugin), a separate package written
only against ``distnewton.plugin``, installed with its entry point and run by name,
with rounds and bytes counted by distnewton."""

import os
import subprocess
import sys

import numpy as np
import pytest

from support.launch import ROOT, SHARED, cli, read_result, synth, write_config
from support.references import a9a_reference, logistic_objective

#: whole runs (processes, MPI or files): outside the `-m "not slow"` inner loop
pytestmark = pytest.mark.slow

PLUGIN = ROOT / "examples" / "dane_plugin"


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """``pip install`` the example into a folder of its own (dist-info and all), so the
    entry point is found through PYTHONPATH without touching the test environment."""
    target = tmp_path_factory.mktemp("site")
    res = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                          "--target", str(target), str(PLUGIN)],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    assert list(target.glob("distnewton_dane-*.dist-info"))
    return {"PYTHONPATH": f"{target}{os.pathsep}{ROOT}"}


def run(cfg, out, site, *args, n=None, extra=None):
    res = cli("run", cfg, "-o", out, "-q", *args, n=n, extra_env={**site, **(extra or {})})
    return res


def dane_config(tmp_path, train, **run):
    return write_config(tmp_path / "dane.yaml", data={"train": str(train)},
                        algorithm={"name": "dane_plugin", "eta": 1.0, "mu": 0.0},
                        run={"max_rounds": 60, "grad_rtol": 1e-10, **run})


def test_list_shows_the_entry_point(installed):
    res = cli("list", extra_env=installed)
    assert res.returncode == 0, res.stderr
    line = next(l for l in res.stdout.splitlines() if l.startswith("dane_plugin "))
    assert "entry point distnewton-dane:dane_plugin = distnewton_dane:DANE" in line
    builtin = next(l for l in res.stdout.splitlines() if l.startswith("dane "))
    assert "[built-in]" in builtin            # both: the plugin registers its own name
    assert "mu" in res.stdout and "eta" in res.stdout


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return synth(tmp_path_factory.mktemp("dane") / "s.svm", 2000, 12, density=0.5, seed=4)


def sklearn_optimum(path, lam):
    from sklearn.datasets import load_svmlight_file
    from sklearn.linear_model import LogisticRegression
    X, y = load_svmlight_file(str(path))
    ref = LogisticRegression(C=1.0 / (lam * X.shape[0]), fit_intercept=False,
                             solver="newton-cholesky", tol=1e-12, max_iter=200).fit(X, y)
    return X, y, ref.coef_.ravel()


@pytest.mark.parametrize("backend", ["sim", pytest.param("mpi", marks=pytest.mark.mpi)])
def test_dane_reaches_the_sklearn_optimum_in_two_rounds_per_iteration(tmp_path, installed,
                                                                      small, backend):
    cfg = dane_config(tmp_path, small)
    out = tmp_path / "r.h5"
    args = ("--backend", "sim", "--workers", "4") if backend == "sim" else ()
    res = run(cfg, out, installed, *args, n=5 if backend == "mpi" else None)
    assert res.returncode == 0, res.stderr
    attrs, hist, w = read_result(out)
    assert attrs["algorithm"] == "dane_plugin" and attrs["status"] == "converged"
    assert attrs["n_workers"] == 4
    X, y, w_ref = sklearn_optimum(small, 1.0 / 2000)
    f, f_ref = logistic_objective(X, y, w, 1 / 2000), logistic_objective(X, y, w_ref, 1 / 2000)
    assert (f - f_ref) / f_ref < 1e-12
    np.testing.assert_allclose(w, w_ref, atol=1e-6 * np.abs(w_ref).max())
    assert np.all(np.diff(hist["comm_rounds"]) == 2)         # gradient + local solves
    d, K = len(w), 4
    # per iteration: (64 + 8d) down and 8(d + 1) up per worker for the gradient,
    # (64 + 16d) down and 8d up for the local solutions
    per_it_down, per_it_up = K * (64 + 8 * d + 64 + 16 * d), K * (8 * (d + 1) + 8 * d)
    its = hist["iteration"]
    np.testing.assert_array_equal(hist["bytes_down"], per_it_down * its)
    np.testing.assert_array_equal(hist["bytes_up"], per_it_up * its)


@pytest.mark.mpi
@pytest.mark.data(reason="a9a's published-scale optimum")
def test_dane_on_a9a_mpi_equals_sim_and_the_sklearn_optimum(tmp_path, installed):
    X, y, lam, w_ref, f_ref = a9a_reference()
    cfg = dane_config(tmp_path, SHARED / "a9a.bz2")
    res = run(cfg, tmp_path / "mpi.h5", installed, n=5)
    assert res.returncode == 0, res.stderr
    res = run(cfg, tmp_path / "sim.h5", installed, "--backend", "sim", "--workers", "4")
    assert res.returncode == 0, res.stderr
    _, hm, wm = read_result(tmp_path / "mpi.h5")
    _, hs, ws = read_result(tmp_path / "sim.h5")
    np.testing.assert_allclose(wm, ws, rtol=0, atol=1e-12 * np.abs(ws).max())
    np.testing.assert_array_equal(hm["comm_rounds"], hs["comm_rounds"])
    f = logistic_objective(X, y, wm, lam)
    assert (f - f_ref) / f_ref < 1e-12
    assert np.all(np.diff(hm["comm_rounds"]) == 2)


@pytest.mark.parametrize("backend", ["sim", pytest.param("mpi", marks=pytest.mark.mpi)])
def test_dane_checkpoint_and_resume(tmp_path, installed, small, backend):
    cfg = dane_config(tmp_path, small, grad_rtol=1e-14, max_rounds=24)
    args = ("--backend", "sim", "--workers", "3") if backend == "sim" else ()
    n = 4 if backend == "mpi" else None
    full, stopped = tmp_path / "full.h5", tmp_path / "stopped.h5"
    assert run(cfg, full, installed, *args, n=n).returncode == 0
    res = run(cfg, stopped, installed, *args, n=n, extra={"DISTNEWTON_TEST_SIGNAL": "SIGTERM@3"})
    assert res.returncode == 3, res.stderr
    attrs, hs, _ = read_result(stopped)
    assert attrs["status"] == "stopped" and len(hs["iteration"]) == 4
    res = cli("run", "--resume", stopped, *args, "-q", n=n, extra_env=installed)
    assert res.returncode == 0, res.stderr
    _, hf, wf = read_result(full)
    _, hr, wr = read_result(stopped)
    np.testing.assert_array_equal(hr["comm_rounds"], hf["comm_rounds"])
    np.testing.assert_allclose(wr, wf, rtol=0, atol=1e-12 * np.abs(wf).max())
