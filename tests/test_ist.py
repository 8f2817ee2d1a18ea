"""IST (Independent Subnetwork Training, Shulgin & Richtarik Algorithm 1) against
independent references: fixed-step ``gd``, the closed-form ridge optimum
(numpy solve), Monte Carlo moments of the sketches, bytes counted by hand and a
real ``mpiexec`` run."""

from types import SimpleNamespace

import numpy as np
import pytest
from sklearn.datasets import load_svmlight_file

from support.launch import cli, read_result, write_config
from support.references import a9a_like, german_like, ist_quadratic

from distnewton.algorithms.base import Problem
from distnewton.algorithms.ist.ist import IST, quadratic_analysis
from distnewton.algorithms.ist.sketches import draw_sketches, perm_assignment
from distnewton.data import partition
from distnewton.objectives import Shard
from distnewton.runtime.sim import SimRuntime


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    """Synthetic stand-ins of the real sets' shapes and scales
    (tests/support/references.py): ``a9a`` (3000 x 123, 14 binary features per row)
    and ``german`` (dense 1000 x 24 in [-1, 1]).  Generated on every clone: no test
    here needs the real sets."""
    tmp = tmp_path_factory.mktemp("ist")
    return {"a9a": {"train": str(a9a_like(tmp / "a.svm")), "n_features": 123},
            "german": str(german_like(tmp / "g.svm"))}


def run(tmp_path, tag, data, algorithm, model=None, workers=4, n=None, **run_keys):
    """One CLI run (sim with ``workers``, or ``mpiexec -n n``); returns (attrs, hist, w)."""
    cfg = write_config(tmp_path / f"{tag}.yaml", data=data,
                       model=model or {"loss": "logistic", "lambda": "1/n"},
                       algorithm=algorithm, run={"grad_rtol": None, **run_keys})
    out = tmp_path / f"{tag}.h5"
    backend = [] if n else ["--backend", "sim", "--workers", workers]
    res = cli("run", cfg, *backend, "-o", out, "-q", n=n)
    assert res.returncode == 0, res.stderr
    return read_result(out)


@pytest.fixture(scope="module")
def german(sets):
    X, y = load_svmlight_file(sets["german"], zero_based=False)
    return X, y


# -- identity == gd ------------------------------------------------------------
@pytest.mark.slow
def test_identity_sketch_is_fixed_step_gd_with_unequal_shards(tmp_path, sets):
    """label_skew shards are very unequal; IST runs on F_i = (K n_i/N) f_i,
    so (1/K) sum_i (x - gamma grad F_i(x)) = x - gamma grad f(x) for any sizes."""
    data = {**sets["a9a"], "partition": "label_skew"}
    attrs, h_ist, w_ist = run(tmp_path, "ist", data, {"name": "ist", "sketch": "identity",
                                                      "gamma": 0.5}, max_rounds=25)
    _, h_gd, w_gd = run(tmp_path, "gd", data, {"name": "gd", "step_size": 0.5}, max_rounds=25)
    sizes = attrs["shard_sizes"]
    assert sizes.max() > 2 * sizes.min()                 # really unequal shards
    for col in ("iteration", "comm_rounds"):
        np.testing.assert_array_equal(h_ist[col], h_gd[col])
    for col in ("loss", "grad_norm"):
        np.testing.assert_allclose(h_ist[col], h_gd[col], rtol=1e-12, atol=0)
    np.testing.assert_allclose(w_ist, w_gd, rtol=0, atol=1e-12 * np.abs(w_gd).max())
    assert np.abs(w_gd).max() > 0.1                      # it moved
    # bytes differ by design: x (d) + phi (1) broadcast, z_i (d) gathered per worker
    K, d = 4, 123
    np.testing.assert_array_equal(np.diff(h_ist["bytes_down"]), K * (64 + 8 * (d + 1)))
    np.testing.assert_array_equal(np.diff(h_ist["bytes_up"]), 8 * K * d)


# -- bytes by hand ----------------------------------------------------------------
@pytest.mark.slow
def test_perm_bytes_by_hand(tmp_path, sets):
    """Per round, d >= K: header + phi broadcast to K workers (K*(64 + 8)), the
    Scatterv counts (8K) and the payloads [q_i, S_i, w_i, scale] (8 (2d + 2K));
    up: each worker's block, 8d in all."""
    K, d = 4, 123
    _, h, _ = run(tmp_path, "perm", sets["a9a"], {"name": "ist", "sketch": "perm"}, max_rounds=3)
    np.testing.assert_array_equal(np.diff(h["bytes_down"]), K * 72 + 8 * K + 8 * (2 * d + 2 * K))
    np.testing.assert_array_equal(np.diff(h["bytes_down"]), 2352)
    np.testing.assert_array_equal(np.diff(h["bytes_up"]), 8 * d)
    np.testing.assert_array_equal(h["comm_rounds"], [0, 1, 2, 3])


