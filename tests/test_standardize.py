"""``model.standardize: true`` (Spark's standardization=true) against scikit-learn
on explicitly scaled features: fit on X / sigma, divide the coefficients by sigma.

The penalty vector lambda sigma^2 never touches the rows, so the reference is an
independent computation of the same optimum: sklearn sees the standardised data
(constant columns dropped, as Spark drops them) and its coefficients are mapped
back.  The objectives are compared to 1e-8 relative, evaluated here with numpy.
"""

import h5py
import numpy as np
import pytest

from distnewton import solve
from distnewton.errors import UserError
from support import launch
from support.launch import SHARED

LAM = 0.05
SCALES = np.array([1e-3, 1.0, 1e3, 10.0, 0.1, 1.0])     # column 5: constant (2.5)


def scaled_problem(n=240, seed=0, loss="logistic"):
    """Columns of very different scales, non-zero means, and a constant column."""
    rng = np.random.default_rng(seed)
    X = (rng.normal(size=(n, len(SCALES))) + 0.5) * SCALES
    X[:, 5] = 2.5
    w = np.array([300.0, 1.0, 1e-3, 0.05, -4.0, 0.0])
    z = X @ w + 0.3 * rng.normal(size=n)
    return X, (z if loss == "ridge" else np.where(z > np.median(z), 1.0, -1.0))


def spark_sigma(X, s=None):
    """Spark's Summarizer std: sample (n - 1), or reliability-weighted (numpy's
    aweights: normalised by S - S2/S)."""
    if s is None:
        return X.std(axis=0, ddof=1)
    return np.sqrt(np.array([np.cov(X[:, j], aweights=s) for j in range(X.shape[1])]))


def standardized(X):
    """X / sigma with the constant columns dropped, and the map back to w."""
    sigma = spark_sigma(X)
    keep = sigma > 0
    Xs = X[:, keep] / sigma[keep]

    def back(v):
        w = np.zeros(X.shape[1])
        w[keep] = np.ravel(v) / sigma[keep]
        return w
    return Xs, back, sigma


def objective(X, y, w, b, loss, lam=LAM, l1=0.0):
    """The standardised objective in the original space, evaluated with numpy."""
    z = X @ w + b
    if loss == "logistic":
        data = np.logaddexp(0.0, -y * z).mean()
    elif loss == "ridge":
        data = 0.5 * ((z - y) ** 2).mean()
    else:
        data = (np.maximum(0.0, 1.0 - y * z) ** 2).mean()
    sigma = spark_sigma(X)
    return data + 0.5 * lam * np.sum((sigma * w) ** 2) + l1 * np.sum(sigma * np.abs(w))


def ours(X, y, loss, algorithm="newton", intercept=True, workers=3, **model):
    mc = {"loss": loss, "lambda": LAM, "standardize": True, "fit_intercept": intercept,
          "regularize_intercept": not intercept, **model}
    res = solve({"model": mc, "algorithm": {"name": algorithm},
                 "run": {"grad_rtol": 1e-12, "max_rounds": 2000}}, data=(X, y),
                backend="sim", workers=workers)
    w = np.asarray(res.w, dtype=float)
    return (w[:-1], w[-1]) if intercept else (w, 0.0)


def assert_same_optimum(X, y, loss, mine, ref, l1=0.0):
    f_mine = objective(X, y, *mine, loss, l1=l1)
    f_ref = objective(X, y, *ref, loss, l1=l1)
    assert abs(f_mine - f_ref) <= 1e-8 * abs(f_ref), (f_mine, f_ref)
    assert mine[0][5] == 0.0                   # the constant column: dropped, as Spark does


def test_logistic_equals_sklearn_on_the_scaled_features():
    from sklearn.linear_model import LogisticRegression
    X, y = scaled_problem()
    Xs, back, _ = standardized(X)
    m = LogisticRegression(C=1 / (LAM * len(y)), tol=1e-12, max_iter=10000,
                           solver="newton-cholesky").fit(Xs, y)
    mine = ours(X, y, "logistic")
    assert_same_optimum(X, y, "logistic", mine, (back(m.coef_), float(m.intercept_[0])))
    np.testing.assert_allclose(mine[0] * spark_sigma(X), back(m.coef_) * spark_sigma(X),
                               atol=1e-6)


