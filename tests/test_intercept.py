"""``model.regularize_intercept: false``: the intercept left out of the L2 penalty
in every objective, gradient, Hessian and line search, checked against
scikit-learn's LogisticRegression(fit_intercept=True) optimum (which does not
penalise the intercept) and against finite differences on a shard."""

import numpy as np
import pytest
import scipy.sparse as sp

import distnewton
from distnewton.data import write_libsvm
from distnewton.objectives import Shard, penalty_weights

from support.launch import write_config
from support.models import invoke, labelled, liblinear_rows

D = 6


@pytest.fixture(scope="module")
def problem(tmp_path_factory):
    """Rows whose labels have a large offset (intercept about 2): a penalised
    intercept is visibly shrunk, so the test tells the two apart."""
    path = tmp_path_factory.mktemp("icpt") / "t.svm"
    X, y = labelled(path, n=500, labels=(-1, 1), shift=2.0)
    from sklearn.linear_model import LogisticRegression
    lam = 1.0 / len(y)
    ref = LogisticRegression(C=1.0 / (lam * len(y)), fit_intercept=True,
                             solver="newton-cholesky", tol=1e-12, max_iter=200).fit(X, y)
    w_ref = np.r_[ref.coef_.ravel(), ref.intercept_]
    Xb = np.hstack([X, np.ones((len(y), 1))])
    f_ref = float(np.mean(np.logaddexp(0, -y * (Xb @ w_ref))) + 0.5 * lam * w_ref[:D] @ w_ref[:D])
    return path, w_ref, f_ref


def solve(path, name, rtol=1e-10, regularize=False, **params):
    return distnewton.solve({"data": {"train": str(path)},
                             "model": {"fit_intercept": True,
                                       "regularize_intercept": regularize},
                             "algorithm": {"name": name, **params},
                             "run": {"max_rounds": 3000, "grad_rtol": rtol}}, workers=3)


# the methods that converge to the optimum; w tolerance from their stopping rule
EXACT = [("newton", {}, 1e-10, 1e-9), ("newton", {"solver": "cg"}, 1e-10, 1e-9),
         ("giant", {}, 1e-10, 1e-9), ("adaptive_localnewton", {}, 1e-10, 1e-9),
         ("ranl", {"regions": 7, "capacities": 1.0, "eval_at": "full", "batch": None},
          1e-10, 1e-8), ("lbfgs", {}, 1e-8, 1e-7),
         ("gd", {}, 1e-8, 1e-6), ("ist", {"sketch": "identity", "gamma": 4.0}, 1e-8, 1e-6)]


@pytest.mark.parametrize("name, params, rtol, wtol", EXACT,
                         ids=[f"{e[0]}-{'-'.join(map(str, e[1].values()))}" for e in EXACT])
def test_optimum_equals_sklearn_with_an_unpenalised_intercept(problem, name, params, rtol,
                                                              wtol):
    path, w_ref, f_ref = problem
    res = solve(path, name, rtol, **params)
    assert res.status == "converged", res.message
    assert (res.loss - f_ref) / f_ref == pytest.approx(0, abs=1e-8)
    assert res.loss >= f_ref * (1 - 1e-14)
    np.testing.assert_allclose(res.w, w_ref, rtol=wtol, atol=wtol)


def test_a_penalised_intercept_is_a_different_model(problem):
    path, w_ref, _ = problem
    res = solve(path, "newton", regularize=True)
    assert abs(res.w[-1] - w_ref[-1]) > 1e-3            # shrunk towards 0
    assert abs(res.w[-1]) < abs(w_ref[-1])


def shard(free, n=40, seed=0):
    rng = np.random.default_rng(seed)
    X = sp.csr_matrix(np.hstack([rng.standard_normal((n, 4)), np.ones((n, 1))]))
    y = np.where(rng.random(n) < 0.6, 1.0, -1.0)
    return Shard(X, y, "logistic", 0.3, free_intercept=free)