@pytest.mark.slow
def test_perm_with_more_workers_than_features_bytes_and_precond_setup_round(tmp_path, sets):
    """K = 30 > d = 24: every worker gets one coordinate, payload [1, j, w_j, scale]
    (4 floats) and replies 1 float.  perm_precond spends one extra round, once, for
    the curvature diagonals (header down, d floats up per worker)."""
    K, d = 30, 24
    data = {"train": sets["german"]}
    model = {"loss": "ridge", "lambda": 1e-3}
    _, h, _ = run(tmp_path, "permK", data, {"name": "ist", "sketch": "perm", "gamma": 0.05},
                  model, workers=K, max_rounds=3)
    np.testing.assert_array_equal(np.diff(h["bytes_down"]), K * 72 + 8 * K + 8 * 4 * K)
    np.testing.assert_array_equal(np.diff(h["bytes_up"]), 8 * K)
    assert np.isnan(h["radius"]).all()                   # no analysis for K > d
    _, h, _ = run(tmp_path, "pre", data, {"name": "ist", "sketch": "perm_precond",
                                          "gamma": 0.05}, model, workers=K, max_rounds=3)
    np.testing.assert_array_equal(h["comm_rounds"], [0, 2, 3])
    assert h["bytes_down"][1] == K * 64 + (K * 72 + 8 * K + 8 * 4 * K)
    assert h["bytes_up"][1] == 8 * K * d + 8 * K
    assert np.isfinite(h["loss"]).all()


def test_perm_assignment_covers_each_coordinate_with_scales_summing_to_K():
    rng = np.random.default_rng(0)
    for d, K in ((123, 4), (24, 5), (24, 30), (7, 7), (5, 12)):
        hits = np.zeros((K, d))
        for _ in range(400):
            blocks = perm_assignment(rng, d, K)
            cov = np.zeros(d)
            for i, (idx, c) in enumerate(blocks):
                cov[idx] += c
                hits[i, idx] += c
            np.testing.assert_allclose(cov, K, rtol=1e-15)        # (1/K) sum_i C_i = I
            sizes = [idx.size for idx, _ in blocks]
            assert max(sizes) - min(sizes) <= 1 and sum(sizes) == max(d, K)
        # E[C_i] = I: every worker's average diagonal is about one everywhere
        assert abs(hits.mean() / 400 - 1) < 1e-12
        assert np.abs(hits.sum(axis=1) / (400 * d) - 1).max() < 0.1


# -- the analysis -------------------------------------------------------------------
@pytest.mark.parametrize("K,sketch", [(4, "perm"), (5, "perm"), (4, "perm_precond"),
                                      (4, "bernoulli")])
def test_exact_moments_match_monte_carlo(german, K, sketch):
    """rho = lambda_max(E[(I - gamma B)^2]), sigma^2 = E||B x* - h||^2 and
    E[B] from the closed forms agree with 3000 sampled sketches."""
    X, y = german
    parts = partition(y, K, "label_skew", seed=0)
    Ls, bs, x_star = ist_quadratic(X, y, parts, 1e-3)
    gamma, p, d = 0.1, 0.5, X.shape[1]
    res = quadratic_analysis(Ls, bs, sketch, gamma, p)
    np.testing.assert_allclose(res["x_star"], x_star, rtol=1e-10)
    diag = np.array([np.diag(L) for L in Ls])
    rng = np.random.default_rng(1)
    T = 3000
    EB, EB2, s2 = np.zeros((d, d)), np.zeros((d, d)), 0.0
    for _ in range(T):
        B, h = np.zeros((d, d)), np.zeros(d)
        for (idx, c), L, b in zip(draw_sketches(rng, sketch, d, K, p, diag), Ls, bs):
            C = np.zeros(d)
            C[idx] = c
            B += C[:, None] * L * C[None, :] / K
            h += C * b / K
        EB += B / T
        EB2 += B @ B / T
        g = B @ x_star - h
        s2 += g @ g / T
    rho = np.linalg.eigvalsh(np.eye(d) - 2 * gamma * EB + gamma ** 2 * EB2).max()
    assert abs(rho - res["rho"]) < 1e-2 * (1 - res["rho"]) + 3e-3
    assert np.sqrt(s2) == pytest.approx(res["sigma"], rel=0.04)
    assert np.abs(EB - res["EB"]).max() < 0.05 * np.abs(res["EB"]).max()


def api_run(X, yv, parts, lam, w0, rounds, **params):
    """IST through the Python API (the CLI always starts at w0 = 0)."""
    shards = [Shard(X[p], yv[p], "ridge", lam) for p in parts]
    full = {k: v.default for k, v in IST.params.items()}
    full.update(params)
    rt = SimRuntime(shards, 0, SimpleNamespace(**full))
    prob = Problem(n=X.shape[0], d=X.shape[1], lam=lam, loss="ridge",
                   sizes=tuple(len(p) for p in parts))
    alg = IST(rt, prob, full, w0, seed=0)
    return alg, [alg.step() for _ in range(rounds)]