def test_a_regularised_intercept_keeps_the_weight_lambda():
    """LIBLINEAR's convention (regularize_intercept: true): sklearn on [X / sigma, 1]
    without its own intercept; the intercept column is never scaled."""
    from sklearn.linear_model import LogisticRegression
    X, y = scaled_problem(seed=9)
    Xs, back, _ = standardized(X)
    m = LogisticRegression(C=1 / (LAM * len(y)), tol=1e-12, fit_intercept=False,
                           solver="newton-cholesky").fit(np.c_[Xs, np.ones(len(y))], y)
    w = np.asarray(solve({"model": {"lambda": LAM, "standardize": True, "fit_intercept": True},
                          "algorithm": {"name": "newton"}, "run": {"grad_rtol": 1e-12}},
                         data=(X, y), backend="sim", workers=2).w)
    b_ref = float(m.coef_[0, -1])
    f = [objective(X, y, a, b, "logistic") + 0.5 * LAM * b ** 2
         for a, b in ((w[:-1], w[-1]), (back(m.coef_[0, :-1]), b_ref))]
    assert abs(f[0] - f[1]) <= 1e-8 * f[1], f
    assert w[-1] == pytest.approx(b_ref, rel=1e-6)


def test_ridge_equals_sklearn_on_the_scaled_features():
    from sklearn.linear_model import Ridge
    X, y = scaled_problem(loss="ridge", seed=1)
    Xs, back, _ = standardized(X)
    m = Ridge(alpha=LAM * len(y), solver="cholesky").fit(Xs, y)
    mine = ours(X, y, "ridge")
    assert_same_optimum(X, y, "ridge", mine, (back(m.coef_), float(m.intercept_)))


def test_squared_hinge_equals_sklearn_linearsvc_on_the_scaled_features():
    from sklearn.svm import LinearSVC
    X, y = scaled_problem(seed=2)
    Xs, back, _ = standardized(X)
    m = LinearSVC(C=1 / (LAM * len(y)), loss="squared_hinge", dual=False, tol=1e-14,
                  max_iter=100000, fit_intercept=False).fit(Xs, y)
    mine = ours(X, y, "squared_hinge", intercept=False)
    assert_same_optimum(X, y, "squared_hinge", mine, (back(m.coef_), 0.0))


def test_elastic_net_with_owlqn_equals_sklearn_saga_on_the_scaled_features():
    from sklearn.linear_model import LogisticRegression
    X, y = scaled_problem(seed=3)
    Xs, back, _ = standardized(X)
    ratio = 0.5
    m = LogisticRegression(l1_ratio=ratio, C=1 / (LAM * len(y)), solver="saga",
                           tol=1e-13, max_iter=200000, fit_intercept=False).fit(Xs, y)
    mine = ours(X, y, "logistic", algorithm="owlqn", intercept=False, l1_ratio=ratio)
    # the L2 part is (1 - ratio) lambda, the L1 part ratio lambda (Spark's elasticNetParam)
    f = [objective(X, y, w, b, "logistic", lam=(1 - ratio) * LAM, l1=ratio * LAM)
         for w, b in (mine, (back(m.coef_), 0.0))]
    assert abs(f[0] - f[1]) <= 1e-8 * abs(f[1]), f
    assert mine[0][5] == 0.0


def test_weighted_rows_give_the_reliability_weighted_std(tmp_path):
    """Spark's weighted std (numpy's aweights), recorded in /model/sigma."""
    X, y = scaled_problem(seed=4)
    s = np.random.default_rng(4).uniform(0.2, 3.0, size=len(y))
    res = solve({"model": {"lambda": LAM, "standardize": True}, "algorithm": {"name": "newton"},
                 "run": {"grad_rtol": 1e-10}}, data=(X, y, s), backend="sim", workers=3,
                output=str(tmp_path / "w.h5"))
    with h5py.File(res.path, "r") as f:
        sigma = f["model/sigma"][()]
    np.testing.assert_allclose(sigma[:5], spark_sigma(X, s)[:5], rtol=1e-12)
    assert sigma[5] == 0.0


@pytest.fixture
def written(tmp_path, monkeypatch):
    """A standardized run with a result file (sim, 3 workers)."""
    monkeypatch.chdir(tmp_path)
    X, y = scaled_problem(seed=5)
    res = solve({"model": {"lambda": LAM, "standardize": True, "fit_intercept": True},
                 "algorithm": {"name": "lbfgs"}, "run": {"grad_rtol": 1e-10, "max_rounds": 500}},
                data=(X, y), backend="sim", workers=3, output=str(tmp_path / "r.h5"))
    return res, X


def test_the_result_records_sigma_and_the_setup_rounds_cost(written):
    res, X = written
    with h5py.File(res.path, "r") as f:
        attrs, sigma = dict(f.attrs), f["model/sigma"][()]
    d = X.shape[1] + 1                                   # the intercept column
    np.testing.assert_allclose(sigma[:5], spark_sigma(X)[:5], rtol=1e-12)
    assert sigma[5] == sigma[6] == 0.0                   # constant column, intercept
    K = 3                # gather of 2d+2 floats; broadcast of 2 d-vectors, 1 float back
    expect = K * (64 + 8 * (2 * d + 2)) + K * (64 + 8 * 2 * d + 8)
    assert attrs["standardize"] and attrs["standardize_bytes"] == expect
    assert attrs["setup_bytes"] == 0                      # sim: no shard distribution
    # the logged f is the standardized objective; a regularised intercept keeps lambda
    w = np.asarray(res.w)
    y = scaled_problem(seed=5)[1]
    assert res.history["loss"][-1] == pytest.approx(
        objective(X, y, w[:-1], w[-1], "logistic") + 0.5 * LAM * w[-1] ** 2, rel=1e-12)


