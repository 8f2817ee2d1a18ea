"""End-to-end runs checked against independent references: scikit-learn's
LogisticRegression optimum and the closed-form ridge solution.  A synthetic set
on every clone; a9a and w8a (marked ``data``) for their published scale and
w8a.t's empty rows.  The distributed ones launch real ``mpiexec`` jobs."""

import numpy as np
import pytest
from sklearn.datasets import load_svmlight_file
from sklearn.linear_model import LogisticRegression

from support.launch import SHARED, cli, read_result, synth, write_config
from support.references import a9a_reference, logistic_objective, logistic_reference

#: whole runs (processes, MPI or files): outside the `-m "not slow"` inner loop
pytestmark = pytest.mark.slow

A9A = {"train": str(SHARED / "a9a.bz2"), "n_features": 123}


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """4000 x 50 synthetic logistic set (density 0.2): (data keys, X, y, lam, w*, f*)."""
    path = synth(tmp_path_factory.mktemp("runs") / "s.svm", 4000, 50, density=0.2)
    return ({"train": str(path)},) + logistic_reference(path)


@pytest.fixture(scope="module")
def a9a():
    return (A9A,) + a9a_reference()


@pytest.mark.data(reason="w8a.t's rows without features and its published test accuracy")
def test_test_accuracy_matches_sklearn_on_w8a(tmp_path):
    """w8a.t has rows with no features (x.w = 0): the prediction rule must be
    sklearn's (+1 only when x.w > 0), else ~8% of the test rows flip."""
    X, y = load_svmlight_file(str(SHARED / "w8a.bz2"), n_features=300, zero_based=False)
    Xt, yt = load_svmlight_file(str(SHARED / "w8a.t.bz2"), n_features=300, zero_based=False)
    ref = LogisticRegression(C=1.0, fit_intercept=False, solver="newton-cholesky",
                             tol=1e-12, max_iter=200).fit(X, y)
    cfg = write_config(tmp_path / "w8a.yaml",
                       data={"train": str(SHARED / "w8a.bz2"), "test": str(SHARED / "w8a.t.bz2"),
                             "n_features": 300},
                       algorithm={"name": "newton"}, run={"grad_rtol": 1e-12, "max_rounds": 400})
    out = tmp_path / "w8a.h5"
    run_ok("run", cfg, "--backend", "sim", "--workers", 2, "-o", out, "-q")
    attrs, hist, _ = read_result(out)
    assert attrs["status"] == "converged"       # auto's TRON: 139 rounds to 1e-12
    # same optimum (lambda = 1/n <=> C = 1): at most a couple of near-ties may differ
    assert abs(hist["test_accuracy"][-1] - ref.score(Xt, yt)) <= 2 / len(yt)


def config(tmp_path, data, name, **run):
    return write_config(
        tmp_path / f"{name}.yaml", data={**data, "partition": "iid"},
        model={"loss": "logistic", "lambda": "1/n"},
        algorithm={"name": name},
        run={"grad_rtol": 1e-12, **run})


def run_ok(*args, **kw):
    res = cli(*args, **kw)
    assert res.returncode == 0, res.stderr
    return res


@pytest.mark.parametrize("ref", ["small", pytest.param("a9a", marks=pytest.mark.data(
    reason="a9a's published-scale optimum"))])
@pytest.mark.parametrize("name,rounds", [("newton", 40), ("giant", 60)])
def test_sim_reaches_the_sklearn_optimum(tmp_path, ref, name, rounds, request):
    data, X, y, lam, w_ref, f_ref = request.getfixturevalue(ref)
    out = tmp_path / "r.h5"
    run_ok("run", config(tmp_path, data, name, max_rounds=rounds), "--backend", "sim",
           "--workers", 4, "-o", out, "-q")
    attrs, hist, w = read_result(out)
    f = logistic_objective(X, y, w, lam)
    # relative objective difference <= 1e-8 (both are second-order solutions to
    # ||grad|| ~ 1e-12; f* ~ 0.32 so 1e-8 relative is far above rounding)
    assert abs(f - f_ref) / f_ref <= 1e-8
    assert hist["loss"][-1] == pytest.approx(f, rel=1e-12)   # logged loss is f(w)
    assert attrs["status"] == "converged"


def test_gd_gets_within_1e3_in_2000_rounds(tmp_path, small):
    data, X, y, lam, _, f_ref = small
    out = tmp_path / "gd.h5"
    run_ok("run", config(tmp_path, data, "gd", max_rounds=2000), "--backend", "sim",
           "--workers", 4, "-o", out, "-q")
    attrs, hist, w = read_result(out)
    assert hist["comm_rounds"][-1] <= 2000
    # f_ref is sklearn's optimum, itself exact only to rounding (~1e-15 relative):
    # gd may land a hair below it, never meaningfully
    assert -1e-12 <= (logistic_objective(X, y, w, lam) - f_ref) / f_ref <= 1e-3


