"""``model.loss: poisson`` (Poisson regression, log link) against independent references:
central differences and the closed forms exp(z) - y z, exp(z) - y, exp(z) for the loss;
scikit-learn's ``PoissonRegressor`` optimum (the same minimiser: its objective is ours up
to a constant, checked) for newton, lbfgs, giant and the other line-search methods (sim
backend), from a start whose first Newton step overflows exp; the methods that cannot take
it refuse it; ``model.loss: hinge`` refused naming squared_hinge.  The CLI (negative labels,
predict, evaluate, export, mpiexec, a real set's features): tests/test_poisson_cli.py."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp

import distnewton
from distnewton.algorithms import ALGORITHMS
from distnewton.algorithms.base import check_loss
from distnewton.config import check_value
from distnewton.config_schema import SCHEMA
from distnewton.data import make_synthetic, map_labels
from distnewton.errors import UserError
from distnewton.objectives import Poisson, Shard

from support.poisson import count_problem, poisson_objective, sklearn_optimum

#: the methods that take poisson (each step passes a line search or trust-region test)
TAKES = ["newton", "lbfgs", "giant", "gd", "owlqn", "fednl"]
#: the methods that refuse it (bounded-curvature step sizes, theory constants, unguarded steps)
#: (localnewton, adaptive_localnewton: the average of local models; tests/test_poisson_review.py)
REFUSES = ["localsgd", "scaled_localsgd", "ranl", "ist", "disco", "dane", "localnewton",
           "adaptive_localnewton"]


# -- the loss and its derivatives ------------------------------------------------


def test_the_loss_is_exp_z_minus_y_z_with_its_derivatives_and_scalars_agree():
    z = np.array([-3.0, 0.0, 0.5, 2.0])
    y = np.array([0.0, 1.0, 4.0, 2.5])
    np.testing.assert_allclose(Poisson.value(z, y), np.exp(z) - y * z, rtol=1e-15)
    np.testing.assert_allclose(Poisson.deriv(z, y), np.exp(z) - y, rtol=1e-15)
    np.testing.assert_allclose(Poisson.deriv2(z, y), np.exp(z), rtol=1e-15)
    value, deriv, curv = Poisson.parts(z, y)
    np.testing.assert_array_equal(value, Poisson.value(z, y))
    np.testing.assert_array_equal(deriv, Poisson.deriv(z, y))
    np.testing.assert_array_equal(curv, Poisson.deriv2(z, y))
    h = 1e-6
    fd = (Poisson.value(z + h, y) - Poisson.value(z - h, y)) / (2 * h)
    np.testing.assert_allclose(Poisson.deriv(z, y), fd, rtol=1e-8, atol=1e-9)
    fd2 = (Poisson.deriv(z + h, y) - Poisson.deriv(z - h, y)) / (2 * h)
    np.testing.assert_allclose(Poisson.deriv2(z, y), fd2, rtol=1e-7)
    for zj, yj in zip(z, y):                           # per-sample SGD takes floats
        assert isinstance(Poisson.deriv(float(zj), float(yj)), float)
        assert Poisson.deriv(float(zj), float(yj)) == pytest.approx(np.exp(zj) - yj, rel=1e-15)


def test_overflow_far_from_the_optimum_is_inf_never_nan_and_silent():
    z = np.array([800.0, 1e6, -1e6])
    y = np.array([3.0, 0.0, 2.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")                 # no RuntimeWarning either
        value, deriv, curv = Poisson.parts(z, y)
        assert Poisson.deriv2(800.0, 1.0) == np.inf
    assert np.isposinf(value[:2]).all() and value[2] == 2e6   # exp(-1e6) + 2e6
    assert not np.isnan(value).any() and not np.isnan(deriv).any()
    assert np.isposinf(curv[:2]).all() and curv[2] == 0.0


@pytest.mark.parametrize("weighted", [False, True])
def test_shard_value_gradient_and_hessian_against_differences_and_the_closed_form(weighted):
    rng = np.random.default_rng(3)
    n, d, lam = 70, 6, 0.05
    X = sp.random(n, d, density=0.6, random_state=3, format="csr")
    y = rng.poisson(2.0, n).astype(float)
    s = rng.uniform(0.2, 2.0, n) if weighted else np.ones(n)
    shard = Shard(X, y, "poisson", lam, weights=s if weighted else None)
    w, v, h = 0.4 * rng.standard_normal(d), rng.standard_normal(d), 1e-6
    z = X @ w
    assert shard.local_value(w) == pytest.approx(
        np.sum(s * (np.exp(z) - y * z)) / n + 0.5 * lam * w @ w, rel=1e-14)
    g = shard.local_grad(w)
    fd = np.array([(shard.local_value(w + h * e) - shard.local_value(w - h * e)) / (2 * h)
                   for e in np.eye(d)])
    np.testing.assert_allclose(g, fd, rtol=0, atol=1e-8)
    H = (X.T @ X.multiply((s * np.exp(z))[:, None])).toarray() / n + lam * np.eye(d)
    np.testing.assert_allclose(shard.local_hessian(w), H, rtol=1e-12)
    fd_hv = (shard.local_grad(w + h * v) - shard.local_grad(w - h * v)) / (2 * h)
    np.testing.assert_allclose(shard.local_hvp_operator(w)(v), fd_hv, rtol=0, atol=1e-7)


def test_armijo_counts_an_inf_or_nan_trial_loss_as_a_failed_trial():
    """The line search's test f(w - a p) <= f - beta a slope is false for inf and NaN:
    the first two trials fail, the third (a = 1/4) is taken."""
    from types import SimpleNamespace
    from distnewton.algorithms.primitives import armijo
    w, p = np.array([1.0, -1.0]), np.array([1.0, 0.0])
    sums = {1.0: np.inf, 0.5: np.nan}                     # data sums per trial step
    ls = SimpleNamespace(alpha_max=1.0, beta=1e-4, max_backtracks=10)
    alpha, f_new = armijo(lambda steps: [sums.get(a, 0.0) for a in steps], 1, 0.0, w, p,
                          f=1.0, slope=1.0, ls=ls, per_pass=2)
    assert alpha == 0.25 and f_new == 0.0


# -- the optimum against scikit-learn ----------------------------------------------


def test_sklearns_objective_is_ours_up_to_a_constant():
    """PoissonRegressor minimises (1/(2n)) sum dev(y, mu) + (alpha/2)||coef||^2 with the
    unit deviance 2 (y log(y/mu) - y + mu): at two points its difference from ours (lam =
    alpha, the intercept unpenalised) is the same constant, so the minimisers agree."""
    from sklearn.metrics import mean_poisson_deviance
    X, y = count_problem(n=200, d=4)
    Xi = np.hstack([X, np.ones((len(y), 1))])
    lam, rng = 0.01, np.random.default_rng(0)
    gaps = []
    for w in (0.3 * rng.standard_normal(5), rng.standard_normal(5)):
        theirs = 0.5 * mean_poisson_deviance(y, np.exp(Xi @ w)) + 0.5 * lam * w[:-1] @ w[:-1]
        gaps.append(theirs - poisson_objective(Xi, y, w, lam, free_intercept=True))
    assert gaps[0] == pytest.approx(gaps[1], abs=1e-12)


@pytest.fixture(scope="module")
def problem():
    """(X, y, lam, w_ref, f_ref): synthetic counts, lambda = 1/n, scikit-learn's optimum."""
    X, y = count_problem()
    lam = 1.0 / len(y)
    w_ref = sklearn_optimum(X, y, lam)
    Xi = np.hstack([X, np.ones((len(y), 1))])
    return X, y, lam, w_ref, poisson_objective(Xi, y, w_ref, lam, free_intercept=True)


