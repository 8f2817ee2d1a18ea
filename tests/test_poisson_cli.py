"""``model.loss: poisson`` through the command line and the estimator: negative labels
and refused losses/methods as corpus cases (exit 2, one line naming the file and row or
the key, no partial file; sim, and mpiexec with both the parallel and the rank-0
ingestion); ``predict`` (the mean exp(x.w)), ``evaluate`` (scikit-learn's
mean_poisson_deviance and d2_tweedie_score), ``export`` (liblinear refused, json kept);
one ``mpiexec -n 3`` run to scikit-learn's PoissonRegressor optimum; a real set's
features (ijcnn1) with seeded Poisson counts; ``DistNewtonPoissonRegressor`` against
``PoissonRegressor`` and scikit-learn's ``check_estimator``."""

import json
import warnings

import numpy as np
import pytest

from distnewton.data import write_libsvm
from distnewton.estimators_glm import DistNewtonPoissonRegressor

from support.corpus import CONFIG, Case, check, params
from support.launch import SHARED, cli, read_result, write_config
from support.poisson import count_problem, counts, poisson_objective, sklearn_optimum

#: counts, 4 features, 8 rows; row 3 is negative
NEGATIVE = ("2 1:0.5 2:1\n0 2:0.3 3:1\n-2 1:1 4:0.2\n1 2:1 3:0.5\n"
            "3 1:0.7 3:0.1\n0 2:0.9 4:1\n1.5 1:0.2 2:0.4\n4 3:0.8 4:0.3\n")
POISSON = {"model": {"loss": "poisson"}}
MPI_RUN = ["run", "{tmp}/c.yaml", "--backend", "mpi", "-o", "{tmp}/out.h5", "-q"]
ROW3 = "{tmp}/data.svm: data row 3: label -2 is negative: loss poisson needs counts or rates >= 0"

CASES = [
    Case("negative count", data=NEGATIVE, config=POISSON, message=ROW3),
    Case("negative count, mpiexec, parallel ingestion", data=NEGATIVE, config=POISSON,
         message=ROW3, launch="mpi", args=MPI_RUN, lines=None, timeout=120),
    Case("negative count, mpiexec, rank-0 ingestion", data=NEGATIVE, config=POISSON,
         message=ROW3, launch="mpi", args=MPI_RUN, lines=None, timeout=120,
         env={"DISTNEWTON_PARALLEL_INGEST": "0"}),
    Case("hinge", config={"model": {"loss": "hinge"}},
         message="model.loss: must be one of logistic, ridge, squared_hinge, poisson, got "
                 "'hinge': the hinge loss (L1-loss SVM, LIBLINEAR -s 3) is not differentiable, "
                 "so no Newton method applies; use squared_hinge, the L2-loss SVM "
                 "(LIBLINEAR -s 2)"),
    Case("poisson with ist", data=NEGATIVE.replace("-2 ", "2 "),
         config={**POISSON, "algorithm": {"name": "ist"}},
         message="model.loss: ist does not support loss 'poisson'"),
    Case("poisson with a fixed gd step", data=NEGATIVE.replace("-2 ", "2 "),
         config={**POISSON, "algorithm": {"name": "gd", "step_size": 0.1}},
         message="algorithm.step_size: a fixed step has no line search"),
]


SPLIT = ["data", "split", "{tmp}/data.svm", "--parts", "2", "--out", "{tmp}/parts"]
CASES += [
    Case("negative count in a split (data.shards)", data=NEGATIVE, config={
        **POISSON, "data": {"train": None, "shards": "{tmp}/parts"}},
        prepare=lambda tmp: cli(*[a.replace("{tmp}", str(tmp)) for a in SPLIT]),
        message="data.shards: label -2 is negative: loss poisson needs counts or rates >= 0",
        new=("parts", "parts/*")),
]


@pytest.mark.parametrize("case", params(CASES, "poisson"))
def test_poisson_refusals(case, tmp_path):
    assert CONFIG["algorithm"]["name"] == "giant"        # the corpus's default method
    check(case, tmp_path)