def test_shard_objective_gradient_hessian_leave_out_the_intercept():
    s = shard(True)
    assert list(s.penalty) == [0.3, 0.3, 0.3, 0.3, 0.0]
    assert penalty_weights(0.3, 5) == 0.3
    w = np.array([0.5, -1.0, 0.25, 2.0, 1.5])
    data = float(np.mean(np.logaddexp(0, -s.y * (s.X @ w))))
    assert s.local_value(w) == pytest.approx(data + 0.15 * w[:4] @ w[:4], rel=1e-14)
    eps, e = 1e-6, np.eye(5)
    fd = np.array([(s.local_value(w + eps * e[i]) - s.local_value(w - eps * e[i])) / (2 * eps)
                   for i in range(5)])
    np.testing.assert_allclose(s.local_grad(w), fd, rtol=1e-7, atol=1e-9)
    H = s.local_hessian(w)
    fdH = np.column_stack([(s.local_grad(w + eps * e[i]) - s.local_grad(w - eps * e[i]))
                           / (2 * eps) for i in range(5)])
    np.testing.assert_allclose(H, fdH, rtol=1e-6, atol=1e-8)
    v = np.arange(1.0, 6.0)
    np.testing.assert_allclose(s.local_hvp_operator(w)(v), H @ v, rtol=1e-13)
    # with the intercept penalised, only the last diagonal entry differs, by lambda
    Hr = shard(False).local_hessian(w)
    np.testing.assert_allclose(Hr - H, np.diag([0, 0, 0, 0, 0.3]), atol=1e-14)


def test_minibatch_gradients_and_hvps_leave_out_the_intercept():
    """Local SGD, scaled Local SGD, RANL and IST take their gradients here."""
    from distnewton.algorithms.minibatch import mean_grad, rows_of, stochastic_grad
    from distnewton.algorithms.localsgd.scaled import batch_hvp
    s = shard(True)
    w, v = np.array([0.5, -1.0, 0.25, 2.0, 1.5]), np.arange(1.0, 6.0)
    np.testing.assert_allclose(mean_grad(s.loss, s.penalty, w, rows_of(s)), s.local_grad(w),
                               rtol=1e-13)
    row = s.X[3]
    one = Shard(row, s.y[3:4], "logistic", 0.3, free_intercept=True)
    g = stochastic_grad(s.loss, s.penalty, w.copy(), row.indices, row.data, None, s.y[3:4])
    np.testing.assert_allclose(g, one.local_grad(w), rtol=1e-13)
    hv = batch_hvp(s.loss, s.penalty, w, v, row.indices, row.data, None, s.y[3:4])
    np.testing.assert_allclose(hv, one.local_hessian(w) @ v, rtol=1e-13)


def test_regularize_intercept_needs_fit_intercept(tmp_path):
    path = tmp_path / "t.svm"
    write_libsvm(path, np.eye(3), [1, -1, 1])
    write_config(tmp_path / "c.yaml", data={"train": str(path)},
                 model={"regularize_intercept": False}, algorithm={"name": "newton"})
    out = invoke("run", tmp_path / "c.yaml", "--backend", "sim", "-o", tmp_path / "r.h5")
    assert out.exit_code == 2 and not (tmp_path / "r.h5").exists()
    assert out.output.strip().splitlines() == [
        "distnewton: error: model.regularize_intercept: false needs model.fit_intercept: "
        "true (there is no intercept to leave out of the penalty)"]


def test_exports_record_the_convention(problem, tmp_path):
    path, *_ = problem
    res = distnewton.solve({"data": {"train": str(path)},
                            "model": {"fit_intercept": True, "regularize_intercept": False},
                            "algorithm": {"name": "newton"}}, output=tmp_path / "r.h5")
    import json
    out = invoke("export", tmp_path / "r.h5", "-o", tmp_path / "m.json", "--format", "json")
    assert out.exit_code == 0, out.output
    got = json.loads((tmp_path / "m.json").read_text())
    assert got["regularize_intercept"] is False and got["intercept"] == res.w[-1]


def test_liblinear_with_an_unregularised_bias_finds_the_same_model(problem):
    """LIBLINEAR's -R (do not regularise the bias, with -B 1) is the same convention."""
    liblinear = pytest.importorskip("liblinear.liblinearutil",
                                    reason="pip install liblinear-official (extra test)")
    from sklearn.datasets import load_svmlight_file
    path, w_ref, _ = problem
    X, y = load_svmlight_file(str(path), n_features=D)
    res = solve(path, "newton")
    m = liblinear.train(list(y), liblinear_rows(X), "-s 0 -c 1 -B 1 -R -e 1e-10 -q")
    w_ll = np.array([m.w[i] for i in range(D + 1)])
    w_ll = w_ll if m.label[0] == 1 else -w_ll           # LIBLINEAR's first label is +1
    np.testing.assert_allclose(w_ll, res.w, rtol=1e-6, atol=1e-6)
