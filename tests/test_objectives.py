"""Objectives and linear algebra against independent references:
central finite differences, the dense Hessian, scipy's solvers, closed forms."""

import numpy as np
import pytest
import scipy.sparse as sp

from distnewton.linalg import cg, cho_factor_damped, solve_spd
from distnewton.objectives import Shard, global_value, regularise


def random_shard(loss, n=60, d=8, density=0.4, seed=0, lam=0.1):
    rng = np.random.default_rng(seed)
    X = sp.random(n, d, density=density, random_state=seed, format="csr") * 2.0
    y = np.sign(rng.standard_normal(n)) if loss == "logistic" else rng.standard_normal(n)
    return Shard(X, y, loss, lam), rng


@pytest.mark.parametrize("loss", ["logistic", "ridge"])
def test_gradient_matches_central_differences(loss):
    shard, rng = random_shard(loss)
    w, h = rng.standard_normal(shard.d), 1e-6
    g = shard.local_grad(w)
    fd = np.array([(shard.local_value(w + h * e) - shard.local_value(w - h * e)) / (2 * h)
                   for e in np.eye(shard.d)])
    # central differences: error O(h^2 f''') + O(eps f / h) ~ 1e-10 here
    np.testing.assert_allclose(g, fd, rtol=0, atol=1e-8)


@pytest.mark.parametrize("loss", ["logistic", "ridge"])
def test_hvp_and_hessian_match_differences_of_the_gradient(loss):
    shard, rng = random_shard(loss, seed=1)
    w, v, h = rng.standard_normal(shard.d), rng.standard_normal(shard.d), 1e-6
    fd = (shard.local_grad(w + h * v) - shard.local_grad(w - h * v)) / (2 * h)
    hv = shard.local_hvp_operator(w)(v)
    np.testing.assert_allclose(hv, fd, rtol=0, atol=1e-8)
    np.testing.assert_allclose(shard.local_hessian(w) @ v, hv, rtol=1e-12, atol=1e-14)


def test_sparse_and_dense_hessian_paths_agree(monkeypatch):
    import distnewton.objectives as O
    shard, rng = random_shard("logistic", seed=2)
    w, v = rng.standard_normal(shard.d), rng.standard_normal(shard.d)
    assert shard._dense_T is not None and shard._blas        # 40% dense: BLAS path
    dense = shard.hess_sum(w)
    monkeypatch.setattr(O, "DENSE_HESSIAN_BYTES", 0)
    sparse_only = O.Shard(shard.X, shard.y, "logistic", shard.lam)
    assert sparse_only._dense_T is None and not sparse_only._blas
    np.testing.assert_allclose(sparse_only.hess_sum(w), dense, rtol=1e-13, atol=1e-13)
    for a, b in ((shard.loss_grad_sum(w), sparse_only.loss_grad_sum(w)),
                 ((shard.hvp_sum(w, v),), (sparse_only.hvp_sum(w, v),))):
        for x, y in zip(a, b):
            np.testing.assert_allclose(x, y, rtol=1e-13, atol=1e-13)


def test_logistic_is_overflow_safe():
    X = sp.csr_matrix(np.array([[1000.0], [-1000.0]]))
    shard = Shard(X, np.array([1.0, 1.0]), "logistic", 0.0)
    w = np.array([1.0])
    # log(1 + e^-1000) = 0 and log(1 + e^1000) = 1000 exactly in double precision
    assert shard.loss_sum(w) == pytest.approx(1000.0, rel=1e-15)
    assert np.all(np.isfinite(shard.local_grad(w)))


def test_global_pieces_from_sums_equal_the_whole_objective():
    shard, rng = random_shard("logistic", n=90, seed=3)
    w = rng.standard_normal(shard.d)
    halves = [Shard(shard.X[:40], shard.y[:40], "logistic", shard.lam),
              Shard(shard.X[40:], shard.y[40:], "logistic", shard.lam)]
    f = global_value(sum(s.loss_sum(w) for s in halves), 90, shard.lam, w)
    g = regularise(sum(s.loss_grad_sum(w)[1] for s in halves), 90, shard.lam, w)
    assert f == pytest.approx(shard.local_value(w), rel=1e-14)
    np.testing.assert_allclose(g, shard.local_grad(w), rtol=1e-13)


