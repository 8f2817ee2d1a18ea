"""L1 and elastic-net objectives (issue 31): ``model.l1`` / ``model.l1_ratio`` with
``owlqn``. References: the same objective solved independently as a smooth bound-
constrained problem (w = u - v, u, v >= 0, scipy's L-BFGS-B to 1e-13), scikit-learn's
``saga`` (LogisticRegression, elastic net) and coordinate descent (``Lasso``,
``ElasticNet`` for ridge), and the pseudo-gradient written out case by case."""

import numpy as np
import pytest
import scipy.optimize as so

from distnewton import l1 as L1
from distnewton import solve
from distnewton.errors import UserError
from support import launch
from support.launch import SHARED


def problem(n=200, d=20, seed=0, loss="logistic"):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    w = np.zeros(d)
    w[:5] = 2 * rng.normal(size=5)
    z = X @ w + 0.5 * rng.normal(size=n)
    return X, (np.where(z > 0, 1.0, -1.0) if loss == "logistic" else z)


def split_variable_optimum(X, y, lam2, lam1, loss="logistic", free_last=False):
    """min f(u - v) + lam1 (1.u + 1.v) over u, v >= 0: smooth, solved by L-BFGS-B
    (the intercept, when ``free_last``, unpenalised by either term)."""
    n, d = X.shape
    pen2 = np.full(d, lam2)
    pen1 = np.full(d, lam1)
    if free_last:
        pen2[-1] = pen1[-1] = 0.0

    def fun(uv):
        w = uv[:d] - uv[d:]
        z = X @ w
        if loss == "logistic":
            f = np.mean(np.logaddexp(0.0, -y * z))
            s = -y / (1.0 + np.exp(y * z)) / n
        else:
            f = 0.5 * np.mean((z - y) ** 2)
            s = (z - y) / n
        g = X.T @ s + pen2 * w
        value = f + 0.5 * w @ (pen2 * w) + pen1 @ (uv[:d] + uv[d:])
        return value, np.concatenate([g + pen1, -g + pen1])

    res = so.minimize(fun, np.zeros(2 * d), jac=True, method="L-BFGS-B",
                      bounds=[(0, None)] * (2 * d),
                      options={"ftol": 1e-15, "gtol": 1e-13, "maxiter": 20000, "maxcor": 30})
    w = res.x[:d] - res.x[d:]
    return w, fun(res.x)[0]


def run(X, y, workers=3, **model):
    return solve({"model": {"lambda": 0.02, **model}, "algorithm": {"name": "owlqn"},
                  "run": {"grad_rtol": 1e-12, "max_rounds": 1000}}, data=(X, y),
                 workers=workers)


def test_the_pseudo_gradient_is_the_least_norm_subgradient():
    w = np.array([1.0, -2.0, 0.0, 0.0, 0.0])
    g = np.array([0.5, 0.5, -3.0, 3.0, 0.5])
    pg = L1.pseudo_gradient(1.0, w, g)
    # w_i != 0: g + sign(w); w_i = 0: g + 1 if that is < 0, g - 1 if that is > 0, else 0
    np.testing.assert_array_equal(pg, [1.5, -0.5, -2.0, 2.0, 0.0])
    np.testing.assert_array_equal(L1.orthant(w, pg), [1.0, -1.0, 1.0, -1.0, 0.0])
    np.testing.assert_array_equal(L1.project(np.array([2.0, 1.0, 1.0, 1.0, 3.0]),
                                             L1.orthant(w, pg)), [2.0, 0.0, 1.0, 0.0, 0.0])


@pytest.mark.parametrize("model", [{"l1": 0.01}, {"l1_ratio": 0.5}, {"l1_ratio": 1.0}])
def test_owlqn_reaches_the_split_variable_optimum_and_its_zeros(model):
    X, y = problem()
    lam = 0.02
    lam1 = model.get("l1", lam * model.get("l1_ratio", 0.0))
    lam2 = lam * (1 - model["l1_ratio"]) if "l1_ratio" in model else lam
    res = run(X, y, **model)
    w_ref, f_ref = split_variable_optimum(X, y, lam2, lam1)
    assert res.status == "converged"
    assert abs(res.loss - f_ref) <= 1e-12 * f_ref
    np.testing.assert_allclose(res.w, w_ref, rtol=0, atol=1e-6)
    # the zeros are exact: the same support as the reference, up to its 1e-10 noise
    assert np.array_equal(res.w != 0, np.abs(w_ref) > 1e-9)
    assert res.history["nnz"][-1] == np.count_nonzero(res.w)


