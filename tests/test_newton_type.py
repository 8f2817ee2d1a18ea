"""The Newton-type base (gradient, direction, line search, update hooks) and the
shared mini-batch gradient, in process on the sim backend, against numpy and
scikit-learn."""

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression

from distnewton.algorithms import minibatch as M
from distnewton.algorithms import primitives as P
from distnewton.algorithms.base import LINE_SEARCH
from distnewton.algorithms.giant import GIANT
from distnewton.algorithms.localnewton import AdaptiveLocalNewton
from distnewton.algorithms.newton import Newton, Tron
from distnewton.algorithms.newton_type import NewtonType
from distnewton.algorithms.ranl import RANL
from distnewton.objectives import Shard
from support.inprocess import setup
from support.references import synthetic


class NumpyNewton(NewtonType):
    """Nothing but a direction hook: the exact Newton direction, by numpy on the
    full data this test holds (the base class does every round)."""

    name = "numpy_newton"
    params = LINE_SEARCH
    data = None          # (X dense, y, lambda), set by the test

    def direction(self, it):
        X, y, lam = self.data
        s = 1.0 / (1.0 + np.exp(-y * (X @ it.w)))
        H = X.T @ (X * (s * (1.0 - s))[:, None]) / len(y) + lam * np.eye(X.shape[1])
        return np.linalg.solve(H, it.g)


def gradient_norm(alg, rt):
    with rt.evaluating():
        return float(np.linalg.norm(P.loss_grad(rt, alg.prob, alg.w)[1]))


def test_a_direction_hook_alone_reaches_the_sklearn_optimum():
    X, y = synthetic()
    n = X.shape[0]
    alg, rt = setup(NumpyNewton, X, y)
    alg.data = (X.toarray(), y, 1.0 / n)
    g0 = gradient_norm(alg, rt)
    infos = []
    while gradient_norm(alg, rt) > 1e-12 * g0 and len(infos) < 30:
        infos.append(alg.step())
    ref = LogisticRegression(C=1.0, fit_intercept=False, solver="newton-cholesky",
                             tol=1e-12, max_iter=100).fit(X, y)    # C = 1/(lambda n) = 1
    np.testing.assert_allclose(alg.w, ref.coef_.ravel(), rtol=0,
                               atol=1e-8 * np.abs(ref.coef_).max())
    assert not alg.stalled and len(infos) < 15                     # quadratic convergence
    # the base's rounds: one gradient round and one line-search round per iteration
    # (ls_steps 2: alpha 1 and 1/2, enough for exact Newton steps on this problem)
    assert rt.algo.rounds == 2 * len(infos)
    assert [i["step_size"] for i in infos[-3:]] == [1.0] * 3


def test_the_shared_stall_when_the_line_search_finds_no_decrease():
    class Ascent(NumpyNewton):
        def direction(self, it):
            return -it.g                                           # uphill: nothing passes

    X, y = synthetic()
    alg, rt = setup(Ascent, X, y)
    alg.data = (X.toarray(), y, 1.0 / X.shape[0])
    info = alg.step()
    assert alg.stalled == P.NO_DECREASE and info["step_size"] == 0.0
    np.testing.assert_array_equal(alg.w, 0.0)
    # 1 gradient round + max_backtracks / ls_steps line-search rounds
    assert rt.algo.rounds == 1 + LINE_SEARCH["max_backtracks"].default // 2


def test_newton_and_giant_with_one_worker_are_the_numpy_newton_iterates():
    """The methods differ only in their direction: with the same direction maths
    (Cholesky on Hess f; GIANT with one shard, whose local Hessian is Hess f)
    the template gives the same iterates up to rounding."""
    X, y = synthetic(seed=1)
    ref, _ = setup(NumpyNewton, X, y)
    ref.data = (X.toarray(), y, 1.0 / X.shape[0])
    newton, _ = setup(Newton, X, y, solver="cholesky")
    giant, _ = setup(GIANT, X, y, K=1, solver="cholesky", direction="local")
    for _ in range(5):
        a, b, c = ref.step(), newton.step(), giant.step()
        assert a["step_size"] == b["step_size"] == c["step_size"]
        for alg in (newton, giant):
            np.testing.assert_allclose(alg.w, ref.w, rtol=0, atol=1e-11 * np.abs(ref.w).max())
    for cls in (Tron, GIANT, RANL):
        assert cls.step is NewtonType.step                        # no private iteration
    # newton's own step only chooses the NewtonType that steps: itself, or its Tron
    assert newton.solver() == "cholesky" and newton.tron is None
    # Adaptive LocalNewton's GIANT phase is a GIANT (delta huge: it switches at once)
    aln, _ = setup(AdaptiveLocalNewton, X, y, L0=1, delta=1e9)
    aln.step(), aln.step()
    assert type(aln.giant) is GIANT
    aln.step()
    assert aln.giant.w is aln.w


