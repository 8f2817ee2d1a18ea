"""``model.multiclass: multinomial``: the softmax objective and its runs.

The shard's value, gradient, Hessian-vector product, exact Hessian and diagonal
against central finite differences and a plain numpy softmax (with row weights
and a free intercept, dense and sparse rows); the optimum of several algorithms
against scikit-learn's multinomial LogisticRegression (lbfgs and newton-cg, tiny
tol) to 1e-8 relative objective; the refusals (exit 2, one line naming the key).
"""

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression

import distnewton
from distnewton.softmax import SoftmaxShard

from support.corpus import Case, check, params
from support.multinomial import CLASSES, four_classes, numpy_value

LAM = 1e-3

def sklearn_value(ref, X, y, lam, intercept):
    idx = np.searchsorted(CLASSES, y)
    b = ref.intercept_ if intercept else 0.0
    return numpy_value(ref.coef_, b, X, idx, np.ones(len(y)), lam)


# -- the objective against finite differences ----------------------------------------
@pytest.mark.parametrize("free", [False, True])
@pytest.mark.parametrize("density", [0.9, 0.15])     # the dense-copy and the CSR paths
def test_shard_derivatives_equal_finite_differences(free, density):
    rng = np.random.default_rng(1)
    n, p, C, lam = 50, 5, 3, 0.1
    X = sp.random(n, p - 1, density=density, random_state=2, format="csr")
    X = sp.hstack([X, np.ones((n, 1))], format="csr")     # the intercept column last
    y = rng.integers(0, C, n).astype(float)
    y[:C] = np.arange(C)
    s = rng.uniform(0.2, 3.0, n)
    shard = SoftmaxShard(X, y, C, lam, free, weights=s)
    w, v = rng.standard_normal(p * C), rng.standard_normal(p * C)
    W = w.reshape(C, p)
    # the value: a plain numpy softmax (class-major layout: W[c] = w[c p:(c+1) p])
    pen = np.ones(p * C)
    if free:
        pen[p - 1::p] = 0.0
    Xd = X.toarray()
    direct = numpy_value(W, 0.0, Xd, y.astype(int), s, 0.0) + 0.5 * lam * float(w @ (pen * w))
    assert shard.local_value(w) == pytest.approx(direct, rel=1e-13)
    eps, eye = 1e-6, np.eye(p * C)
    g_fd = np.array([(shard.local_value(w + eps * e) - shard.local_value(w - eps * e)) / (2 * eps)
                     for e in eye])
    np.testing.assert_allclose(shard.local_grad(w), g_fd, rtol=0, atol=1e-8)
    H_fd = np.array([(shard.local_grad(w + eps * e) - shard.local_grad(w - eps * e)) / (2 * eps)
                     for e in eye])
    H = shard.local_hessian(w)
    if free:   # the documented rank-one term on the intercepts' null direction
        u = np.zeros(p * C)
        u[p - 1::p] = 1.0
        H = H - np.outer(u, u) / (4 * C)
        assert np.abs(H_fd @ u).max() < 1e-7             # the true Hessian is singular there
        assert abs(float(u @ shard.local_grad(w) - lam * 0)) < 1e-12   # gradient orthogonal
    np.testing.assert_allclose(H, H_fd, rtol=0, atol=1e-7)
    np.testing.assert_allclose(shard.local_hvp_operator(w)(v), shard.local_hessian(w) @ v,
                               rtol=0, atol=1e-12)
    diag = np.diag(shard.hess_sum(w)).copy()
    if free:   # Jacobi: the intercepts' entries one value (test_multinomial_term.py)
        diag[p - 1::p] = np.diag(shard.plain_hess_sum(w))[p - 1::p].mean()
    np.testing.assert_allclose(shard.hess_diag_sum(w), diag, rtol=1e-12, atol=1e-12)
    full = shard.hess_sum(w)
    np.testing.assert_allclose(shard.hess_upper_sum(w), full[np.triu_indices(p * C)])
    steps = [1.0, 0.5, 0.25]
    np.testing.assert_allclose(shard.line_losses(w, v, steps),
                               [shard.loss_sum(w - a * v) for a in steps], rtol=1e-13)


def test_large_scores_do_not_overflow():
    X = sp.csr_matrix(np.array([[1.0, 0.0], [0.0, 1.0]]))
    shard = SoftmaxShard(X, np.array([0.0, 1.0]), 2, 0.0)
    w = np.array([1e4, 0.0, -1e4, 0.0])       # scores +-1e4: exp would overflow unshifted
    f, g = shard.loss_grad_sum(w)
    assert np.isfinite(f) and np.all(np.isfinite(g))
    # row 1: scores (1e4, -1e4), loss log(1 + e^-2e4) = 0; row 2: scores (0, 0), loss log 2
    assert f == pytest.approx(np.log(2.0), rel=1e-15)


# -- the optimum against scikit-learn ------------------------------------------------
def multinomial_cfg(name, intercept=False, **alg):
    model = {"loss": "logistic", "lambda": LAM, "multiclass": "multinomial"}
    if intercept:
        model.update(fit_intercept=True, regularize_intercept=False)
    return {"model": model, "algorithm": {"name": name, **alg},
            "run": {"grad_rtol": 1e-10, "max_rounds": 300}}


