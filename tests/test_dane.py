"""DANE built in (Shamir, Srebro and Zhang 2014): scikit-learn's optimum (logistic) and
the closed-form ridge solution, 2 rounds per iteration and their bytes by hand, the
Cholesky and CG local solves alike, and a real ``mpiexec`` run equal to the sim
backend.  (The plugin example, registered as ``dane_plugin``: test_dane_plugin.py.)"""

import numpy as np
import pytest

import distnewton
from distnewton.algorithms.dane import DANE
from distnewton.runtime import HEADER_BYTES
from support.a9a_runs import a9a_relative_gap
from support.dane_reference import numpy_dane
from support.giant_reference import rare_feature_problem, step_along
from support.inprocess import setup
from support.launch import cli, read_result, synth, write_config
from support.references import logistic_objective, logistic_reference


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return synth(tmp_path_factory.mktemp("dane") / "s.svm", 2000, 12, density=0.5, seed=4)


def solve(path, workers=4, run=None, loss="logistic", **algo):
    cfg = {"data": {"train": str(path)}, "model": {"loss": loss, "lambda": "1/n"},
           "algorithm": {"name": "dane", **algo},
           "run": {"max_rounds": 200, "grad_rtol": 1e-12, **(run or {})}}
    return distnewton.solve(cfg, workers=workers)


@pytest.mark.parametrize("algo", [{}, {"local_solver": "cg", "local_steps": 2, "mu": 1e-3}])
def test_reaches_the_sklearn_optimum(small, algo):
    X, y, lam, w_ref, f_ref = logistic_reference(small)
    r = solve(small, **algo)
    assert r.attrs["status"] == "converged"
    f = logistic_objective(X, y, r.w, lam)
    assert (f - f_ref) / f_ref < 1e-10
    np.testing.assert_allclose(r.w, w_ref, atol=1e-6 * np.abs(w_ref).max())


@pytest.mark.slow
@pytest.mark.data(reason="a9a's published-scale optimum")
def test_reaches_the_sklearn_optimum_on_a9a():
    r, gap = a9a_relative_gap({"name": "dane"}, max_rounds=200)
    assert r.attrs["status"] == "converged" and gap < 1e-10


def test_ridge_reaches_the_closed_form_solution(small):
    """One local Newton step solves a quadratic local problem exactly; DANE then
    converges linearly to (X^T X / n + lambda I)^{-1} X^T y / n."""
    from sklearn.datasets import load_svmlight_file
    X, y = load_svmlight_file(str(small))
    n, d = X.shape
    w_ref = np.linalg.solve((X.T @ X).toarray() / n + np.eye(d) / n, X.T @ y / n)
    r = solve(small, loss="ridge")
    assert r.attrs["status"] == "converged"
    np.testing.assert_allclose(r.w, w_ref, rtol=0, atol=1e-8 * np.abs(w_ref).max())


def test_two_rounds_per_iteration_and_their_bytes_by_hand(small):
    """``step_rule: unit`` (the paper): the same bytes every iteration."""
    K, d = 4, 12
    r = solve(small, workers=K, run={"max_iterations": 5, "grad_rtol": 1e-16}, step_rule="unit")
    h = r.history
    its = h["iteration"]
    np.testing.assert_array_equal(h["comm_rounds"], 2 * its)
    # gradient: w down, f and g up; local solutions: w and g down, n_k w_k up
    down = K * (HEADER_BYTES + 8 * d) + K * (HEADER_BYTES + 16 * d)
    up = K * 8 * (d + 1) + K * 8 * d
    np.testing.assert_array_equal(h["bytes_down"], down * its)
    np.testing.assert_array_equal(h["bytes_up"], up * its)


def test_unit_or_half_costs_no_round_and_doubles_the_gradient_rounds_floats(small):
    """The default ``step_rule``: from the second iteration on the gradient round
    sends w_{t+1} and the anchor (2d down) and returns f and g at both points
    (2d + 2 up); still 2 rounds an iteration."""
    K, d = 4, 12
    h = solve(small, workers=K, run={"max_iterations": 5, "grad_rtol": 1e-16}).history
    its = h["iteration"]
    np.testing.assert_array_equal(h["comm_rounds"], 2 * its)
    first_down = K * (HEADER_BYTES + 8 * d) + K * (HEADER_BYTES + 16 * d)
    first_up = K * 8 * (d + 1) + K * 8 * d
    down = K * (HEADER_BYTES + 16 * d) + K * (HEADER_BYTES + 16 * d)
    up = K * 8 * (2 * d + 2) + K * 8 * d
    np.testing.assert_array_equal(h["bytes_down"], np.where(its > 0, first_down + down * (its - 1), 0))
    np.testing.assert_array_equal(h["bytes_up"], np.where(its > 0, first_up + up * (its - 1), 0))


