"""``model.loss: squared_hinge`` (the L2-loss SVM, LIBLINEAR ``-s 2``) against independent
references: central differences and the written-out generalised Hessian for the loss's
derivatives; scipy's trust-exact on the primal, scikit-learn's LinearSVC and LIBLINEAR's
own ``-s 2`` for the optimum reached by every built-in algorithm (sim backend, and one
``mpiexec -n 3`` run); class weights against LinearSVC's; a method without the loss
refused; a9a when ../shared/data has it.  The trained model (predict, evaluate, export,
one-vs-rest) and the estimator: tests/test_squared_hinge_model.py."""

import numpy as np
import pytest
import scipy.sparse as sp

import distnewton
from distnewton.algorithms import ALGORITHMS
from distnewton.algorithms.base import Algorithm, check_loss
from distnewton.data import write_libsvm
from distnewton.errors import UserError
from distnewton.objectives import Shard, SquaredHinge

from support.launch import SHARED, cli, own_lines, read_result, write_config
from support.models import liblinear_rows
from support.squared_hinge import (linearsvc_optimum, scipy_optimum, svm_gradient,
                                   svm_hessian, svm_objective)

A9A_DATA = pytest.mark.data(reason="a9a (LIBLINEAR -s 2 at C = 1)")


# -- the loss and its derivatives ------------------------------------------------


def random_shard(n=80, d=7, seed=0, lam=0.1, weights=None):
    rng = np.random.default_rng(seed)
    X = sp.random(n, d, density=0.5, random_state=seed, format="csr") * 3.0
    y = np.sign(rng.standard_normal(n))
    return Shard(X, y, "squared_hinge", lam, weights=weights), rng


def test_the_loss_elementwise_is_max_0_1_minus_m_squared_and_scalars_agree():
    z = np.array([-2.0, 0.0, 0.5, 1.0, 3.0])
    y = np.array([1.0, -1.0, 1.0, 1.0, -1.0])
    m = y * z                                           # -2, 0, 0.5, 1, -3
    np.testing.assert_array_equal(SquaredHinge.value(z, y), [9.0, 1.0, 0.25, 0.0, 16.0])
    np.testing.assert_array_equal(SquaredHinge.deriv(z, y), -2 * y * np.maximum(1 - m, 0))
    np.testing.assert_array_equal(SquaredHinge.deriv2(z, y), [2.0, 2.0, 2.0, 0.0, 2.0])
    value, deriv, curv = SquaredHinge.parts(z, y)
    np.testing.assert_array_equal(value, SquaredHinge.value(z, y))
    np.testing.assert_array_equal(deriv, SquaredHinge.deriv(z, y))
    np.testing.assert_array_equal(curv, SquaredHinge.deriv2(z, y))
    for zj, yj in zip(z, y):                            # per-sample SGD takes floats
        assert isinstance(SquaredHinge.deriv(float(zj), float(yj)), float)
        assert SquaredHinge.deriv(float(zj), float(yj)) == SquaredHinge.deriv(
            np.array([zj]), np.array([yj]))[0]
        assert SquaredHinge.deriv2(float(zj), float(yj)) == SquaredHinge.deriv2(
            np.array([zj]), np.array([yj]))[0]


