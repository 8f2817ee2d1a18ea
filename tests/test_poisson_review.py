"""Review of ``model.loss: poisson`` (issue 31): the defects found after the merge, each
with the test that failed before its fix.  References are scikit-learn's
``PoissonRegressor`` and the objective written out with numpy."""

import warnings

import numpy as np
import pytest

from distnewton.estimators_glm import DistNewtonPoissonRegressor

from support.poisson import count_problem


def _sklearn(X, y, alpha, sample_weight, fit_intercept):
    from sklearn.linear_model import PoissonRegressor
    return PoissonRegressor(alpha=alpha, fit_intercept=fit_intercept, tol=1e-12,
                            max_iter=10000, solver="newton-cholesky").fit(
                                X, y, sample_weight=sample_weight)


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_estimator_with_sample_weight_is_poisson_regressor_of_the_same_alpha(fit_intercept):
    """scikit-learn's PoissonRegressor averages the weighted deviance over sum(s), not n:
    lam = alpha must give its optimum with any sample_weight (scaling them all changes
    nothing), as the estimator's docstring and docs/guide/objective.md say."""
    X, y = count_problem(n=300, d=5, seed=4)
    s = np.random.default_rng(5).uniform(0.5, 3.0, len(y))
    alpha = 0.05
    ref = _sklearn(X, y, alpha, s, fit_intercept)
    for scale in (1.0, 10.0):
        est = DistNewtonPoissonRegressor(lam=alpha, fit_intercept=fit_intercept,
                                         regularize_intercept=not fit_intercept, workers=2,
                                         tol=1e-12).fit(X, y, sample_weight=scale * s)
        np.testing.assert_allclose(est.coef_, ref.coef_, rtol=0, atol=1e-7)
        assert est.intercept_ == pytest.approx(ref.intercept_, abs=1e-7)