@pytest.mark.parametrize("rule", ["unit", "unit_or_half"])
@pytest.mark.parametrize("keys", [{}, {"eta": 0.8, "mu": 1e-3, "local_steps": 2}])
def test_follows_the_numpy_dane_where_the_unit_step_overshoots(rule, keys):
    """K = 4 shards of the rare-feature problem (the averaged local inverse Hessians
    overshoot a feature present in one shard only, as w8a's rare features):
    distnewton follows the numpy DANE of the same ``step_rule`` to 1e-12, step sizes
    and rounds included; ``unit_or_half`` starts some iterations from the midpoint
    and its steps shrink far faster."""
    import scipy.sparse as sp
    X, y = rare_feature_problem()
    alg, rt = setup(DANE, sp.csr_matrix(X), y, K=4, local_solver="cholesky", step_rule=rule,
                    **keys)
    ref = numpy_dane(X, y, 4, 1.0 / 400, 12, rule=rule, **keys)
    steps = step_along(alg, rt, ref, "step_size")
    if rule == "unit":
        assert set(steps) == {1.0}
    elif not keys:
        unit = numpy_dane(X, y, 4, 1.0 / 400, 12)
        last, last_unit = (np.linalg.norm(r[-1][2] - r[-2][2]) for r in (ref, unit))
        assert 0.5 in steps and last < 0.05 * last_unit, (steps, last, last_unit)


def test_unit_or_half_leaves_an_average_whose_f_is_not_finite():
    """f at the DANE average inf (an overflow) or nan, at the midpoint finite: the
    midpoint (the rule compared with inf - inf, nan, and kept the point it knew worse)."""
    from types import SimpleNamespace
    from distnewton.algorithms.dane import unit_or_half
    d = 3

    class OneRound:                                # the gradient round's reply, given
        def __init__(self, out):
            self.out = out

        def round(self, task, *down, up):
            assert task == "dane.two_points" and up == 2 * d + 2
            return self.out

    prob = SimpleNamespace(d=d, n=10, penalty=0.1)
    w, anchor = np.full(d, 2.0), np.zeros(d)
    for bad in (np.inf, np.nan):
        reply = np.concatenate(([bad], np.ones(d), [5.0], np.zeros(d)))
        point, f, g = unit_or_half(OneRound(reply), prob, w, anchor)
        # by hand at the midpoint (1, 1, 1): 5/10 + 0.1/2 * 3, and 0/10 + 0.1 * 1
        np.testing.assert_array_equal(point, np.ones(d))
        assert f == pytest.approx(0.65) and np.allclose(g, 0.1), (bad, f, g)
    reply = np.concatenate(([np.inf], np.ones(d), [np.inf], np.zeros(d)))
    assert unit_or_half(OneRound(reply), prob, w, anchor)[0] is w   # neither: as before


def test_the_paper_preset_is_the_unit_step():
    from distnewton.config import resolve

    def rule(**keys):
        raw = {"data": {"train": "x.svm"}, "algorithm": {"name": "dane", **keys}}
        return resolve(raw)["algorithm"]["step_rule"]
    assert (rule(), rule(preset="paper"), rule(preset="paper", step_rule="unit_or_half")) == \
        ("unit_or_half", "unit", "unit_or_half")


@pytest.mark.mpi
def test_mpi_run_equals_the_sim_run(tmp_path, small):
    cfg = write_config(tmp_path / "d.yaml", data={"train": str(small)},
                       model={"loss": "logistic", "lambda": "1/n"},
                       algorithm={"name": "dane", "local_steps": 2},
                       run={"max_rounds": 200, "max_iterations": 6, "grad_rtol": 1e-16})
    res = cli("run", cfg, "-o", tmp_path / "m.h5", "-q", n=4)
    assert res.returncode == 0, res.stderr
    attrs, hist, w = read_result(tmp_path / "m.h5")
    assert attrs["algorithm"] == "dane"
    sim = solve(small, workers=3, local_steps=2, run={"max_iterations": 6, "grad_rtol": 1e-16})
    assert sim.iterations == 6
    assert np.linalg.norm(w - sim.w) <= 1e-12 * np.linalg.norm(sim.w)
    for key in ("comm_rounds", "bytes_up", "bytes_down"):
        assert np.array_equal(hist[key], sim.history[key])