def solve_poisson(X, y, lam, name, rounds=600, workers=3, **params):
    return distnewton.solve({"model": {"loss": "poisson", "lambda": lam, "fit_intercept": True,
                                       "regularize_intercept": False},
                             "algorithm": {"name": name, **params},
                             "run": {"max_rounds": rounds, "grad_rtol": 1e-11}},
                            data=(sp.csr_matrix(X), y), workers=workers, warn=False)


@pytest.mark.parametrize("name", ["newton", "lbfgs", "giant"])
def test_newton_lbfgs_giant_reach_sklearns_poisson_regressor(problem, name):
    X, y, lam, w_ref, f_ref = problem
    res = solve_poisson(X, y, lam, name)
    assert res.status in ("converged", "stalled"), res.status   # lbfgs: machine precision
    Xi = np.hstack([X, np.ones((len(y), 1))])
    f = poisson_objective(Xi, y, res.w, lam, free_intercept=True)
    assert abs(f - f_ref) <= 1e-8 * abs(f_ref)
    np.testing.assert_allclose(res.w, w_ref, rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", ["gd", "owlqn", "newton-tron",
                                  "fednl", "fednl-ls_ahead"])
def test_the_other_line_search_methods_reach_it_too(problem, name):
    X, y, lam, _, f_ref = problem
    params = {"newton-tron": {"solver": "tron"},
              "fednl-ls_ahead": {"ls_ahead": False}}.get(name, {})
    res = solve_poisson(X, y, lam, name.split("-")[0], rounds=3000, **params)
    Xi = np.hstack([X, np.ones((len(y), 1))])
    assert abs(poisson_objective(Xi, y, res.w, lam, True) - f_ref) <= 1e-8 * abs(f_ref)


