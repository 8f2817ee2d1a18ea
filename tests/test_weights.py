"""Row weights: ``data.weights`` (one number per row, sharded with the rows) and
``model.class_weight`` in every objective, gradient, Hessian and line search,
checked against scikit-learn's ``sample_weight`` / ``class_weight`` optima, the
closed-form weighted ridge solution and finite differences."""

import numpy as np
import pytest
import scipy.sparse as sp

import distnewton
from distnewton.objectives import Shard

from support.launch import cli, write_config
from support.models import invoke, labelled

D = 6


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Unbalanced classes (labels 3 and 7) and weights in [0, 3] with some zeros."""
    folder = tmp_path_factory.mktemp("weights")
    X, y = labelled(folder / "t.svm", n=500, shift=1.5)
    s = np.random.default_rng(8).uniform(0, 3, len(y))
    s[::37] = 0.0
    (folder / "w.txt").write_text("# one weight per row\n" + "\n".join(map(repr, s.tolist())) + "\n")
    return folder, X, y, s


def solve(folder, name="newton", model=None, weights=True, rtol=1e-10, rounds=3000, **params):
    dc = {"train": str(folder / "t.svm")}
    if weights:
        dc["weights"] = str(folder / "w.txt")
    return distnewton.solve({"data": dc, "model": model or {},
                             "algorithm": {"name": name, **params},
                             "run": {"max_rounds": rounds, "grad_rtol": rtol}}, workers=3)


def sklearn_optimum(X, y, s=None, class_weight=None, intercept=False):
    from sklearn.linear_model import LogisticRegression
    ref = LogisticRegression(C=1.0, fit_intercept=intercept, class_weight=class_weight,
                             solver="newton-cholesky", tol=1e-12, max_iter=300)
    ref.fit(X, y, sample_weight=s)                 # C = 1/(lambda n), lambda = 1/n
    w = ref.coef_.ravel()
    if intercept:
        w = np.r_[w, ref.intercept_]
    return w


def objective(X, y, w, s, lam):
    t = np.where(y == y.max(), 1.0, -1.0)
    Xb = X if len(w) == X.shape[1] else np.hstack([X, np.ones((len(y), 1))])
    return float(np.mean(s * np.logaddexp(0, -t * (Xb @ w))) + 0.5 * lam * w[:X.shape[1]]
                 @ w[:X.shape[1]])


EXACT = [("newton", {}, 1e-10, 1e-9), ("newton", {"solver": "cg"}, 1e-10, 1e-9),
         ("giant", {}, 1e-10, 1e-8), ("adaptive_localnewton", {}, 1e-10, 1e-8),
         ("ranl", {"regions": 6, "capacities": 1.0, "eval_at": "full", "batch": None},
          1e-10, 1e-8), ("lbfgs", {}, 1e-8, 1e-6),
         ("gd", {}, 1e-8, 1e-6), ("ist", {"sketch": "identity", "gamma": 2.0}, 1e-8, 1e-6)]


@pytest.mark.parametrize("name, params, rtol, wtol", EXACT,
                         ids=[f"{e[0]}-{'-'.join(map(str, e[1].values()))}" for e in EXACT])
def test_sample_weights_reach_sklearns_weighted_optimum(data, name, params, rtol, wtol):
    folder, X, y, s = data
    w_ref = sklearn_optimum(X, y, s)
    res = solve(folder, name, rtol=rtol, **params)
    assert res.status == "converged", res.message
    f_ref = objective(X, y, w_ref, s, 1 / len(y))
    assert res.loss == pytest.approx(f_ref, rel=1e-8)
    np.testing.assert_allclose(res.w, w_ref, rtol=wtol, atol=wtol)
    unweighted = sklearn_optimum(X, y)
    assert np.abs(unweighted - w_ref).max() > 1e-2          # the weights matter here


@pytest.mark.parametrize("spec, weights", [("balanced", False), ("balanced", True),
                                           ({3: 2.5}, False), ({3: 0.5, 7: 2.0}, True)])
def test_class_weights_equal_sklearns(data, spec, weights):
    folder, X, y, s = data
    sk_spec = spec if spec == "balanced" else {**{3: 1.0, 7: 1.0}, **spec}
    w_ref = sklearn_optimum(X, y, s if weights else None, class_weight=sk_spec,
                            intercept=True)
    res = solve(folder, model={"class_weight": spec, "fit_intercept": True,
                               "regularize_intercept": False}, weights=weights)
    assert res.status == "converged", res.message
    np.testing.assert_allclose(res.w, w_ref, rtol=1e-8, atol=1e-9)


def test_weighted_ridge_equals_the_closed_form(tmp_path):
    X, y = labelled(tmp_path / "t.svm", n=300, loss="ridge")
    s = np.random.default_rng(2).uniform(0.1, 4, len(y))
    np.savetxt(tmp_path / "w.txt", s, fmt="%.17g")
    n, lam = len(y), 1e-3
    w_ref = np.linalg.solve(X.T @ (s[:, None] * X) / n + lam * np.eye(D), X.T @ (s * y) / n)
    for name, params in (("newton", {}), ("ist", {"sketch": "identity", "gamma": 0.5})):
        res = distnewton.solve({"data": {"train": str(tmp_path / "t.svm"),
                                         "weights": str(tmp_path / "w.txt")},
                                "model": {"loss": "ridge", "lambda": lam},
                                "algorithm": {"name": name, **params},
                                "run": {"max_rounds": 3000, "grad_rtol": 1e-10}}, workers=3)
        assert res.status == "converged", res.message
        np.testing.assert_allclose(res.w, w_ref, rtol=1e-8, atol=1e-9)


def test_weighted_shard_and_minibatch_derivatives():
    """Local SGD, scaled Local SGD, RANL and IST take their gradients and Hessian
    products from these functions."""
    from distnewton.algorithms.minibatch import batches, mean_grad, rows_of, stochastic_grad
    from distnewton.algorithms.localsgd.scaled import batch_hvp
    rng = np.random.default_rng(0)
    X = sp.csr_matrix(rng.standard_normal((30, 4)) * (rng.random((30, 4)) < 0.7))
    y = np.where(rng.random(30) < 0.5, 1.0, -1.0)
    s = rng.uniform(0, 2, 30)
    sh = Shard(X, y, "logistic", 0.2, weights=s)
    w, v = np.array([0.3, -1.0, 0.5, 2.0]), np.array([1.0, 2.0, -1.0, 0.5])
    data = float(np.mean(s * np.logaddexp(0, -y * (X @ w))))
    assert sh.local_value(w) == pytest.approx(data + 0.1 * w @ w, rel=1e-14)
    eps, e = 1e-6, np.eye(4)
    fd = [(sh.local_value(w + eps * e[i]) - sh.local_value(w - eps * e[i])) / (2 * eps)
          for i in range(4)]
    np.testing.assert_allclose(sh.local_grad(w), fd, rtol=1e-7, atol=1e-9)
    H = sh.local_hessian(w)
    fdH = np.column_stack([(sh.local_grad(w + eps * e[i]) - sh.local_grad(w - eps * e[i]))
                           / (2 * eps) for i in range(4)])
    np.testing.assert_allclose(H, fdH, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(sh.local_hvp_operator(w)(v), H @ v, rtol=1e-13)
    losses = sh.line_losses(w, v, [0.0, 0.5])
    assert losses[0] == pytest.approx(data * 30, rel=1e-14)
    np.testing.assert_allclose(mean_grad(sh.loss, sh.penalty, w, rows_of(sh)),
                               sh.local_grad(w), rtol=1e-13)
    rows = np.array([2, 5, 11])
    sub = Shard(X[rows], y[rows], "logistic", 0.2, weights=s[rows])
    np.testing.assert_allclose(mean_grad(sh.loss, sh.penalty, w, rows_of(sh, rows)),
                               sub.local_grad(w), rtol=1e-13)
    # Local SGD's Entries batches (one epoch of the whole shard, and single rows)
    state = {"pos": 30}
    (B,) = batches(sh, np.random.default_rng(1), state, 30, 1)
    np.testing.assert_allclose(stochastic_grad(sh.loss, sh.penalty, w.copy(), *B),
                               sh.local_grad(w), rtol=1e-13)
    np.testing.assert_allclose(batch_hvp(sh.loss, sh.penalty, w, v, *B), H @ v, rtol=1e-12)
    for B in batches(sh, np.random.default_rng(1), {"pos": 30}, 1, 3):
        j = int(np.nonzero(s == B.s[0])[0][0])
        one = Shard(X[[j]], y[[j]], "logistic", 0.2, weights=s[[j]])
        np.testing.assert_allclose(stochastic_grad(sh.loss, sh.penalty, w.copy(), *B),
                                   one.local_grad(w), rtol=1e-13)
        np.testing.assert_allclose(batch_hvp(sh.loss, sh.penalty, w, v, *B),
                                   one.local_hessian(w) @ v, rtol=1e-13)


def test_unweighted_runs_are_unchanged_by_weights_of_one(data, tmp_path):
    folder, *_ = data
    (tmp_path / "t.svm").write_bytes((folder / "t.svm").read_bytes())
    (tmp_path / "w.txt").write_text("1\n" * 500)
    a = solve(tmp_path, "giant")
    b = solve(tmp_path, "giant", weights=False)
    np.testing.assert_allclose(a.w, b.w, rtol=1e-13, atol=1e-15)
    assert a.iterations == b.iterations


@pytest.mark.parametrize("case, text", [
    ("short", "data.weights: {tmp}/w.txt has 3 weights but the training set has 4 rows"),
    ("negative", "{tmp}/w.txt:2: weight -1.0 must be finite and >= 0"),
    ("word", "{tmp}/w.txt:3: weight 'abc' is not a number"),
    ("missing", "data.weights: {tmp}/none.txt: no such file"),
    ("zeros", "data.weights: every row has weight 0"),
    ("ridge_cw", "model.class_weight: only for loss logistic"),
    ("label", "model.class_weight: label 5 does not occur in the training labels [-1, 1]"),
    ("typo", "model.class_weight: must be 'balanced' or a mapping {{label: weight}}, got "
             "'balance'"),
    ("value", "model.class_weight.1: must be a number >= 0, got -2"),
    ("shards", "data.weights: not supported with data.shards (yet)"),
])
def test_bad_weights_are_one_line_errors(tmp_path, case, text):
    (tmp_path / "t.svm").write_text("1 1:0.5\n-1 2:0.3\n1 1:1\n-1 2:1\n")
    weights = {"short": "1\n2\n3\n", "negative": "1\n-1\n1\n1\n", "word": "1\n2\nabc\n4\n",
               "zeros": "0\n0\n0\n0\n"}.get(case, "1\n1\n1\n1\n")
    (tmp_path / "w.txt").write_text(weights)
    dc = {"train": str(tmp_path / "t.svm"), "weights": str(tmp_path / "w.txt")}
    mc = {}
    if case == "missing":
        dc["weights"] = str(tmp_path / "none.txt")
    if case in ("ridge_cw", "label", "typo", "value"):
        del dc["weights"]
        mc["class_weight"] = {"ridge_cw": "balanced", "label": {5: 1.0}, "typo": "balance",
                              "value": {1: -2}}[case]
        if case == "ridge_cw":
            mc["loss"] = "ridge"
    if case == "shards":
        dc = {"shards": str(tmp_path), "weights": str(tmp_path / "w.txt")}
    write_config(tmp_path / "c.yaml", data=dc, model=mc, algorithm={"name": "newton"})
    out = invoke("run", tmp_path / "c.yaml", "--backend", "sim", "-o", tmp_path / "r.h5")
    assert out.exit_code == 2, out.output
    lines = out.output.strip().splitlines()
    assert len(lines) == 1 and text.format(tmp=tmp_path) in lines[0], out.output
    assert not (tmp_path / "r.h5").exists()


@pytest.mark.mpi
def test_weights_are_sharded_under_mpiexec(data, tmp_path):
    folder, X, y, s = data
    cfg = {"data": {"train": str(folder / "t.svm"), "weights": str(folder / "w.txt")},
           "model": {"class_weight": "balanced"}, "algorithm": {"name": "giant"},
           "run": {"max_rounds": 100, "grad_rtol": None, "max_iterations": 9}}
    write_config(tmp_path / "c.yaml", **cfg)
    res = cli("run", tmp_path / "c.yaml", "-o", tmp_path / "mpi.h5", "-q", n=4)
    assert res.returncode == 0, res.stderr
    from distnewton.io.read import load
    mpi = load(tmp_path / "mpi.h5")
    sim = distnewton.solve(cfg, workers=3)
    np.testing.assert_allclose(mpi.w, sim.w, rtol=1e-12, atol=1e-14)
    assert mpi.iterations == sim.iterations == 9     # ||g|| ~ 1e-9 by then
    np.testing.assert_allclose(mpi.w, sklearn_optimum(X, y, s, "balanced"), rtol=1e-7,
                               atol=1e-8)


@pytest.mark.parametrize("name", ["localsgd", "scaled_localsgd"])
def test_local_sgd_methods_approach_the_weighted_optimum(data, name):
    """Inexact methods (an error floor): on the weighted objective they end below
    the unweighted optimum, so they minimise the weighted problem."""
    folder, X, y, s = data
    res = solve(folder, name, rounds=60)
    lam = 1 / len(y)
    f_ref = objective(X, y, sklearn_optimum(X, y, s), s, lam)
    f_plain = objective(X, y, sklearn_optimum(X, y), s, lam)
    assert res.loss == pytest.approx(objective(X, y, res.w, s, lam), rel=1e-12)
    assert f_ref <= res.loss < f_plain, (f_ref, res.loss, f_plain)