def test_estimator_default_lam_with_integer_weights_is_the_repeated_rows_fit():
    """lam="1/n" with integer sample_weight is the fit on the rows repeated (1/n there
    is 1/sum(s)): scikit-learn's sample-weight equivalence."""
    X, y = count_problem(n=60, d=3, seed=6)
    k = np.random.default_rng(7).integers(1, 4, len(y))
    kw = dict(workers=2, tol=1e-12, regularize_intercept=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        weighted = DistNewtonPoissonRegressor(**kw).fit(X, y, sample_weight=k)
        repeated = DistNewtonPoissonRegressor(**kw).fit(np.repeat(X, k, axis=0),
                                                        np.repeat(y, k))
    np.testing.assert_allclose(weighted.coef_, repeated.coef_, rtol=0, atol=1e-7)
    assert weighted.intercept_ == pytest.approx(repeated.intercept_, abs=1e-7)


# -- every method that takes poisson is safe on heterogeneous shards ---------------------


def _heterogeneous():
    """Two contiguous shards that disagree: 10 rows x = 0.001 with counts 1000, 10 rows
    x = 1 with count 0.  The global problem is tame (its optimum is near w = 0, where
    newton stops in 2 iterations), but the first shard alone wants w ~ 6900: a model
    averaged from local optima puts x.w in the thousands on the second shard, where
    exp overflows."""
    X = np.array([[0.001]] * 10 + [[1.0]] * 10)
    y = np.array([1000.0] * 10 + [0.0] * 10)
    return X, y, 1e-6


def test_every_method_that_takes_poisson_reaches_the_optimum_on_disagreeing_shards():
    """A method that takes poisson must guard every model it moves to (the claim of
    GUARDED_LOSSES): none may end ``diverged`` with an inf loss on a problem newton
    solves.  LocalNewton's average of local models (and adaptive_localnewton's
    LocalNewton phase) is a step no line search guards: they refuse poisson."""
    from scipy.optimize import minimize_scalar
    from distnewton import solve
    from distnewton.algorithms.registry import BUILTINS
    X, y, lam = _heterogeneous()
    f = lambda w: float(np.mean(np.exp(X[:, 0] * w) - y * X[:, 0] * w) + 0.5 * lam * w * w)
    f_ref = minimize_scalar(f, bounds=(-5, 5), method="bounded",
                            options={"xatol": 1e-12}).fun
    takes = [c.name for c in BUILTINS if "poisson" in c.losses]
    assert {"newton", "giant", "lbfgs", "gd", "owlqn", "fednl"} <= set(takes)
    for name in takes:
        cfg = {"model": {"loss": "poisson", "lambda": lam},
               "data": {"partition": "contiguous"},
               "algorithm": {"name": name}, "run": {"max_rounds": 300}}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = solve(cfg, workers=2, data=(X, y))
        assert res.status != "diverged", (name, res.message)
        assert f(float(res.w[0])) - f_ref <= 1e-9 * abs(f_ref), name


def test_evaluate_deviance_of_an_overflowed_mean_is_inf_not_nan():
    """A row whose x.w passes 709.78 has mu = exp(x.w) = +inf: its unit deviance
    2 (t log(t/mu) - t + mu) grows without bound (mu outgrows -t log mu), so the mean
    deviance is +inf and D^2 -inf, also where t > 0 (inf - inf was NaN)."""
    import math
    from distnewton.model import poisson_metrics
    t = np.array([0.0, 2.0, 3.0])
    for big in (0, 1):                          # the overflow on a zero / a positive count
        z = np.log(np.array([1.0, 2.5, 2.0]))
        z[big] = 800.0
        out = poisson_metrics(z, t)
        assert math.isinf(out["poisson_deviance"]) and out["poisson_deviance"] > 0, out
        assert out["d2"] == -math.inf, out
    finite = poisson_metrics(np.log(np.array([1.0, 2.5, 2.0])), t)["poisson_deviance"]
    mu = np.array([1.0, 2.5, 2.0])
    ref = np.mean(2 * (np.where(t > 0, t * np.log(np.where(t > 0, t, 1) / mu), 0) - t + mu))
    assert finite == pytest.approx(ref, rel=1e-14)


@pytest.mark.parametrize("params, key", [
    ({"line_search": False}, "line_search"), ({"preset": "paper"}, "preset"),
    ({"participation": 2}, "participation"), ({"participation": 2, "line_search": False},
                                              "line_search")])
def test_fednl_refuses_poisson_naming_the_key_that_turned_its_line_search_off(params, key):
    """The refusal's key is the one the user set: ``preset: paper`` or ``participation``
    (FedNL-PP) turn FedNL-LS off without ``line_search`` being written (the refusal
    named algorithm.line_search for both)."""
    from distnewton import solve
    from distnewton.errors import UserError
    X, y = count_problem(n=40, d=3, seed=8)
    cfg = {"model": {"loss": "poisson"}, "algorithm": {"name": "fednl", **params}}
    with pytest.raises(UserError, match=rf"^algorithm\.{key}: .*loss poisson needs FedNL-LS"
                                        r"[^\n]*$"):
        solve(cfg, workers=2, data=(X, y))


def test_class_weight_with_poisson_is_refused_naming_poisson_not_ridge():
    """The refusal said "(ridge has no classes ...)" for every regression loss."""
    from distnewton import solve
    from distnewton.errors import UserError
    X, y = count_problem(n=40, d=3, seed=9)
    cfg = {"model": {"loss": "poisson", "class_weight": "balanced"},
           "algorithm": {"name": "newton"}}
    with pytest.raises(UserError, match=r"^model\.class_weight: only for loss logistic or "
                                        r"squared_hinge \(poisson has no classes; use "
                                        r"data\.weights\)$"):
        solve(cfg, workers=2, data=(X, y))


def test_a_nan_or_inf_count_is_not_called_negative():
    """check_counts (map_labels, Model.targets) said "label nan is negative"."""
    from distnewton.data.libsvm import check_counts
    from distnewton.errors import UserError
    for bad, word in ((np.nan, "nan is not finite"), (np.inf, "inf is not finite"),
                      (-np.inf, "-inf is negative"), (-0.5, "-0.5 is negative")):
        with pytest.raises(UserError, match=rf"^src: data row 2: label {word}: loss poisson"):
            check_counts(np.array([1.0, bad]), "src")


def test_a_warm_start_where_exp_overflows_stops_saying_so_without_a_warning(tmp_path):
    """model.w0 with x.w in the thousands: f(w0) = +inf.  The run stops at once (no
    method can step from there) naming model.w0, not "try a smaller step size", and no
    numpy RuntimeWarning leaks from the first history row's gradient (inf - inf)."""
    from distnewton import solve
    X, y = count_problem(n=100, d=3, seed=1)
    np.save(tmp_path / "w0.npy", np.full(3, 1000.0))
    cfg = {"model": {"loss": "poisson", "w0": str(tmp_path / "w0.npy")},
           "algorithm": {"name": "newton"}}
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        res = solve(cfg, workers=2, data=(X, y), warn=False)
    assert res.status == "diverged"
    assert res.message.startswith("model.w0: the loss or gradient at the warm start is not "
                                  "finite"), res.message
