"""LocalNewton and Adaptive LocalNewton against independent references:
scikit-learn's optimum (a synthetic set on every clone; a9a where ../shared/data
is) and the closed-form local/global ridge optima."""

import numpy as np
import pytest
from sklearn.datasets import load_svmlight_file

from support.launch import SHARED, cli, read_result, synth, write_config
from support.references import a9a_reference, logistic_objective, logistic_reference

#: whole runs (processes, MPI or files): outside the `-m "not slow"` inner loop
pytestmark = pytest.mark.slow

A9A = {"train": str(SHARED / "a9a.bz2"), "n_features": 123}


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """3000 x 40 synthetic logistic set (density 0.3) and scikit-learn's optimum."""
    path = synth(tmp_path_factory.mktemp("ln") / "s.svm", 3000, 40, density=0.3)
    X, y, lam, _, f_ref = logistic_reference(path)
    return {"train": str(path)}, X, y, lam, f_ref


@pytest.fixture(scope="module")
def a9a():
    X, y, lam, _, f_ref = a9a_reference()
    return A9A, X, y, lam, f_ref


def run(tmp_path, name, data, backend=("--backend", "sim", "--workers", 4), n=None, **algo):
    cfg = write_config(tmp_path / f"{name}.yaml", data=data,
                       algorithm={"name": name, **algo.pop("algorithm", {})},
                       run={"grad_rtol": 1e-12, "max_rounds": 60, **algo.pop("run", {})})
    out = tmp_path / f"{name}-{n}.h5"
    res = cli("run", cfg, *([] if n else backend), "-o", out, "-q", n=n)
    assert res.returncode == 0, res.stderr
    return read_result(out)


def test_localnewton_L3_nine_iterations_cost_three_rounds(tmp_path, small):
    attrs, hist, _ = run(tmp_path, "localnewton", small[0], algorithm={"L": 3},
                         run={"max_iterations": 9})
    np.testing.assert_array_equal(hist["iteration"], [0, 3, 6, 9])
    np.testing.assert_array_equal(hist["comm_rounds"], [0, 1, 2, 3])
    assert attrs["status"] == "max_iterations"


def test_localnewton_reaches_its_floor(tmp_path, small):
    data, X, y, lam, f_ref = small
    _, hist, w = run(tmp_path, "localnewton", data, algorithm={"L": 3}, run={"max_rounds": 20})
    subopt = (logistic_objective(X, y, w, lam) - f_ref) / f_ref
    # measured 8.6e-4 with 4 shards of 750 rows: a floor, not the optimum (GIANT and
    # Newton reach 1e-8 here).  Bound with margin 3.5x.
    assert 1e-6 < subopt < 3e-3


@pytest.mark.data(reason="a9a's scale (4 shards of ~8140 rows) for the floor measured on it")
def test_localnewton_reaches_its_floor_on_a9a(tmp_path, a9a):
    data, X, y, lam, f_ref = a9a
    _, hist, w = run(tmp_path, "localnewton", data, algorithm={"L": 3}, run={"max_rounds": 20})
    subopt = (logistic_objective(X, y, w, lam) - f_ref) / f_ref
    # measured 3.7e-4 with 4 iid shards of ~8140 rows: a floor, not the optimum.
    # Bound with margin 2.7x; and it is far above GIANT/Newton's 1e-8.
    assert 1e-6 < subopt < 1e-3


@pytest.mark.parametrize("ref", ["small", pytest.param("a9a", marks=pytest.mark.data(
    reason="a9a's published-scale optimum"))])
def test_adaptive_localnewton_reaches_the_optimum_and_logs_its_phases(tmp_path, ref, request):
    data, X, y, lam, f_ref = request.getfixturevalue(ref)
    attrs, hist, w = run(tmp_path, "adaptive_localnewton", data)
    assert abs(logistic_objective(X, y, w, lam) - f_ref) / f_ref <= 1e-8
    phases = [p.decode() for p in hist["phase"][1:]]
    assert phases[0] == "localnewton" and phases[-1] == "giant"
    switch = phases.index("giant")
    assert phases[switch:] == ["giant"] * (len(phases) - switch)   # never switches back
    L = hist["L"][1:switch + 1]
    assert L[0] == 3 and np.all(np.diff(L) <= 0) and L[-1] == 1    # L only decreases, to 1
    rounds = np.diff(hist["comm_rounds"])
    np.testing.assert_array_equal(rounds[:switch], 1)              # one round per sync
    # GIANT: gradient, direction and one line-search round (a batch of trial steps);
    # a step that needs a second batch costs a fourth
    assert np.all(rounds[switch:] >= 3) and np.mean(rounds[switch:] == 3) >= 0.8, rounds


@pytest.mark.mpi
def test_adaptive_localnewton_sim_equals_mpi(tmp_path, small):
    _, hs, ws = run(tmp_path, "adaptive_localnewton", small[0], run={"max_rounds": 25})
    _, hm, wm = run(tmp_path, "adaptive_localnewton", small[0], run={"max_rounds": 25}, n=5)
    for col in ("comm_rounds", "iteration", "L", "phase", "bytes_up", "bytes_down"):
        np.testing.assert_array_equal(hs[col], hm[col])
    np.testing.assert_allclose(hs["loss"], hm["loss"], rtol=1e-12)
    np.testing.assert_allclose(ws, wm, rtol=0, atol=1e-11 * np.abs(ws).max())


def test_localnewton_on_heterogeneous_ridge_stalls_at_the_mean_of_local_optima(tmp_path):
    """Least squares, label-skewed shards: each worker's unit Newton step lands on
    its local optimum w_k*, so w_bar = sum_k (n_k/n) w_k* for ever, not w*.
    A dense 1000 x 24 synthetic set with +-1 labels (german.numer_scale's shape)."""
    path = synth(tmp_path / "g.svm", 1000, 24, density=1.0, seed=5)
    X, y = load_svmlight_file(str(path), zero_based=False)
    Xd, n, d, lam = X.toarray(), X.shape[0], X.shape[1], 1e-6
    cfg = write_config(tmp_path / "ln.yaml",
                       data={"train": str(path), "partition": "label_skew", "seed": 1},
                       model={"loss": "ridge", "lambda": lam},
                       algorithm={"name": "localnewton", "L": 1},
                       run={"max_rounds": 10, "grad_rtol": 1e-14})
    out = tmp_path / "ln.h5"
    res = cli("run", cfg, "--backend", "sim", "--workers", 4, "-o", out, "-q")
    assert res.returncode == 0, res.stderr
    attrs, hist, w = read_result(out)
    from distnewton.data import partition
    parts = partition(y, 4, "label_skew", seed=1)
    local = [np.linalg.solve(Xd[p].T @ Xd[p] / len(p) + lam * np.eye(d), Xd[p].T @ y[p] / len(p))
             for p in parts]
    w_bar = sum(len(p) / n * wk for p, wk in zip(parts, local))
    w_star = np.linalg.solve(Xd.T @ Xd / n + lam * np.eye(d), Xd.T @ y / n)
    np.testing.assert_allclose(w, w_bar, rtol=0, atol=1e-8 * np.abs(w_bar).max())
    assert np.linalg.norm(w_bar - w_star) > 0.05 * np.linalg.norm(w_star)   # a real floor
    assert np.ptp(hist["loss"][2:]) < 1e-12 * hist["loss"][-1]               # it stalls
    assert attrs["status"] == "max_rounds"