@pytest.mark.mpi
@pytest.mark.parametrize("ranks", [2, 3, 5])
def test_newton_over_1_2_4_mpi_workers_reaches_the_same_optimum(tmp_path, small, ranks):
    data, X, y, lam, w_ref, f_ref = small
    out = tmp_path / "n.h5"
    run_ok("run", config(tmp_path, data, "newton", max_rounds=40), "-o", out, "-q", n=ranks)
    attrs, hist, w = read_result(out)
    assert attrs["n_workers"] == ranks - 1 and attrs["backend"] == "mpi"
    assert abs(logistic_objective(X, y, w, lam) - f_ref) / f_ref <= 1e-8
    # the minimiser is unique (strongly convex): weights agree with sklearn's
    np.testing.assert_allclose(w, w_ref, rtol=0, atol=1e-6 * np.abs(w_ref).max())


@pytest.mark.mpi
def test_sim_and_mpi_give_the_same_iterates(tmp_path, small):
    cfg = config(tmp_path, small[0], "giant", max_rounds=15)
    run_ok("run", cfg, "-o", tmp_path / "mpi.h5", "-q", n=5)
    run_ok("run", cfg, "--backend", "sim", "--workers", 4, "-o", tmp_path / "sim.h5", "-q")
    _, hm, wm = read_result(tmp_path / "mpi.h5")
    _, hs, ws = read_result(tmp_path / "sim.h5")
    for col in ("comm_rounds", "bytes_up", "bytes_down", "iteration", "step_size"):
        np.testing.assert_array_equal(hm[col], hs[col])
    np.testing.assert_allclose(hm["loss"], hs["loss"], rtol=1e-12)
    np.testing.assert_allclose(wm, ws, rtol=0, atol=1e-12 * np.abs(ws).max())


def test_ridge_matches_the_closed_form(tmp_path):
    path = synth(tmp_path / "g.svm", 1000, 24, density=1.0, seed=5)   # german.numer's shape
    X, y = load_svmlight_file(str(path), zero_based=False)
    Xd, n, lam = X.toarray(), X.shape[0], 1e-3
    w_star = np.linalg.solve(Xd.T @ Xd / n + lam * np.eye(Xd.shape[1]), Xd.T @ y / n)
    for name, rounds in (("newton", 4), ("giant", 60), ("gd", 4000)):
        cfg = write_config(tmp_path / f"{name}.yaml",
                           data={"train": str(path), "partition": "iid"},
                           model={"loss": "ridge", "lambda": lam},
                           algorithm={"name": name},
                           run={"max_rounds": rounds, "grad_rtol": 1e-13 if name != "gd" else 1e-7})
        out = tmp_path / f"{name}.h5"
        run_ok("run", cfg, "--backend", "sim", "--workers", 3, "-o", out, "-q")
        attrs, hist, w = read_result(out)
        tol = 1e-9 if name != "gd" else 1e-4
        np.testing.assert_allclose(w, w_star, rtol=0, atol=tol * np.abs(w_star).max(),
                                   err_msg=name)
    # a quadratic: Newton with unit step lands on the optimum in one iteration
    _, hist, _ = read_result(tmp_path / "newton.h5")
    assert hist["iteration"][-1] == 1 and hist["comm_rounds"][-1] == 2


@pytest.mark.parametrize("precondition", ["none", "jacobi"])
def test_newton_cg_is_hessian_free_and_reaches_the_optimum(tmp_path, small, precondition):
    """solver: cg: no d x d matrix is sent (every reply is O(d)), inexact Newton with
    the forcing sequence (and with the Jacobi preconditioner) still reaches the
    sklearn optimum."""
    data, X, y, lam, w_ref, f_ref = small
    d = X.shape[1]
    out = tmp_path / "ncg.h5"
    cfg = config(tmp_path, data, "newton", max_rounds=600)
    run_ok("run", cfg, "--set", "algorithm.solver=cg", "--backend", "sim", "--workers", 2,
           "--set", f"algorithm.cg_precondition={precondition}", "-o", out, "-q")
    _, hist, w = read_result(out)
    assert abs(logistic_objective(X, y, w, lam) - f_ref) / f_ref <= 1e-8
    up = np.diff(hist["bytes_up"]) / np.maximum(np.diff(hist["comm_rounds"]), 1)
    assert up.max() <= 2 * 8 * (d + 10)           # per round: O(d), never d^2 floats
    assert hist["cg_iterations"][1:].min() >= 1