def test_ridge_newton_step_is_the_closed_form():
    shard, rng = random_shard("ridge", n=200, d=10, seed=4, lam=0.05)
    X = shard.X.toarray()
    # closed form: (X^T X / n + lam I) w = X^T y / n
    w_star = np.linalg.solve(X.T @ X / shard.n + shard.lam * np.eye(10), X.T @ shard.y / shard.n)
    w0 = np.zeros(10)
    w1 = w0 - solve_spd(shard.local_hessian(w0), shard.local_grad(w0))
    np.testing.assert_allclose(w1, w_star, rtol=1e-10, atol=1e-12)


def test_cg_solves_like_lapack():
    shard, rng = random_shard("logistic", n=300, d=12, seed=5)
    w, b = rng.standard_normal(12), rng.standard_normal(12)
    x, its = cg(shard.local_hvp_operator(w), b, rtol=1e-12)
    np.testing.assert_allclose(x, np.linalg.solve(shard.local_hessian(w), b), rtol=1e-9)
    assert 0 < its <= 12 * 10


@pytest.mark.parametrize("loss", ["logistic", "ridge"])
def test_jacobi_preconditioned_cg_uses_the_hessian_diagonal(loss):
    shard, rng = random_shard(loss, n=300, d=12, seed=6)
    w, b = rng.standard_normal(12), rng.standard_normal(12)
    H = shard.local_hessian(w)
    diag = shard.hess_diag_sum(w) / shard.n + shard.lam
    np.testing.assert_allclose(diag, np.diag(H), rtol=1e-13)
    x, its = cg(shard.local_hvp_operator(w), b, rtol=1e-12, diag=diag)
    np.testing.assert_allclose(x, np.linalg.solve(H, b), rtol=1e-9)
    assert 0 < its <= 12 * 10


def test_cholesky_falls_back_to_damping_on_singular_matrix(caplog):
    A = np.array([[1.0, 1.0], [1.0, 1.0]])          # rank 1: Cholesky fails
    (_, tau) = cho_factor_damped(A)
    assert tau > 0
    x = solve_spd(A, np.array([1.0, 1.0]))
    np.testing.assert_allclose(A @ x, [1.0, 1.0], rtol=1e-6)
    assert "damped" in caplog.text


def test_blas_pinning_covers_libraries_loaded_later():
    """run.blas_threads must also bind scipy.linalg's own OpenBLAS, which distnewton
    imports lazily after pinning (unpinned, it ran 2 threads per rank: a 300 x 300
    Cholesky took 120 ms on the oversubscribed 2-core machine)."""
    import subprocess
    import sys
    code = ("import numpy\nfrom distnewton.runtime.blas import pin_blas_threads\npin_blas_threads(1)\n"
            "import scipy.linalg\nfrom threadpoolctl import threadpool_info\n"
            "print(sorted({i['num_threads'] for i in threadpool_info()}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={k: v for k, v in __import__("os").environ.items()
                                          if not k.endswith("_NUM_THREADS")})
    assert out.stdout.strip() == "[1]", out.stdout


def test_logistic_pieces_match_scipy_special_over_the_whole_range():
    """The numpy-only logistic value, derivative and curvature against scipy.special
    (log_expit, expit: an independent implementation), from |m| = 1e-8 to 800, where
    a naive exp overflows; the scalar branch (per-sample SGD) equals the array one."""
    from scipy.special import expit, log_expit
    from distnewton.objectives import Logistic
    z = np.concatenate([-np.logspace(-8, np.log10(800), 400), [0.0],
                        np.logspace(-8, np.log10(800), 400)])
    for y in (1.0, -1.0):
        yv = np.full_like(z, y)
        value, deriv, curv = Logistic.parts(z, yv)
        m = y * z
        np.testing.assert_allclose(value, -log_expit(m), rtol=1e-14, atol=0)
        np.testing.assert_allclose(deriv, -y * expit(-m), rtol=1e-14, atol=0)
        np.testing.assert_allclose(curv, expit(m) * expit(-m), rtol=1e-13, atol=1e-300)
        np.testing.assert_array_equal(Logistic.value(z, yv), value)
        np.testing.assert_array_equal(Logistic.deriv(z, yv), deriv)
        np.testing.assert_array_equal(Logistic.deriv2(z, yv), curv)
        for zi, di, ci in zip(z[::37], deriv[::37], curv[::37]):
            assert Logistic.deriv(float(zi), y) == pytest.approx(di, rel=1e-15, abs=0)
            assert Logistic.deriv2(float(zi), y) == pytest.approx(ci, rel=1e-15, abs=0)