def test_interpolation_b_zero_converges_to_the_optimum_with_perm(german):
    """b_i = 0 (labels 0, lambda = 0; german-like features, label_skew shards): x* = 0
    and g_k(x*) = 0 for every sketch, so sigma = R = 0 and
    sqrt(E||x^k||^2) <= rho^{k/2} ||x^0||: linear convergence to the optimum."""
    X, y = german
    parts = partition(y, 4, "label_skew", seed=0)
    w0 = np.random.default_rng(0).standard_normal(X.shape[1])
    alg, info = api_run(X, np.zeros(X.shape[0]), parts, 0.0, w0, 300, sketch="perm", gamma=0.1)
    assert info[-1]["radius"] == 0.0 and info[-1]["rho"] < 0.9
    assert np.linalg.norm(alg.w) < 1e-10 * np.linalg.norm(w0)      # measured 1.9e-13
    assert info[-1]["dist_opt"] == pytest.approx(np.linalg.norm(alg.w), rel=1e-12)
    assert info[-1]["dist_opt"] <= info[-1]["dist_bound"]


def test_consistent_but_shifted_problem_is_not_interpolation_for_ist(german):
    """y = X w_true exactly (lambda = 0): x* = w_true, but b_i = L_i w_true != 0 and
    the sketch acts on x, not on x - x*: perm IST stalls far from w_true while the
    identity sketch (gd) converges."""
    X, y = german
    parts = partition(y, 4, "label_skew", seed=0)
    w_true = np.random.default_rng(1).standard_normal(X.shape[1])
    yv = X @ w_true
    d = X.shape[1]
    alg, info = api_run(X, yv, parts, 0.0, np.zeros(d), 300, sketch="perm", gamma=0.1)
    np.testing.assert_allclose(alg.x_star, w_true, rtol=0, atol=1e-10)
    assert min(i["dist_opt"] for i in info[150:]) > 0.5 * np.linalg.norm(w_true)
    alg, info = api_run(X, yv, parts, 0.0, np.zeros(d), 300, sketch="identity", gamma=0.2)
    assert info[-1]["dist_opt"] < 0.1 * info[0]["dist_opt"]


@pytest.mark.slow
def test_heterogeneous_ridge_perm_stalls_within_the_bound(tmp_path, sets, german):
    """label_skew shards of the german-like set (ridge, lambda = 1e-3, K = 4): naive perm IST
    does not converge to x* = L^{-1} b.  Its mean tends to m = E[B]^{-1} E[h] != x*,
    and in mean square it stays in the ball of radius R = gamma sigma/(1 - sqrt(rho))
    (ist.py docstring), so for the stationary tail

        ||m - x*||^2  <=  E||x^k - x*||^2  <=  R^2.

    (On german.numer_scale itself: bias 0.604, tail RMS 0.68, R 3.77, ||x*|| 0.75.)"""
    X, y = german
    lam, K = 1e-3, 4
    attrs, h, w = run(tmp_path, "stall", {"train": sets["german"], "partition": "label_skew"},
                      {"name": "ist", "sketch": "perm", "gamma": 0.1},
                      {"loss": "ridge", "lambda": lam}, workers=K, max_rounds=600)
    parts = partition(y, K, "label_skew", seed=0)
    np.testing.assert_array_equal(attrs["shard_sizes"], [len(p) for p in parts])
    Ls, bs, x_star = ist_quadratic(X, y, parts, lam)
    res = quadratic_analysis(Ls, bs, "perm", 0.1)
    dist = h["dist_opt"][1:]
    assert dist[-1] == pytest.approx(np.linalg.norm(w - x_star), rel=1e-9)   # numpy x*
    assert h["radius"][-1] == pytest.approx(res["radius"], rel=1e-9)
    assert h["bias"][-1] == pytest.approx(res["bias"], rel=1e-9)
    tail = dist[len(dist) // 2:]
    rms = np.sqrt(np.mean(tail ** 2))
    assert 0.9 * res["bias"] <= rms <= res["radius"]
    assert tail.min() > 0.5 * res["bias"] > 0.3 * np.linalg.norm(x_star)   # a real stall
    assert np.all(dist <= h["dist_bound"][1:])            # measured under the RMS bound


# -- sim == mpi ------------------------------------------------------------------
@pytest.mark.mpi
def test_sim_equals_mpi_with_batches_and_local_steps(tmp_path, sets):
    """Master stream (sketches) and worker streams (mini-batches) agree across backends."""
    algo = {"name": "ist", "sketch": "perm", "gamma": 0.3, "batch": 64, "local_steps": 2}
    _, hs, ws = run(tmp_path, "sim", sets["a9a"], algo, workers=2, max_rounds=12)
    _, hm, wm = run(tmp_path, "mpi", sets["a9a"], algo, n=3, max_rounds=12)
    for col in ("iteration", "comm_rounds", "bytes_up", "bytes_down"):
        np.testing.assert_array_equal(hs[col], hm[col])
    np.testing.assert_allclose(hs["loss"], hm["loss"], rtol=1e-12)
    np.testing.assert_allclose(ws, wm, rtol=0, atol=1e-11 * np.abs(ws).max())
    assert hs["loss"][-1] < 0.9 * hs["loss"][0]               # it learns: measured 0.82 f(0)