def test_elastic_net_equals_sklearns_saga():
    from sklearn.linear_model import LogisticRegression
    X, y = problem(seed=1)
    lam = 0.02
    res = run(X, y, l1_ratio=0.5)
    ref = LogisticRegression(l1_ratio=0.5, C=1 / (lam * len(y)), solver="saga", tol=1e-12,
                             max_iter=100000, fit_intercept=False).fit(X, y).coef_.ravel()
    np.testing.assert_allclose(res.w, ref, rtol=0, atol=1e-9)


def test_lasso_and_elastic_net_ridge_equal_sklearns_coordinate_descent():
    from sklearn.linear_model import ElasticNet
    X, y = problem(loss="ridge", seed=2)
    for ratio in (1.0, 0.3):
        res = run(X, y, loss="ridge", l1_ratio=ratio, **{"lambda": 0.1})
        ref = ElasticNet(alpha=0.1, l1_ratio=ratio, fit_intercept=False, tol=1e-14,
                         max_iter=100000).fit(X, y).coef_
        np.testing.assert_allclose(res.w, ref, rtol=0, atol=1e-9)


def test_a_free_intercept_is_left_out_of_the_l1_term_as_of_the_l2_term():
    X, y = problem(seed=3)
    res = run(X, y + 0.0, l1=0.02, fit_intercept=True, regularize_intercept=False)
    Xi = np.column_stack([X, np.ones(len(y))])
    w_ref, f_ref = split_variable_optimum(Xi, y, 0.02, 0.02, free_last=True)
    assert abs(res.loss - f_ref) <= 1e-12 * f_ref
    np.testing.assert_allclose(res.w, w_ref, rtol=0, atol=1e-6)


def test_an_l1_weight_beyond_the_gradients_largest_entry_gives_zero():
    X, y = problem(seed=4)
    g0 = X.T @ (-y / 2) / len(y)                 # grad f(0) of the logistic loss
    res = run(X, y, l1=float(1.01 * np.abs(g0).max()))
    assert res.status == "converged" and res.iterations <= 1 and not res.w.any()


@pytest.mark.parametrize("model, needle", [
    ({"l1": 0.1}, "model.l1: algorithm giant minimises smooth objectives only; an L1 term "
     "needs algorithm.name: owlqn"),
    ({"l1_ratio": 0.5}, "model.l1_ratio: algorithm giant minimises smooth objectives only"),
    ({"l1": 0.1, "l1_ratio": 0.5}, "model.l1: give model.l1 (the L1 weight) or "
     "model.l1_ratio (the L1 share of model.lambda), not both"),
    ({"l1_ratio": 1.5}, "model.l1_ratio: must be in [0.0, 1.0], got 1.5"),
    ({"l1": -1}, "model.l1: must be >= 0"),
])
def test_what_cannot_take_an_l1_term_is_refused_naming_the_key(model, needle):
    from distnewton.config import resolve
    with pytest.raises(UserError) as e:
        resolve({"data": {"train": "x.svm"}, "model": model, "algorithm": {"name": "giant"}})
    assert str(e.value).startswith(needle) and "\n" not in str(e.value)