# -- a trained model: predict, evaluate, export ------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A sim run with an intercept on synthetic counts, and its test file."""
    tmp = tmp_path_factory.mktemp("pois")
    X, y = count_problem(n=400, d=5)
    Xt, yt = count_problem(n=150, d=5, seed=7)
    write_libsvm(tmp / "train.svm", X, y)
    write_libsvm(tmp / "test.svm", Xt, yt)
    cfg = write_config(tmp / "c.yaml", data={"train": str(tmp / "train.svm"), "n_features": 5},
                       model={"loss": "poisson", "fit_intercept": True},
                       algorithm={"name": "newton"}, run={"grad_rtol": 1e-10},
                       output={"path": str(tmp / "r.h5")})
    res = cli("run", cfg, "--backend", "sim", "--workers", 2, "-q")
    assert res.returncode == 0, res.stderr
    return tmp, X, y, Xt, yt


@pytest.mark.slow
def test_predict_prints_the_mean_and_evaluate_sklearns_deviance(trained):
    from sklearn.metrics import d2_tweedie_score, mean_poisson_deviance
    tmp, X, y, Xt, yt = trained
    attrs, _, w = read_result(tmp / "r.h5")
    assert attrs["loss"] == "poisson"
    mu = np.exp(Xt @ w[:-1] + w[-1])                      # numpy, from the stored weights
    res = cli("predict", tmp / "r.h5", tmp / "test.svm")
    assert res.returncode == 0, res.stderr
    np.testing.assert_allclose([float(v) for v in res.stdout.split()], mu, rtol=1e-14)
    res = cli("predict", tmp / "r.h5", tmp / "test.svm", "--decision")
    np.testing.assert_allclose([float(v) for v in res.stdout.split()], np.log(mu), rtol=1e-12,
                               atol=1e-14)
    res = cli("evaluate", tmp / "r.h5", tmp / "test.svm", "--format", "json")
    assert res.returncode == 0, res.stderr
    got = json.loads(res.stdout)
    assert got["poisson_deviance"] == pytest.approx(mean_poisson_deviance(yt, mu), rel=1e-12)
    assert got["d2"] == pytest.approx(d2_tweedie_score(yt, mu, power=1), rel=1e-12)
    assert got["mse"] == pytest.approx(np.mean((mu - yt) ** 2), rel=1e-12)
    res = cli("predict", tmp / "r.h5", tmp / "test.svm", "--proba")
    assert res.returncode == 2 and "exp(x.w)" in res.stderr


@pytest.mark.slow
def test_export_liblinear_is_refused_and_json_keeps_the_model(trained):
    tmp, *_ = trained
    res = cli("export", tmp / "r.h5", "-o", tmp / "m.txt")
    assert res.returncode == 2
    assert res.stderr.strip() == (f"distnewton: error: --format liblinear: LIBLINEAR has no "
                                  f"Poisson regression (the model in {tmp / 'r.h5'} is "
                                  f"poisson); use --format npz or json")
    assert not (tmp / "m.txt").exists()
    res = cli("export", tmp / "r.h5", "-o", tmp / "m.json", "--format", "json")
    assert res.returncode == 0, res.stderr
    m = json.loads((tmp / "m.json").read_text())
    _, _, w = read_result(tmp / "r.h5")
    assert m["objective"] == "poisson" and m["labels"] == []
    np.testing.assert_array_equal(m["w"], w[:-1])
    assert m["intercept"] == w[-1]


# -- MPI and a real set's features --------------------------------------------------