@pytest.mark.parametrize("density", [0.05, 0.5, 1.0])
def test_upper_hessian_triangle_equals_the_dense_hessian(density):
    """hess_upper_sum (pairs of non-zeros, bincount) against X^T D X formed densely."""
    import scipy.sparse as sp

    from distnewton.objectives import Shard
    rng = np.random.default_rng(3)
    X = sp.random(60, 12, density=density, random_state=4, format="csr")
    y = np.where(rng.random(60) < 0.5, 1.0, -1.0)
    w = rng.standard_normal(12)
    shard = Shard(X, y, "logistic", 0.1)
    D = 1 / (1 + np.exp(-y * (X @ w)))
    D = D * (1 - D)
    H = (X.toarray().T * D) @ X.toarray()
    assert np.allclose(shard.hess_upper_sum(w), H[np.triu_indices(12)], rtol=1e-13, atol=1e-15)


def test_sparse_hessian_through_the_pair_map_and_the_csr_product(monkeypatch):
    """A sparse shard's X^T D X (pair map; rows of 0..12 non-zeros, unsorted
    indices, row weights) against numpy's dense product; with the map over its
    byte budget the CSR-product fallback gives the same."""
    import scipy.sparse as sp

    import distnewton.objectives as O
    rng = np.random.default_rng(5)
    n, d = 300, 40
    X = sp.random(n, d, density=0.08, random_state=6, format="lil")
    X[7, :] = 0                                     # an empty row
    X[8, :12] = rng.standard_normal(12)             # a long one
    X = X.tocsr()
    X.indices[X.indptr[8]:X.indptr[9]] = X.indices[X.indptr[8]:X.indptr[9]][::-1].copy()
    X.data[X.indptr[8]:X.indptr[9]] = X.data[X.indptr[8]:X.indptr[9]][::-1].copy()
    X.has_sorted_indices = False
    y = np.where(rng.random(n) < 0.5, 1.0, -1.0)
    s = rng.uniform(0.5, 2.0, n)
    w = rng.standard_normal(d)
    shard = O.Shard(X, y, "logistic", 0.1, weights=s)
    assert shard._dense_T is None and shard.pair_map() is not False
    A = X.toarray()
    z = y * (A @ w)
    p = 1 / (1 + np.exp(-z))
    H = (A.T * (s * p * (1 - p))) @ A
    np.testing.assert_allclose(shard.hess_sum(w), H, rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(shard.hess_sum(w), shard.hess_sum(w).T)
    import distnewton.pairs as pairs                # the build in chunks of 7 pairs: the
    monkeypatch.setattr(pairs, "BUILD_CHUNK", 7)    # same map (chunks of 1 row, of 2, ...)
    P, order = shard.pair_map()
    Q, order_q = pairs.row_pairs(X)
    np.testing.assert_array_equal(order_q, order)
    assert (Q != P).nnz == 0 and np.array_equal(Q.indptr, P.indptr)
    monkeypatch.setattr(O, "PAIRS_MAX_BYTES", 0)
    fallback = O.Shard(X, y, "logistic", 0.1, weights=s)
    assert fallback.pair_map() is False
    np.testing.assert_allclose(fallback.hess_sum(w), H, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(fallback.hess_upper_sum(w), H[np.triu_indices(d)],
                               rtol=1e-12, atol=1e-14)