def test_report_shows_the_standardized_run(written):
    from distnewton.report import collect, render
    res, _ = written
    _, rows = collect([res.path], f_star=None, compute=False)
    table = render(rows)
    assert "standardize_setup" in table.splitlines()[0]
    assert rows[0]["standardize_bytes"] > 0


def mild_problem(n=400, seed=3):
    """Scales within 16x (for the first-order methods) and a constant column."""
    rng = np.random.default_rng(seed)
    X = (rng.normal(size=(n, 5)) + 0.3) * np.array([1.0, 4.0, 0.25, 2.0, 0.5])
    X = np.c_[X, np.full(n, 1.5)]
    z = X @ np.array([1.0, 0.3, 2.0, -0.5, 1.0, 0.0]) + rng.normal(size=n)
    return X, np.where(z > 0, 1.0, -1.0)


@pytest.mark.parametrize("algorithm", [
    {"name": "giant"}, {"name": "lbfgs"}, {"name": "gd"}, {"name": "dane"},
    {"name": "adaptive_localnewton"}, {"name": "owlqn"}, {"name": "fednl", "mu": 1e-3},
    {"name": "newton", "solver": "cg"}], ids=lambda a: a["name"] + a.get("solver", ""))
def test_every_method_reaches_sklearns_standardized_optimum(algorithm):
    """The penalty vector reaches the workers' local objectives and the master's line
    searches alike: each method lands on the same optimum as sklearn on X / sigma."""
    from sklearn.linear_model import LogisticRegression
    X, y = mild_problem()
    Xs, back, _ = standardized(X)
    m = LogisticRegression(C=1 / (LAM * len(y)), tol=1e-12, solver="newton-cholesky").fit(Xs, y)
    res = solve({"model": {"lambda": LAM, "standardize": True, "fit_intercept": True,
                           "regularize_intercept": False},
                 "algorithm": algorithm, "run": {"grad_rtol": 1e-10, "max_rounds": 3000}},
                data=(X, y), backend="sim", workers=3)
    w = np.asarray(res.w)
    assert_same_optimum(X, y, "logistic", (w[:-1], w[-1]),
                        (back(m.coef_), float(m.intercept_[0])))


def test_one_vs_rest_classes_share_the_standardized_penalty():
    from sklearn.linear_model import LogisticRegression
    X, _ = mild_problem(seed=8)
    y = np.digitize(X[:, 0] + X[:, 2], [-0.5, 0.8]).astype(float)       # 3 classes
    Xs, back, _ = standardized(X)
    res = solve({"model": {"lambda": LAM, "standardize": True, "multiclass": "ovr"},
                 "algorithm": {"name": "newton"}, "run": {"grad_rtol": 1e-12}},
                data=(X, y), backend="sim", workers=2)
    W = np.asarray(res.w)
    for c in range(3):
        yc = np.where(y == c, 1.0, -1.0)
        m = LogisticRegression(C=1 / (LAM * len(y)), fit_intercept=False, tol=1e-12,
                               solver="newton-cholesky").fit(Xs, yc)
        assert_same_optimum(X, yc, "logistic", (W[c], 0.0), (back(m.coef_), 0.0))


@pytest.mark.parametrize("algorithm", ["fednl", "ranl", "disco"])
def test_methods_using_lambda_as_a_number_refuse_it_naming_the_key(algorithm):
    from distnewton.config import resolve
    with pytest.raises(UserError) as e:
        resolve({"data": {"train": "x.svm"}, "model": {"standardize": True},
                 "algorithm": {"name": algorithm}})
    assert str(e.value).startswith("model.standardize: ") and "\n" not in str(e.value)


def test_without_standardize_nothing_changes():
    """The default: the plain penalty lambda (a number), no setup round."""
    X, y = scaled_problem(seed=6)
    from sklearn.linear_model import LogisticRegression
    res = solve({"model": {"lambda": LAM}, "algorithm": {"name": "newton"},
                 "run": {"grad_rtol": 1e-12}}, data=(X[:, :5], y), backend="sim", workers=2)
    ref = LogisticRegression(C=1 / (LAM * len(y)), fit_intercept=False, tol=1e-12,
                             solver="newton-cholesky").fit(X[:, :5], y).coef_.ravel()
    np.testing.assert_allclose(res.w, ref, rtol=1e-6, atol=1e-9)
    assert not res.attrs["standardize"] and res.attrs["standardize_bytes"] == 0