def test_cg_bookkeeping_lives_in_the_base_and_keeps_its_checkpoint_name():
    X, y = synthetic(seed=2)
    chol, _ = setup(Newton, X, y, solver="cholesky")
    cg, rt = setup(Newton, X, y, solver="cg")
    g0 = gradient_norm(cg, rt)
    chol.step()
    info = cg.step()
    assert "g0_norm" not in vars(chol)                   # set only by a CG direction
    assert vars(cg)["g0_norm"] == pytest.approx(g0, rel=1e-14) and info["cg_iterations"] >= 1
    np.testing.assert_allclose(cg.w, chol.w, rtol=0, atol=1e-1 * np.abs(chol.w).max())


# -- the shared mini-batch gradient ------------------------------------------
def shard_with_an_empty_row(loss, n=40, d=7, seed=3):
    rng = np.random.default_rng(seed)
    X = sp.random(n, d, density=0.4, random_state=seed, format="lil")
    X[5, :] = 0
    X = sp.csr_matrix(X)
    X.eliminate_zeros()
    y = np.where(rng.random(n) < 0.5, -1.0, 1.0) if loss == "logistic" else rng.standard_normal(n)
    return Shard(X, y, loss, lam=0.05)


def numpy_grad(sh, w, rows):
    Xb = sh.X.toarray()[rows]
    return Xb.T @ sh.loss.deriv(Xb @ w, sh.y[rows]) / len(rows) + sh.lam * w


@pytest.mark.parametrize("loss", ["logistic", "ridge"])
@pytest.mark.parametrize("batch", [1, 6, 39])
def test_minibatch_gradient_on_the_sampled_rows_matches_numpy(loss, batch):
    sh = shard_with_an_empty_row(loss)
    rng = np.random.default_rng(11)
    w = rng.standard_normal(sh.d)
    for _ in range(5):
        rows = M.sample_rows(rng, sh.n, batch)
        assert len(rows) == batch and np.all(np.diff(rows) > 0) and 0 <= rows[0] <= rows[-1] < sh.n
        got = M.mean_grad(sh.loss, sh.lam, w, M.rows_of(sh, rows))
        np.testing.assert_allclose(got, numpy_grad(sh, w, rows), rtol=1e-13, atol=1e-14)
        # the entries form (Local SGD's) sums the same products in the same order
        Xb = sh.X[rows]
        E = M.Entries(Xb.indices.astype(np.intp), Xb.data,
                      np.repeat(np.arange(batch), np.diff(Xb.indptr)), sh.y[rows])
        np.testing.assert_array_equal(M.grad_sum(sh.loss, w, E),
                                      M.grad_sum(sh.loss, w, M.rows_of(sh, rows)))
    # the whole shard: nothing drawn from the stream
    state = rng.bit_generator.state
    assert M.sample_rows(rng, sh.n, sh.n) is None and M.sample_rows(rng, sh.n, None) is None
    assert rng.bit_generator.state == state
    np.testing.assert_allclose(M.mean_grad(sh.loss, sh.lam, w, M.rows_of(sh)),
                               sh.local_grad(w), rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("batch", [1, 4])
def test_local_sgd_batches_give_the_numpy_gradient_of_their_rows(batch):
    sh = shard_with_an_empty_row("logistic")
    rng, state = np.random.default_rng(5), {"pos": sh.n}
    w = np.linspace(-1.0, 1.0, sh.d)
    seen = []
    for B in M.batches(sh, rng, state, batch, 2 * sh.n // batch):
        dense = np.zeros((len(B.y), sh.d))
        dense[0 if B.rows is None else B.rows, B.ind] = B.val
        want = dense.T @ sh.loss.deriv(dense @ w, B.y) / len(B.y) + sh.lam * w
        got = M.stochastic_grad(sh.loss, sh.lam, w, *B)
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-14)
        seen.append(len(B.y))
    assert sum(seen) == 2 * sh.n - (2 * sh.n) % batch
