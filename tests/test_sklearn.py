"""The scikit-learn estimators: scikit-learn's own ``check_estimator`` (every check,
listing the ones that cannot apply), their optimum against scikit-learn's
LogisticRegression / the closed-form ridge solution, one-vs-rest on three classes,
predict_proba's shape, and GridSearchCV."""

import warnings

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.utils.estimator_checks import check_estimator

from distnewton.sklearn import DistNewtonClassifier, DistNewtonRegressor

#: checks that cannot apply, with the reason
NOT_APPLICABLE = {
    "check_array_api_input": "skipped by scikit-learn unless SCIPY_ARRAY_API is set; "
                             "distnewton computes on numpy/scipy arrays",
}

pytestmark = pytest.mark.slow          # ~110 scikit-learn checks, each a few runs


@pytest.mark.parametrize("est", [DistNewtonClassifier(), DistNewtonRegressor()],
                         ids=["classifier", "regressor"])
def test_passes_sklearns_check_estimator(est):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(est, on_fail=None)
    bad = [(r["check_name"], r["status"], str(r["exception"])[:200]) for r in results
           if r["status"] != "passed" and r["check_name"] not in NOT_APPLICABLE]
    assert not bad
    assert len(results) > 40


def blobs(n=600, d=6, classes=2, seed=0):
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((classes, d))
    X = rng.standard_normal((n, d))
    y = np.argmax(X @ W.T + 0.5 * rng.standard_normal((n, classes)), axis=1)
    return X, np.array(["red", "green", "blue"])[y] if classes <= 3 else y


@pytest.mark.parametrize("algorithm", ["newton", "giant", "fednl"])
def test_binary_optimum_equals_sklearn(algorithm):
    """lam = 1/n, no intercept: scikit-learn's C = 1 minimiser (newton-cholesky, tol 1e-12)."""
    X, y = blobs()
    est = DistNewtonClassifier(algorithm=algorithm, fit_intercept=False, tol=1e-14,
                               max_rounds=300).fit(X, y)
    ref = LogisticRegression(C=1.0, fit_intercept=False, solver="newton-cholesky",
                             tol=1e-12).fit(X, y)
    assert list(est.classes_) == list(ref.classes_)
    np.testing.assert_allclose(est.coef_, ref.coef_, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(est.predict_proba(X), ref.predict_proba(X), atol=1e-8)
    assert (est.predict(X) == ref.predict(X)).all()
    assert est.decision_function(X).shape == (600,) and est.n_iter_.shape == (1,)


def test_one_vs_rest_on_three_classes_equals_sklearns_per_class_problems():
    X, y = blobs(classes=3)
    est = DistNewtonClassifier(fit_intercept=False, tol=1e-14).fit(X, y)
    assert est.coef_.shape == (3, 6) and est.predict_proba(X).shape == (600, 3)
    for k, c in enumerate(est.classes_):
        ref = LogisticRegression(C=1.0, fit_intercept=False, solver="newton-cholesky",
                                 tol=1e-12).fit(X, y == c)
        np.testing.assert_allclose(est.coef_[k], ref.coef_.ravel(), rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(est.predict_proba(X).sum(axis=1), 1.0, rtol=1e-12)
    assert set(est.predict(X)) <= set(est.classes_) and est.score(X, y) > 0.8


def test_regressor_equals_the_closed_form_ridge_solution():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((300, 5))
    y = X @ rng.standard_normal(5) + 0.1 * rng.standard_normal(300) + 2.0
    est = DistNewtonRegressor(lam=1e-3, tol=1e-14).fit(X, y)
    A = np.column_stack((X, np.ones(300)))            # the intercept is regularised too
    w = np.linalg.solve(A.T @ A / 300 + 1e-3 * np.eye(6), A.T @ y / 300)
    np.testing.assert_allclose(np.append(est.coef_, est.intercept_), w, rtol=1e-10)
    np.testing.assert_allclose(est.predict(X), A @ w, rtol=1e-10)


def test_works_in_grid_search():
    X, y = blobs(n=300)
    grid = GridSearchCV(DistNewtonClassifier(), {"lam": [1e-4, 1e-1], "algorithm":
                                                 ["newton", "giant"]}, cv=3).fit(X, y)
    assert len(grid.cv_results_["mean_test_score"]) == 4
    assert grid.best_params_["lam"] == 1e-4 and grid.best_score_ > 0.8


def test_an_unregularised_intercept_equals_sklearns_fit_intercept():
    X, y = blobs()
    X = X + 1.5                                        # an intercept that matters
    est = DistNewtonClassifier(regularize_intercept=False, tol=1e-14).fit(X, y)
    ref = LogisticRegression(C=1.0, solver="newton-cholesky", tol=1e-12).fit(X, y)
    np.testing.assert_allclose(est.coef_, ref.coef_, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(est.intercept_, ref.intercept_, rtol=1e-7, atol=1e-9)


def test_sample_weights_equal_sklearns_weighted_optimum():
    X, y = blobs()
    sw = np.random.default_rng(2).uniform(0.1, 3.0, len(y))
    est = DistNewtonClassifier(fit_intercept=False, tol=1e-14).fit(X, y, sample_weight=sw)
    ref = LogisticRegression(C=1.0, fit_intercept=False, solver="newton-cholesky",
                             tol=1e-12).fit(X, y, sample_weight=sw)
    np.testing.assert_allclose(est.coef_, ref.coef_, rtol=1e-7, atol=1e-9)