@pytest.mark.slow
@pytest.mark.mpi
def test_under_mpiexec_equals_sim_and_counts_the_setup_round(tmp_path):
    from sklearn.datasets import dump_svmlight_file
    X, y = scaled_problem(n=300, seed=7)
    dump_svmlight_file(X, y, str(tmp_path / "train.svm"), zero_based=False)
    cfg = launch.write_config(tmp_path / "c.yaml", data={"train": str(tmp_path / "train.svm")},
                              model={"lambda": LAM, "standardize": True,
                                     "fit_intercept": True, "regularize_intercept": False},
                              algorithm={"name": "newton"},
                              run={"grad_rtol": 1e-10, "max_rounds": 200})
    # every rank reads its part (parallel ingestion), rank 0 scatters the shards, sim
    for out, n, env in (("par", 3, {}), ("scatter", 3, {"DISTNEWTON_PARALLEL_INGEST": "0"}),
                        ("sim", None, {})):
        res = launch.cli("run", cfg, "-q", "--backend", "sim" if n is None else "mpi",
                         "--workers", "2", "-o", f"{out}.h5", n=n, cwd=tmp_path,
                         extra_env=env)
        assert res.returncode == 0, res.stderr
    d, K = X.shape[1] + 1, 2
    expect = K * (64 + 8 * (2 * d + 2)) + K * (64 + 8 * 2 * d + 8)
    _, _, ws = launch.read_result(tmp_path / "sim.h5")
    for out in ("par", "scatter", "sim"):
        am, _, wm = launch.read_result(tmp_path / f"{out}.h5")
        assert am["standardize"] and am["standardize_bytes"] == expect, out
        assert (am["setup_bytes"] > 0) == (out != "sim")  # the shards, counted apart
        np.testing.assert_allclose(wm, ws, rtol=0, atol=1e-10 * np.abs(ws).max())
        with h5py.File(tmp_path / f"{out}.h5", "r") as f:
            np.testing.assert_allclose(f["model/sigma"][:5], spark_sigma(X)[:5], rtol=1e-12)
        assert wm[5] == 0.0


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED / "a9a.bz2").exists(), reason="needs ../shared/data")
def test_a9a_equals_sklearn_on_the_scaled_features():
    from sklearn.datasets import load_svmlight_file
    from sklearn.linear_model import LogisticRegression
    X, y = load_svmlight_file(str(SHARED / "a9a.bz2"), n_features=123)
    X = X.toarray()
    n = len(y)
    res = solve({"data": {"train": str(SHARED / "a9a.bz2"), "n_features": 123},
                 "model": {"lambda": 1 / n, "standardize": True, "fit_intercept": True,
                           "regularize_intercept": False},
                 "algorithm": {"name": "newton"}, "run": {"grad_rtol": 1e-10}},
                backend="sim", workers=4)
    Xs, back, sigma = standardized(X)
    m = LogisticRegression(C=1.0, tol=1e-12, max_iter=1000,
                           solver="newton-cholesky").fit(Xs, y)
    w = np.asarray(res.w)
    lam_obj = [objective(X, y, a, b, "logistic", lam=1 / n)
               for a, b in ((w[:-1], w[-1]), (back(m.coef_), float(m.intercept_[0])))]
    assert abs(lam_obj[0] - lam_obj[1]) <= 1e-8 * lam_obj[1], lam_obj
    assert np.all(w[:-1][sigma == 0] == 0.0)              # a9a's unused columns


def test_the_estimators_standardize_parameter_is_sparks_standardization():
    """DistNewtonClassifier(standardize=True) against scikit-learn's LogisticRegression
    on the explicitly standardised features (C = 1/(n lam), its intercept free, as the
    estimator's ``regularize_intercept=False``); the default stays unstandardised."""
    from sklearn.linear_model import LogisticRegression
    from distnewton.sklearn import DistNewtonClassifier
    X, y = scaled_problem()
    Xs, back, _ = standardized(X)
    ref = LogisticRegression(C=1.0 / (LAM * len(y)), tol=1e-12, max_iter=10000).fit(Xs, y)
    est = DistNewtonClassifier(lam=LAM, regularize_intercept=False, standardize=True,
                               workers=3, tol=1e-12, max_rounds=500).fit(X, y)
    assert est.get_params()["standardize"] is True
    assert_same_optimum(X, y, "logistic", (est.coef_.ravel(), float(est.intercept_[0])),
                        (back(ref.coef_), float(ref.intercept_[0])))
    plain = DistNewtonClassifier(lam=LAM, regularize_intercept=False, workers=3,
                                 tol=1e-12, max_rounds=500).fit(X, y)
    assert not np.allclose(plain.coef_, est.coef_, rtol=1e-3)      # the parameter acts