@pytest.mark.parametrize("name", ["newton", "newton-tron", "lbfgs", "giant", "fednl"])
def test_a_first_newton_step_that_overflows_exp_is_a_failed_trial(name):
    """Counts near exp(7): from w = 0 the full Newton step puts a margin past 709 (exp
    overflows, f = inf there); the line search (TRON: the ratio test) rejects that trial
    and the run still reaches scikit-learn's optimum, with no RuntimeWarning."""
    X, y = count_problem(n=300, d=5, offset=7.0, scale=0.3, seed=1)
    lam = 1.0 / len(y)
    Xi = np.hstack([X, np.ones((len(y), 1))])
    g0 = Xi.T @ (1.0 - y) / len(y)                      # grad and Hessian of f at w = 0
    H0 = Xi.T @ Xi / len(y) + lam * np.diag([1.0] * 5 + [0.0])
    assert np.max(Xi @ -np.linalg.solve(H0, g0)) > 710   # exp overflows at the unit step
    w_ref = sklearn_optimum(X, y, lam)
    f_ref = poisson_objective(Xi, y, w_ref, lam, True)
    params = {"solver": "tron"} if name == "newton-tron" else {}
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        res = solve_poisson(X, y, lam, name.split("-")[0], rounds=400, workers=2, **params)
    assert abs(poisson_objective(Xi, y, res.w, lam, True) - f_ref) <= 1e-8 * abs(f_ref)


# -- which methods take it -----------------------------------------------------------


def test_the_line_search_methods_take_it_and_the_others_refuse_it_saying_why():
    from distnewton.algorithms.registry import BUILTINS
    assert sorted(TAKES + REFUSES) == sorted(c.name for c in BUILTINS)
    for name in TAKES:
        check_loss(ALGORITHMS[name], "poisson")
    for name in REFUSES:
        with pytest.raises(UserError, match=rf"^model\.loss: {name} does not support loss "
                                            r"'poisson' \(it takes logistic, ridge[^)]*\): "
                                            r"poisson's curvature exp\(x\.w\) is unbounded"):
            check_loss(ALGORITHMS[name], "poisson")


def test_gd_with_a_fixed_step_refuses_poisson_naming_the_key(problem):
    X, y, lam, _, _ = problem
    with pytest.raises(UserError, match=r"^algorithm\.step_size: a fixed step has no line "
                                        r"search.*poisson"):
        solve_poisson(X, y, lam, "gd", step_size=0.1)


@pytest.mark.parametrize("params", [{"line_search": False}])   # preset, participation:
def test_fednl_without_its_line_search_refuses_poisson(problem, params):  # test_poisson_review
    X, y, lam, _, _ = problem
    with pytest.raises(UserError, match=r"^algorithm\.line_search: loss poisson needs "
                                        r"FedNL-LS"):
        solve_poisson(X, y, lam, "fednl", **params)


def test_negative_labels_are_refused_naming_the_source_and_row():
    y = np.array([0.0, 3.0, 1.5, -1.0, 2.0, -4.0])
    with pytest.raises(UserError, match=r"^train\.csv: data row 4: label -1 is negative: "
                                        r"loss poisson needs counts or rates >= 0$"):
        map_labels(y, "poisson", source="train.csv")
    out, mapping = map_labels(y[:3], "poisson", source="x")
    np.testing.assert_array_equal(out, y[:3])            # rates kept as they are
    assert mapping == {"loss": "poisson", "rule": "identity"}


def test_hinge_and_other_losses_are_refused_in_one_line_listing_the_choices():
    p = SCHEMA["model"]["loss"]
    with pytest.raises(UserError) as e:
        check_value("model.loss", p, "hinge")
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith("model.loss: must be one of logistic, ridge, squared_hinge, poisson, "
                          "got 'hinge': the hinge loss (L1-loss SVM, LIBLINEAR -s 3) is not "
                          "differentiable")
    assert "use squared_hinge, the L2-loss SVM (LIBLINEAR -s 2)" in msg
    with pytest.raises(UserError, match=r"^model\.loss: must be one of logistic, ridge, "
                                        r"squared_hinge, poisson, got 'tweedie'$"):
        check_value("model.loss", p, "tweedie")
    assert check_value("model.loss", p, "poisson") == "poisson"


def test_synthetic_counts_follow_the_poisson_model():
    X, y, w = make_synthetic(3000, 8, density=0.5, seed=2, loss="poisson")
    assert np.all(y >= 0) and np.all(y == np.round(y))
    mu = np.exp(X @ w)
    assert abs(np.mean(y) - np.mean(mu)) < 4 * np.sqrt(np.mean(mu) / len(y))