@pytest.mark.parametrize("weighted", [False, True])
def test_value_gradient_and_hessian_against_differences_and_the_active_set(weighted):
    s = np.random.default_rng(5).uniform(0.2, 2.0, 80) if weighted else None
    shard, rng = random_shard(weights=s)
    w, v, h = 0.3 * rng.standard_normal(shard.d), rng.standard_normal(shard.d), 1e-6
    X, y = shard.X, shard.y
    margins = y * (X @ w)
    assert 0 < np.sum(margins < 1) < shard.n            # some rows active, some not
    assert np.min(np.abs(margins - 1)) > 1e-4            # none within h of the kink
    assert shard.local_value(w) == pytest.approx(svm_objective(X, y, w, 0.1, s), rel=1e-14)
    g = shard.local_grad(w)
    fd = np.array([(shard.local_value(w + h * e) - shard.local_value(w - h * e)) / (2 * h)
                   for e in np.eye(shard.d)])
    np.testing.assert_allclose(g, fd, rtol=0, atol=1e-8)
    hv = shard.local_hvp_operator(w)(v)
    fd_hv = (shard.local_grad(w + h * v) - shard.local_grad(w - h * v)) / (2 * h)
    np.testing.assert_allclose(hv, fd_hv, rtol=0, atol=1e-7)
    H = svm_hessian(X, y, w, 0.1, s)                    # (2/n) X_A^T S X_A + lam I
    np.testing.assert_allclose(shard.local_hessian(w), H, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(hv, H @ v, rtol=1e-12, atol=1e-13)
    n = shard.n
    np.testing.assert_allclose(shard.hess_diag_sum(w) / n + 0.1, np.diag(H), rtol=1e-13)
    upper = shard.hess_upper_sum(w) / n
    iu = np.triu_indices(shard.d)
    np.testing.assert_allclose(upper, (H - 0.1 * np.eye(shard.d))[iu], rtol=1e-12,
                               atol=1e-14)


def test_minibatch_gradients_and_hessian_products_are_the_written_out_ones():
    """Local SGD, scaled Local SGD, RANL and IST take their gradients and Hessian
    products from these functions: a whole-shard batch and single rows (the float
    path of the loss) against svm_gradient / svm_hessian on those rows."""
    from distnewton.algorithms.localsgd.scaled import batch_hvp
    from distnewton.algorithms.minibatch import batches, mean_grad, rows_of, stochastic_grad
    s = np.random.default_rng(3).uniform(0.5, 2.0, 80)
    sh, rng = random_shard(seed=4, weights=s)
    X, y, lam = sh.X, sh.y, sh.lam
    w, v = 0.3 * rng.standard_normal(sh.d), rng.standard_normal(sh.d)
    assert 0 < np.sum(y * (X @ w) < 1) < sh.n
    np.testing.assert_allclose(mean_grad(sh.loss, sh.penalty, w, rows_of(sh)),
                               svm_gradient(X, y, w, lam, s), rtol=1e-12, atol=1e-15)
    (B,) = batches(sh, np.random.default_rng(1), {"pos": sh.n}, sh.n, 1)
    np.testing.assert_allclose(stochastic_grad(sh.loss, sh.penalty, w.copy(), *B),
                               svm_gradient(X, y, w, lam, s), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(batch_hvp(sh.loss, sh.penalty, w, v, *B),
                               svm_hessian(X, y, w, lam, s) @ v, rtol=1e-12, atol=1e-15)
    active = 0
    for B in batches(sh, np.random.default_rng(2), {"pos": sh.n}, 1, 12):
        j = int(np.nonzero(s == B.s[0])[0][0])
        Xj, yj, sj = X[[j]], y[[j]], s[[j]]
        active += int(yj[0] * (Xj @ w)[0] < 1)
        np.testing.assert_allclose(stochastic_grad(sh.loss, sh.penalty, w.copy(), *B),
                                   svm_gradient(Xj, yj, w, lam, sj), rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(batch_hvp(sh.loss, sh.penalty, w, v, *B),
                                   svm_hessian(Xj, yj, w, lam, sj) @ v, rtol=1e-12,
                                   atol=1e-15)
    assert 0 < active < 12                              # both sides of the hinge seen


# -- the optimum: every algorithm against scipy and LinearSVC ---------------------


@pytest.fixture(scope="module")
def problem():
    """400 x 20 sparse rows, labels {0, 1} (mapped to -1/+1), lambda 1e-2: the optimum
    by scipy's trust-exact, checked against LinearSVC's (LIBLINEAR's TRON)."""
    rng = np.random.default_rng(1)
    X = sp.random(400, 20, density=0.5, random_state=1, format="csr")
    X.data = rng.standard_normal(X.nnz) / np.sqrt(10)
    t = X @ rng.standard_normal(20) + 0.2 * rng.standard_normal(400)
    y01, y = (t > 0).astype(float), np.where(t > 0, 1.0, -1.0)
    lam = 1e-2
    w_ref, f_ref = scipy_optimum(X, y, lam)
    w_svc, f_svc = linearsvc_optimum(X, y01, lam)
    assert abs(f_svc - f_ref) <= 1e-12 * f_ref           # same objective, same scaling
    np.testing.assert_allclose(w_svc, w_ref, rtol=0, atol=1e-6)
    L = float(2 * np.linalg.eigvalsh((X.T @ X).toarray() / 400).max() + lam)
    return X, y01, y, lam, f_ref, L


def params_for(name, L):
    """(algorithm keys, K): the defaults, except where the method's default is an
    approximate one whose floor is not the optimum (full-batch single local steps:
    localsgd and ist's identity sketch are then exactly gd with step 1/L; RANL with its
    old frozen-Hessian defaults; LocalNewton on one worker)."""
    return {"localsgd": ({"lr": 1 / L, "batch": 1000, "local_steps": 1}, 3),
            "scaled_localsgd": ({"scaling": "identity", "gamma": 1 / L, "batch": 1000,
                                 "local_steps": 1}, 3),
            "ist": ({"sketch": "identity", "gamma": 1 / L}, 3),
            "ranl": ({"capacities": 1.0, "eval_at": "full", "batch": None}, 3),
            "localnewton": ({"L": 2}, 1)}.get(name, ({}, 3))


BUILTIN = ["newton", "giant", "gd", "lbfgs", "localnewton", "adaptive_localnewton",
           "localsgd", "scaled_localsgd", "fednl", "ranl", "ist", "disco", "owlqn"]


def test_every_builtin_but_dane_takes_it_and_dane_refuses_it_naming_the_key():
    from distnewton.algorithms.registry import BUILTINS
    assert sorted(BUILTIN) == sorted(c.name for c in BUILTINS if c.name != "dane")
    with pytest.raises(UserError, match=r"^model\.loss: dane does not support loss "
                                        r"'squared_hinge' \(it takes logistic, ridge\)$"):
        check_loss(ALGORITHMS["dane"], "squared_hinge")


@pytest.mark.parametrize("name", BUILTIN)
def test_every_builtin_algorithm_reaches_the_svm_optimum(problem, name):
    X, y01, _, lam, f_ref, L = problem
    params, K = params_for(name, L)
    res = distnewton.solve({"model": {"loss": "squared_hinge", "lambda": lam},
                            "algorithm": {"name": name, **params},
                            "run": {"max_rounds": 400, "grad_rtol": None,
                                    "target_subopt": 1e-9, "f_star": f_ref}},
                           data=(X, y01), workers=K)
    assert res.status == "converged", (res.status, res.rounds)
    rel = (svm_objective(X, 2 * y01 - 1, res.w, lam) - f_ref) / f_ref
    assert -1e-12 <= rel <= 1e-8
    assert "squared_hinge" in ALGORITHMS[name].losses


def test_newton_takes_few_rounds_and_tron_stops_by_liblinears_rule(problem):
    """The generalised-Hessian Newton method (Mangasarian's finite Newton): measured 6
    rounds to grad_rtol 1e-10 here; newton's TRON with LIBLINEAR's -e 1e-6 rule."""
    X, y01, y, lam, f_ref, _ = problem
    res = distnewton.solve({"model": {"loss": "squared_hinge", "lambda": lam},
                            "algorithm": {"name": "newton"}, "run": {"grad_rtol": 1e-10}},
                           data=(X, y01), workers=3)
    assert res.status == "converged" and res.rounds <= 12
    assert abs(svm_objective(X, y, res.w, lam) - f_ref) <= 1e-12 * f_ref
    res = distnewton.solve({"model": {"loss": "squared_hinge", "lambda": lam},
                            "algorithm": {"name": "newton", "solver": "tron"},
                            "run": {"grad_rtol": None, "liblinear_eps": 1e-8}},
                           data=(X, y01), workers=3)
    assert res.status == "converged" and "liblinear_eps" in res.message
    assert abs(svm_objective(X, y, res.w, lam) - f_ref) <= 1e-8 * f_ref
    # LIBLINEAR's -s 2 rule: ||g|| <= eps max(min(#pos, #neg), 1)/n ||g(0)||
    scale = min(np.sum(y > 0), np.sum(y < 0)) / len(y)
    g, g0 = (np.linalg.norm(svm_gradient(X, y, w, lam)) for w in (res.w, 0 * res.w))
    assert g <= 1e-8 * scale * g0 and scale < 0.5


def test_class_weights_equal_linearsvcs_weighted_optimum(problem):
    X, y01, y, lam, _, _ = problem
    res = distnewton.solve({"model": {"loss": "squared_hinge", "lambda": lam,
                                      "class_weight": "balanced"},
                            "algorithm": {"name": "newton"}, "run": {"grad_rtol": 1e-12}},
                           data=(X, y01), workers=3)
    counts = np.array([np.sum(y01 == 0), np.sum(y01 == 1)])
    assert counts[0] != counts[1]
    s = (len(y) / (2.0 * counts))[y01.astype(int)]       # scikit-learn's "balanced"
    w_svc, _ = linearsvc_optimum(X, y01, lam, class_weight="balanced")
    f_svc = svm_objective(X, y, w_svc, lam, s)
    assert abs(svm_objective(X, y, res.w, lam, s) - f_svc) <= 1e-8 * f_svc
    np.testing.assert_allclose(res.w, w_svc, rtol=0, atol=1e-5)


def test_liblinear_s2_finds_the_same_optimum(problem):
    liblinear = pytest.importorskip("liblinear.liblinearutil",
                                    reason="pip install liblinear-official (extra test)")
    X, y01, y, lam, f_ref, _ = problem
    C = 1.0 / (lam * X.shape[0])
    m = liblinear.train(list(y), liblinear_rows(X), f"-s 2 -c {C!r} -e 1e-12 -B -1 -q")
    w = np.array([m.w[i] for i in range(X.shape[1])]) * (1 if m.get_labels()[0] == 1 else -1)
    assert abs(svm_objective(X, y, w, lam) - f_ref) <= 1e-10 * f_ref


# -- refusals --------------------------------------------------------------------


def test_a_method_without_the_loss_is_refused_naming_model_loss():
    class OnlyLogistic(Algorithm):
        name = "only_logistic"
        losses = ("logistic",)
    check_loss(OnlyLogistic, "logistic")
    with pytest.raises(UserError, match=r"^model\.loss: only_logistic does not support loss "
                                        r"'squared_hinge' \(it takes logistic\)$"):
        check_loss(OnlyLogistic, "squared_hinge")
    for name in BUILTIN:
        check_loss(ALGORITHMS[name], "squared_hinge")


@pytest.mark.slow
def test_cli_refuses_a_plugin_without_the_loss_and_lists_the_losses(tmp_path):
    (tmp_path / "logonly.py").write_text(
        "from distnewton.algorithms import register_algorithm\n"
        "from distnewton.plugin import Algorithm\n\n"
        "@register_algorithm\n"
        "class LogOnly(Algorithm):\n"
        "    '''Logistic only.'''\n"
        "    name = 'logonly'\n"
        "    losses = ('logistic',)\n")
    train = tmp_path / "t.svm"
    write_libsvm(train, np.eye(4), np.array([1, -1, 1, -1]))
    cfg = write_config(tmp_path / "c.yaml", data={"train": str(train)},
                       model={"loss": "squared_hinge"}, algorithm={"name": "logonly"},
                       run={"plugins": ["logonly"], "backend": "sim", "workers": 2},
                       output={"path": str(tmp_path / "r.h5")})
    env = {"PYTHONPATH": f"{tmp_path}:{distnewton.__path__[0]}/.."}
    res = cli("run", cfg, extra_env=env)
    assert res.returncode == 2
    assert own_lines(res.stderr) == ["distnewton: error: model.loss: logonly does not support "
                                     "loss 'squared_hinge' (it takes logistic)"]
    assert not (tmp_path / "r.h5").exists()
    res = cli("list", "--plugin", "logonly", extra_env=env)
    lines = res.stdout.splitlines()
    at = lines.index("logonly [module logonly]: Logistic only.")
    assert lines[at + 1].split() == ["model.loss", "logistic"]
    at = lines.index(next(x for x in lines if x.startswith("newton [built-in]")))
    assert lines[at + 1].split() == ["model.loss", "logistic,", "ridge,", "squared_hinge,",
                                     "poisson"]


# -- MPI and real data ---------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.mpi
def test_mpiexec_run_reaches_the_scipy_optimum(tmp_path, problem):
    X, y01, y, lam, f_ref, _ = problem
    train = tmp_path / "t.svm"
    write_libsvm(train, X, y01)
    cfg = write_config(tmp_path / "c.yaml", data={"train": str(train)},
                       model={"loss": "squared_hinge", "lambda": lam},
                       algorithm={"name": "giant"}, run={"grad_rtol": 1e-10},
                       output={"path": str(tmp_path / "r.h5")})
    res = cli("run", cfg, n=3)
    assert res.returncode == 0, res.stderr
    attrs, hist, w = read_result(tmp_path / "r.h5")
    assert attrs["status"] == "converged" and attrs["loss"] == "squared_hinge"
    assert abs(svm_objective(X, y, w, lam) - f_ref) <= 1e-8 * f_ref
    assert hist["test_accuracy"].size == hist["loss"].size


@A9A_DATA
@pytest.mark.slow
@pytest.mark.parametrize("name", ["newton", "giant"])
def test_a9a_reaches_linearsvc_and_liblinear_s2_at_c_1(name):
    """a9a, lambda = 1/n (C = 1): LinearSVC (LIBLINEAR's TRON, tol 1e-12) is the
    reference; distnewton reaches it to 1e-8 relative objective."""
    from sklearn.datasets import load_svmlight_file
    X, y = load_svmlight_file(str(SHARED / "a9a.bz2"), n_features=123)
    lam = 1.0 / X.shape[0]
    w_svc, f_svc = linearsvc_optimum(X, y, lam)
    res = distnewton.solve({"data": {"train": str(SHARED / "a9a.bz2"), "n_features": 123},
                            "model": {"loss": "squared_hinge"}, "algorithm": {"name": name},
                            "run": {"grad_rtol": 1e-10, "max_rounds": 300}}, workers=4)
    assert res.status == "converged"
    assert abs(svm_objective(X, y, res.w, lam) - f_svc) <= 1e-8 * f_svc



def test_synthetic_svm_data_has_the_logistic_sets_classes():
    """``data.synth`` / ``data synth --loss squared_hinge``: the same rows and -1/+1
    labels as the logistic generator (a classification problem), not ridge targets."""
    from distnewton.data import make_synthetic
    X, y, w = make_synthetic(200, 10, seed=4, loss="squared_hinge")
    Xl, yl, wl = make_synthetic(200, 10, seed=4, loss="logistic")
    assert set(np.unique(y)) == {-1.0, 1.0}
    np.testing.assert_array_equal(y, yl)
    assert (X != Xl).nnz == 0 and np.array_equal(w, wl)
    with pytest.raises(UserError, match="noise must be in \\[0, 1\\] for squared_hinge"):
        make_synthetic(20, 3, noise=2.0, loss="squared_hinge")