@pytest.fixture(scope="module")
def problem():
    X, y = four_classes()
    refs = {}
    for intercept in (False, True):
        for solver in ("lbfgs", "newton-cg"):
            refs[intercept, solver] = LogisticRegression(
                C=1.0 / (LAM * len(y)), fit_intercept=intercept, tol=1e-13, max_iter=20000,
                solver=solver).fit(X, y)
    return X, y, refs


@pytest.mark.parametrize("intercept", [False, True])
@pytest.mark.parametrize("name, alg", [
    ("newton", {"solver": "cholesky"}), ("newton", {"solver": "cg"}),
    ("newton", {"solver": "tron"}), ("lbfgs", {}), ("giant", {}), ("dane", {}),
    ("disco", {}), ("owlqn", {}), ("fednl", {}), ("adaptive_localnewton", {})])
def test_optimum_is_sklearns_multinomial_optimum(problem, intercept, name, alg):
    """Relative objective within 1e-8 of scikit-learn's (sklearn's default for more
    than two classes is the multinomial loss; C = 1/(lambda n); with an intercept
    both leave it unpenalised, distnewton keeping the intercepts' sum at zero)."""
    X, y, refs = problem
    res = distnewton.solve(multinomial_cfg(name, intercept, **alg), data=(X, y), workers=3,
                           warn=False)
    assert res.w.shape == (4, X.shape[1] + intercept)
    assert res.attrs["multiclass"] == "multinomial"
    assert list(res.attrs["classes"]) == list(CLASSES)
    idx = np.searchsorted(CLASSES, y)
    W, b = (res.w[:, :-1], res.w[:, -1]) if intercept else (res.w, 0.0)
    ours = numpy_value(W, b, X, idx, np.ones(len(y)), LAM)
    for solver in ("lbfgs", "newton-cg"):
        ref = sklearn_value(refs[intercept, solver], X, y, LAM, intercept)
        assert (ours - ref) / ref <= 1e-8, (solver, ours, ref)
    if intercept:                      # the null direction: the intercepts' sum stays 0
        assert abs(b.sum()) <= 1e-8 * np.abs(b).max()
    ref = refs[intercept, "lbfgs"]
    agree = np.mean(np.argmax(X @ W.T + b, axis=1) == np.searchsorted(CLASSES, ref.predict(X)))
    assert agree >= 0.995
    # the history's loss is the objective (the same numpy value at the last iterate)
    assert res.history["loss"][-1] == pytest.approx(ours, rel=1e-12)


def test_weighted_rows_match_sklearns_sample_weight(problem):
    X, y, _ = problem
    s = np.random.default_rng(4).uniform(0.1, 2.0, len(y))
    res = distnewton.solve(multinomial_cfg("newton"), data=(X, y, s), workers=2, warn=False)
    ref = LogisticRegression(C=1.0 / (LAM * len(y)), fit_intercept=False, tol=1e-13,
                             max_iter=20000).fit(X, y, sample_weight=s)
    idx = np.searchsorted(CLASSES, y)
    ours = numpy_value(res.w, 0.0, X, idx, s, LAM)
    theirs = numpy_value(ref.coef_, 0.0, X, idx, s, LAM)
    assert (ours - theirs) / theirs <= 1e-8


@pytest.mark.parametrize("name, alg", [
    ("gd", {"step_size": 0.5}), ("fednl", {"line_search": False}),
    ("fednl", {"line_search": False, "compressor": "rankr"})])
def test_bytes_count_d_times_c_floats(problem, name, alg):
    """Every vector a round moves is d C floats, and FedNL's compressed matrices are
    of d C x d C: the same rounds of a binary run on d C features move exactly the
    same bytes (3 iterations of rounds that do not depend on the data)."""
    X, y, _ = problem
    cfg = multinomial_cfg(name, **alg)
    cfg["run"] = {"max_iterations": 3, "max_rounds": 50}
    res = distnewton.solve(cfg, data=(X, y), workers=2, warn=False)
    wide = sp.random(len(y), X.shape[1] * 4, density=0.5, random_state=0, format="csr")
    ref = distnewton.solve({**cfg, "model": {"loss": "logistic", "lambda": LAM}},
                           data=(wide, np.where(y == 2, 1.0, -1.0)), workers=2, warn=False)
    assert res.rounds == ref.rounds == 3
    assert (res.bytes_up, res.bytes_down) == (ref.bytes_up, ref.bytes_down)


# -- refusals: exit 2, one line naming the key, no file --------------------------------
def _multinomial(algorithm="newton", model=None, **sections):
    """A multinomial config (``algorithm``: a name, or a dict of newton's keys)."""
    alg = {"name": algorithm} if isinstance(algorithm, str) else {"name": "newton", **algorithm}
    return {"model": {"multiclass": "multinomial", **(model or {})}, "algorithm": alg,
            **sections}