@pytest.mark.slow
@pytest.mark.mpi
def test_mpiexec_giant_reaches_sklearns_poisson_regressor(tmp_path):
    X, y = count_problem(n=600, d=6, seed=4)
    lam = 1.0 / len(y)
    write_libsvm(tmp_path / "t.svm", X, y)
    cfg = write_config(tmp_path / "c.yaml", data={"train": str(tmp_path / "t.svm"),
                                                  "n_features": 6},
                       model={"loss": "poisson", "fit_intercept": True,
                              "regularize_intercept": False},
                       algorithm={"name": "giant"}, run={"grad_rtol": 1e-11},
                       output={"path": str(tmp_path / "r.h5")})
    res = cli("run", cfg, n=3)
    assert res.returncode == 0, res.stderr
    attrs, hist, w = read_result(tmp_path / "r.h5")
    assert attrs["status"] == "converged" and attrs["loss"] == "poisson"
    Xi = np.hstack([X, np.ones((len(y), 1))])
    w_ref = sklearn_optimum(X, y, lam)
    f_ref = poisson_objective(Xi, y, w_ref, lam, True)
    assert abs(poisson_objective(Xi, y, w, lam, True) - f_ref) <= 1e-8 * abs(f_ref)


@pytest.mark.data(reason="ijcnn1 (its features, with seeded Poisson counts)")
@pytest.mark.slow
@pytest.mark.parametrize("name", ["newton", "lbfgs", "giant"])
def test_ijcnn1_features_with_seeded_counts_reach_sklearn(name):
    """There is no count set in ../shared/data: ijcnn1's 49990 x 22 features with
    counts drawn (seed 0) from Poisson(exp(x.w_true + 0.5)), w_true ~ N(0, 0.5^2 I)."""
    from sklearn.datasets import load_svmlight_file
    import distnewton
    X, _ = load_svmlight_file(str(SHARED / "ijcnn1.bz2"), n_features=22)
    w_true = np.random.default_rng(0).normal(0.0, 0.5, 22)
    y = counts(X, w_true, offset=0.5, seed=0)
    lam = 1.0 / X.shape[0]
    w_ref = sklearn_optimum(X, y, lam)
    res = distnewton.solve({"model": {"loss": "poisson", "lambda": lam, "fit_intercept": True,
                                      "regularize_intercept": False},
                            "algorithm": {"name": name},
                            "run": {"grad_rtol": 1e-10, "max_rounds": 500}},
                           data=(X, y), workers=4, warn=False)
    Xi = np.hstack([X.toarray(), np.ones((X.shape[0], 1))])
    f_ref = poisson_objective(Xi, y, w_ref, lam, True)
    assert abs(poisson_objective(Xi, y, res.w, lam, True) - f_ref) <= 1e-8 * abs(f_ref)


# -- the estimator ----------------------------------------------------------------


def test_estimator_reaches_poisson_regressor_and_scores_d2():
    from sklearn.linear_model import PoissonRegressor
    from sklearn.metrics import d2_tweedie_score
    X, y = count_problem(n=400, d=5, seed=2)
    alpha = 0.01
    ref = PoissonRegressor(alpha=alpha, tol=1e-12, max_iter=10000,
                           solver="newton-cholesky").fit(X, y)
    est = DistNewtonPoissonRegressor(lam=alpha, regularize_intercept=False, workers=2,
                                     tol=1e-12).fit(X, y)
    np.testing.assert_allclose(est.coef_, ref.coef_, rtol=0, atol=1e-7)
    assert est.intercept_ == pytest.approx(ref.intercept_, abs=1e-7)
    np.testing.assert_allclose(est.predict(X), ref.predict(X), rtol=1e-6)
    assert est.score(X, y) == pytest.approx(d2_tweedie_score(y, ref.predict(X), power=1),
                                            rel=1e-6)
    with pytest.raises(ValueError, match="counts or rates >= 0; 1 targets are negative"):
        DistNewtonPoissonRegressor().fit(X, np.where(np.arange(len(y)) == 3, -1.0, y))


@pytest.mark.slow
def test_estimator_passes_sklearns_check_estimator():
    from sklearn.utils.estimator_checks import check_estimator
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(DistNewtonPoissonRegressor(), on_fail=None)
    bad = [(r["check_name"], r["status"], str(r["exception"])[:200]) for r in results
           if r["status"] != "passed" and r["check_name"] != "check_array_api_input"]
    assert not bad
    assert len(results) > 40