@pytest.mark.slow
@pytest.mark.mpi
def test_owlqn_under_mpiexec_equals_sim_and_records_l1(tmp_path):
    from support.references import a9a_like
    path = a9a_like(tmp_path / "train.svm", n=600, d=40, per_row=8)
    cfg = launch.write_config(tmp_path / "c.yaml", data={"train": str(path)},
                              model={"lambda": 1e-3, "l1": 5e-3},
                              algorithm={"name": "owlqn"},
                              # above machine precision, where sums in another order
                              # could flip a line search's last-bit comparison
                              run={"grad_rtol": 1e-6, "max_rounds": 300, "workers": 3})
    for backend, n in (("mpi", 4), ("sim", None)):
        res = launch.cli("run", cfg, "-q", "--backend", backend, "-o", f"{backend}.h5", n=n,
                         cwd=tmp_path)
        assert res.returncode == 0, res.stderr
    (am, hm, wm), (as_, hs, ws) = (launch.read_result(tmp_path / f) for f in ("mpi.h5",
                                                                            "sim.h5"))
    assert am["l1"] == 5e-3 and am["status"] == "converged"
    np.testing.assert_array_equal(hm["comm_rounds"], hs["comm_rounds"])
    np.testing.assert_allclose(hm["loss"], hs["loss"], rtol=1e-13)
    np.testing.assert_allclose(wm, ws, rtol=0, atol=1e-12 * np.abs(ws).max())
    assert 0 < hm["nnz"][-1] < 40                              # a sparse model


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED / "a9a.bz2").exists(), reason="needs ../shared/data")
def test_l1_logistic_on_a9a_reaches_the_independent_optimum():
    from sklearn.datasets import load_svmlight_file
    X, y = load_svmlight_file(str(SHARED / "a9a.bz2"), n_features=123)
    n = X.shape[0]
    res = solve({"data": {"train": str(SHARED / "a9a.bz2")},
                 "model": {"lambda": 1 / n, "l1": 1e-3}, "algorithm": {"name": "owlqn"},
                 "run": {"grad_rtol": 1e-10, "max_rounds": 1000}}, workers=4)
    w_ref, f_ref = split_variable_optimum(X, y, 1 / n, 1e-3)
    assert (res.loss - f_ref) / f_ref <= 1e-8
    assert res.history["nnz"][-1] < 123


def test_the_estimators_l1_ratio_is_sklearns_elastic_net():
    from sklearn.linear_model import ElasticNet, LogisticRegression

    from distnewton.sklearn import DistNewtonClassifier, DistNewtonRegressor
    X, y = problem(seed=5)
    n, lam = len(y), 0.02
    est = DistNewtonClassifier(lam=lam, l1_ratio=0.5, fit_intercept=False, workers=3,
                               max_rounds=1000, tol=1e-12).fit(X, y)
    ref = LogisticRegression(l1_ratio=0.5, C=1 / (lam * n), solver="saga", tol=1e-12,
                             max_iter=100000, fit_intercept=False).fit(X, y)
    np.testing.assert_allclose(est.coef_, ref.coef_, rtol=0, atol=1e-9)
    assert np.array_equal(est.coef_ != 0, np.abs(ref.coef_) > 1e-12)
    Xr, yr = problem(seed=6, loss="ridge")
    reg = DistNewtonRegressor(lam=0.1, l1_ratio=1.0, fit_intercept=False, workers=3,
                              max_rounds=1000, tol=1e-12).fit(Xr, yr)
    lasso = ElasticNet(alpha=0.1, l1_ratio=1.0, fit_intercept=False, tol=1e-14,
                       max_iter=100000).fit(Xr, yr)
    np.testing.assert_allclose(reg.coef_, lasso.coef_, rtol=0, atol=1e-9)


def test_coordinates_the_l1_term_leaves_out_are_not_held_to_an_orthant():
    w, pg, x = np.array([1.0, 0.0, -2.0]), np.array([0.5, -1.0, 0.5]), np.array([-1.0, -1, 3])
    xi = L1.orthant(w, pg, np.array([1.0, 1.0, 0.0]))          # the last: a free intercept
    np.testing.assert_array_equal(L1.project(x, xi), [0.0, 0.0, 3.0])
    np.testing.assert_array_equal(L1.project(x, L1.orthant(w, pg, 0.0)), x)   # no L1 term


def test_owlqn_without_an_l1_term_is_lbfgs_and_reaches_the_l2_optimum():
    from sklearn.linear_model import LogisticRegression
    X, y = problem(seed=7)
    res = solve({"model": {"lambda": 0.02}, "algorithm": {"name": "owlqn"},
                 "run": {"grad_rtol": 1e-10, "max_rounds": 300}}, data=(X, y), workers=3)
    ref = LogisticRegression(C=1 / (0.02 * len(y)), fit_intercept=False, tol=1e-12,
                             solver="newton-cholesky").fit(X, y).coef_.ravel()
    assert res.status == "converged" and res.rounds < 100
    np.testing.assert_allclose(res.w, ref, rtol=0, atol=1e-9)