def _first_run(tmp):
    import yaml
    cfg = {**_multinomial(), "data": {"train": str(tmp / "data.svm")}}
    (tmp / "c.yaml").write_text(yaml.safe_dump(cfg))
    distnewton.solve(str(tmp / "c.yaml"), workers=2, output=tmp / "out.h5", warn=False)


MPI = {"backend": "mpi"}
MPI_RUN = ["run", "{tmp}/c.yaml", "-o", "{tmp}/out.h5", "-q"]   # no --backend sim
REFUSALS = [
    *(Case(f"{name} takes no multinomial", config=_multinomial(name),
           message=f"model.multiclass: {name} does not support multinomial")
      for name in ("localsgd", "scaled_localsgd", "ist", "ranl")),
    Case("squared_hinge", config=_multinomial(model={"loss": "squared_hinge"}),
         message="model.loss: model.multiclass: multinomial is the softmax of loss logistic"),
    Case("ridge", config=_multinomial(model={"loss": "ridge"}), message="model.loss: "),
    Case("positive_labels", config={**_multinomial(), "data": {"positive_labels": [1]}},
         message="data.positive_labels: model.multiclass: multinomial keeps every class"),
    Case("w0", config=_multinomial(model={"w0": "{tmp}/w.npy"}), message="model.w0: "),
    Case("checkpoint_every", config=_multinomial(run={"checkpoint_every": 2}),
         message="run.checkpoint_every: model.multiclass: multinomial runs are not"),
    Case("liblinear_eps", config=_multinomial(run={"liblinear_eps": 0.01}),
         message="run.liblinear_eps: LIBLINEAR's stopping rule scales by min(#pos, #neg)"),
    Case("validation", config={**_multinomial(), "data": {"validation": 0.25}},
         message="data.validation: not supported with model.multiclass: multinomial"),
    Case("one class", config=_multinomial(), data="1 1:1\n1 2:1\n1 1:0.5\n1 2:0.3\n",
         message="model.multiclass: multinomial needs at least 2 classes"),
    Case("test label unknown", config={**_multinomial(), "data": {"test": "{tmp}/t.svm"}},
         files={"t.svm": "1 1:1\n4 2:1\n"},
         message="t.svm: label(s) [4] do not occur in the training classes [-1, 1]"),
    Case("dense Hessian of d C", config=_multinomial(algorithm={"solver": "cholesky"}),
         data="".join(f"{c} {c}:1 3000:0.5\n" for c in range(1, 21)),
         message="algorithm.solver: this path forms d x d matrices: d = 60000"),
    Case("resume", args=["run", "--resume", "{tmp}/out.h5", "-q"], prepare=_first_run,
         message="--resume: model.multiclass: multinomial runs are not checkpointed"),
    # under mpiexec: every rank stops with the master's one line, exit 2, no file
    Case("mpiexec: ranl takes no multinomial", config=_multinomial("ranl", run=MPI),
         args=MPI_RUN, launch="mpi", timeout=120,
         message="model.multiclass: ranl does not support multinomial"),
    Case("mpiexec: one class", config=_multinomial(run=MPI), data="1 1:1\n1 2:1\n1 1:0.5\n",
         args=MPI_RUN, launch="mpi", timeout=120,
         message="model.multiclass: multinomial needs at least 2 classes"),
    Case("mpiexec: test label unknown",
         config={**_multinomial(run=MPI), "data": {"test": "{tmp}/t.svm"}},
         files={"t.svm": "1 1:1\n4 2:1\n"}, args=MPI_RUN, launch="mpi", timeout=120,
         message="t.svm: label(s) [4] do not occur in the training classes [-1, 1]"),
]


@pytest.mark.parametrize("case", params(REFUSALS, "multinomial"))
def test_refusals(case, tmp_path):
    check(case, tmp_path)


def test_owlqn_l1_is_sklearns_multinomial_l1_optimum():
    """model.l1 with owlqn: the multinomial loss + lambda_1 ||W||_1 (every class's
    weights) against scikit-learn's saga (penalty l1, C = 1/(lambda_1 n))."""
    import warnings
    X, y = four_classes(n=300)
    lam1 = 1e-2
    res = distnewton.solve({"model": {"lambda": 0.0, "l1": lam1, "multiclass": "multinomial"},
                            "algorithm": {"name": "owlqn"},
                            "run": {"grad_rtol": 1e-10, "max_rounds": 500}},
                           data=(X, y), workers=2, warn=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = LogisticRegression(penalty="l1", C=1.0 / (lam1 * len(y)), solver="saga",
                                 tol=1e-12, max_iter=100000, fit_intercept=False).fit(X, y)
    idx = np.searchsorted(CLASSES, y)
    ones = np.ones(len(y))

    def F(W):
        return numpy_value(W, 0.0, X, idx, ones, 0.0) + lam1 * np.abs(W).sum()
    assert (F(res.w) - F(ref.coef_)) / F(ref.coef_) <= 1e-8
    np.testing.assert_array_equal(res.w == 0, ref.coef_ == 0)      # the same zeros
