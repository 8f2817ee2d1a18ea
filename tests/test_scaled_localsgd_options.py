"""Scaled Local SGD's options beyond the defaults: ``beta_schedule: theory`` (the
averaging weights capped, Corollary 1's condition re-derived), ``step_size:
theory`` (alpha / (4 L)), ``beta1`` (Adam's first moment) and ``estimate: exact``
(oasis on the batch Hessian's diagonal).  The pieces against numpy re-implementations
and brute force (the constants against eigenvalues and every sign vector), the
worker tasks against the naive loop, whole runs (bytes by hand, sim == mpiexec -n 3
and -n 4), and bad values (exit code 2, the key named)."""

import itertools
import re

import numpy as np
import pytest
import scipy.sparse as sp

from distnewton.algorithms.localsgd import scaled as S
from distnewton.algorithms.localsgd import scaled_rules as R
from distnewton.config import resolve
from distnewton.errors import UserError
from distnewton.objectives import Shard
from distnewton.runtime import WorkerContext
from support.launch import cli, read_result, write_config
from support.scaled_localsgd import (base_cfg, capped_average, csr_batch, naive_rounds, params,
                                     raw_config, sim_inprocess, tiny_shard)


# -- the averages ----------------------------------------------------------------
@pytest.mark.parametrize("rule", ["adam", "rmsprop", "oasis"])
def test_theory_schedule_is_the_capped_average(rule):
    """ema_update with a cap == the weights written out (capped_average); a cap
    that never binds gives the constant schedule (Adam: the closed form
    D_t^2 = sum_i beta^(t-i) (1 - beta) s_i / (1 - beta^t))."""
    rng, beta = np.random.default_rng(2), 0.8
    samples = [rng.uniform(-1, 2, 4) ** (2 if rule != "oasis" else 1) for _ in range(12)]
    for cap in (1.0, 0.05, 1e-6):
        m, c, m_ref, mc, mref_c = np.zeros(4), 0, np.zeros(4), np.zeros(4), 0
        for t, s in enumerate(samples, start=1):
            m, c, D = S.ema_update(rule, beta, m, c, s, cap)
            m_ref = capped_average(rule, beta, cap, m_ref, t, s)
            np.testing.assert_allclose(D, m_ref if rule == "oasis" else np.sqrt(m_ref),
                                       rtol=1e-13)
            mc, mref_c, Dc = S.ema_update(rule, beta, mc, mref_c, s)       # constant
            if cap == 1.0:
                np.testing.assert_allclose(D, Dc, rtol=1e-13)
        if rule == "adam" and cap == 1.0:
            T = len(samples)
            closed = sum(beta ** (T - i) * (1 - beta) * s
                         for i, s in enumerate(samples, start=1)) / (1 - beta ** T)
            np.testing.assert_allclose(D, np.sqrt(closed), rtol=1e-13)
        if cap == 1e-6:           # frozen at the first: 11 moves of at most cap |s - m|
            first = samples[0] if rule != "rmsprop" else (1 - beta) * samples[0]
            assert np.all(np.abs(m - first) <= 11 * 1e-6 * 2 * np.abs(samples).max())
    assert R.beta_t(rule, beta, 1, 0.01) == (beta if rule == "rmsprop" else 0.0)
    assert R.beta_t(rule, beta, 5, 1e-9) == 1 - 1e-9


@pytest.mark.parametrize("rule", ["adam", "rmsprop", "oasis"])
def test_growth_bound_behind_the_cap(rule):
    """D_hat_{t+1} <= (1 + kappa (1 - beta_t)) D_hat_t for samples within their
    bound (|s| <= Gamma_s for oasis, s = g^2 with |g| <= G): the Lemma the cap
    rests on, on adversarial samples (alternating extremes) and random ones."""
    alpha, beta, bound = 0.05, 0.9, 2.0
    th = R.Theory(L=1.0, mu=0.1, gamma_s=bound, G=bound, R=1.0)
    _, kappa = R.bounds(rule, alpha, th)
    rng = np.random.default_rng(4)
    for cap in (1.0, 1e-4):                      # the constant weights, and the theory's
        m, c, D = S.ema_update(rule, beta, np.zeros(6), 0,
                               np.full(6, alpha if rule == "oasis" else alpha ** 2), cap)
        worst = 0.0
        for t in range(2, 300):
            x = rng.choice([-bound, bound, 0.0], 6) if t % 2 else rng.uniform(-bound, bound, 6)
            s = x if rule == "oasis" else x * x
            before = S.clip(D, alpha)
            m, c, D = S.ema_update(rule, beta, m, c, s, cap)
            ratio = np.max(S.clip(D, alpha) / before - 1) / (1 - R.beta_t(rule, beta, c, cap))
            worst = max(worst, ratio)
        assert worst <= kappa * (1 + 1e-12), (worst, kappa)
    assert worst >= 0.9 * kappa                  # small weights: the bound is nearly tight


# -- the constants ---------------------------------------------------------------
def shards_of(sh, cut):
    """Two shards of the rows of ``sh`` (rows < cut, rows >= cut)."""
    return [Shard(sh.X[a:b], sh.y[a:b], sh.loss.name, sh.lam,
                  weights=None if sh.s is None else sh.s[a:b])
            for a, b in ((0, cut), (cut, sh.n))]


@pytest.mark.parametrize("loss,weighted", [("logistic", False), ("ridge", False),
                                           ("logistic", True)])
def test_constants_against_brute_force(loss, weighted):
    """L = the largest eigenvalue over every one-row batch Hessian (numpy eigvalsh,
    l'' at its max: w = 0 for logistic); Gamma_s = the largest |v (.) H_z v| over
    every one-row batch and all 2^d sign vectors at w = 0 (attained); |g_i| <= G on
    the ball of radius R, and R = sqrt(2 f(0) / lambda)."""
    sh = tiny_shard(loss, n=11, d=5, seed=7)
    if weighted:
        sh = Shard(sh.X, sh.y, loss, sh.lam, weights=np.linspace(0.5, 2.0, sh.n))
    replies = [R.row_constants(part) for part in shards_of(sh, 6)]
    th = R.theory_constants(replies, loss, sh.penalty, sh.n)
    ex = R.theory_constants(replies, loss, sh.penalty, sh.n, estimate="exact")
    Xd, s = sh.X.toarray(), np.ones(sh.n) if sh.s is None else sh.s
    c2 = R.CURVATURE_MAX[loss]
    w0 = np.zeros(sh.d)
    eig = max(np.linalg.eigvalsh(c2 * s[j] * np.outer(Xd[j], Xd[j])).max() for j in range(sh.n))
    assert th.L == pytest.approx(eig + sh.lam, rel=1e-12)
    signs = [np.array(v, float) for v in itertools.product((-1, 1), repeat=sh.d)]
    one = [(csr_batch(sh, np.array([j])), s[j:j + 1]) for j in range(sh.n)]
    hut = max(np.abs(v * S.batch_hvp(sh.loss, sh.lam, w0, v, *B, sb)).max()
              for v in signs for B, sb in one)
    assert th.gamma_s == pytest.approx(hut, rel=1e-12)
    diag = max(np.abs(R.batch_hess_diag(sh.loss, sh.lam, w0, *B, sb)).max() for B, sb in one)
    assert ex.gamma_s == pytest.approx(diag, rel=1e-12)
    f0 = float(np.mean(s * sh.loss.value(np.zeros(sh.n), sh.y)))
    assert th.R == pytest.approx(np.sqrt(2 * f0 / sh.lam), rel=1e-12) and th.mu == sh.lam
    rng = np.random.default_rng(0)
    for _ in range(200):                         # points of the ball, every row's gradient
        w = rng.standard_normal(sh.d)
        w *= th.R * rng.uniform() ** (1 / sh.d) / np.linalg.norm(w)
        g = s[:, None] * sh.loss.deriv(Xd @ w, sh.y)[:, None] * Xd + sh.lam * w
        assert np.abs(g).max() <= th.G * (1 + 1e-12)
    assert R.theory_gamma("oasis", 0.01, th) == 0.01 / (4 * th.L)
    assert R.theory_gamma("identity", 0.01, th) == 1 / (4 * th.L)


def test_cap_is_the_corollary_condition():
    """cap kappa = h gamma mu / (2 Gamma), per rule, by hand."""
    th = R.Theory(L=3.5, mu=1e-3, gamma_s=0.5, G=2.0, R=10.0)
    alpha, gamma = 0.01, 0.03
    assert R.theory_cap("oasis", alpha, gamma, 10, th) == pytest.approx(
        10 * gamma * 1e-3 / (2 * 0.5) / (0.5 / alpha - 1), rel=1e-14)
    assert R.theory_cap("adam", alpha, gamma, 1, th) == pytest.approx(
        gamma * 1e-3 / (2 * 2.0) / ((2.0 ** 2 / alpha ** 2 - 1) / 2), rel=1e-14)
    th = th._replace(gamma_s=1e-3)          # Gamma = max(alpha, Gamma_s): D_hat = alpha I
    assert R.bounds("oasis", alpha, th) == (alpha, 0.0)
    assert R.theory_cap("oasis", alpha, gamma, 10, th) == 1.0


# -- the worker tasks --------------------------------------------------------------
@pytest.mark.parametrize("rule,mode,beta1,cap,estimate", [
    ("adam", "local", 0.9, 0.05, "hutchinson"), ("rmsprop", "local", 0.0, 0.02, "hutchinson"),
    ("oasis", "local", 0.5, 0.1, "exact"), ("oasis", "global", 0.7, None, "exact"),
    ("adam", "global", 0.9, None, "hutchinson"), ("identity", "local", 0.8, None, "hutchinson")])
def test_worker_tasks_with_the_options_follow_the_naive_loop(rule, mode, beta1, cap, estimate):
    """Three rounds of 6 steps against the naive dense loop (its own momentum,
    capped weights and exact diagonal); the step and cap arrive as ``knobs``."""
    sh = tiny_shard("logistic")
    p = params(scaling=rule, mode=mode, gamma=0.2, beta=0.8, alpha=0.05, local_steps=6,
               batch=4, beta1=beta1, estimate=estimate)
    ctx = WorkerContext(0, sh, np.random.default_rng(5), p)
    w0, dhat = np.linspace(-0.5, 0.5, sh.d), np.linspace(0.5, 2.0, sh.d)
    gamma = 0.13
    knobs = np.array([gamma, np.nan if cap is None else cap])
    if rule == "identity":       # D_hat = I: the global reference with dhat = 1, no statistic
        want = naive_rounds(sh, w0, np.random.default_rng(5), 3, 6, 4, gamma, "adam", 0.8,
                            0.05, "global", np.ones(sh.d), beta1=beta1)
    else:
        want = naive_rounds(sh, w0, np.random.default_rng(5), 3, 6, 4, gamma, rule, 0.8, 0.05,
                            mode, dhat, cap=cap, beta1=beta1, estimate=estimate)
    w = w0
    for x, stat in want:
        if mode == "local":
            np.testing.assert_allclose(S._local(ctx, w, knobs) / sh.n, x, rtol=1e-12,
                                       atol=1e-13)
        else:
            got = S._global(ctx, w, dhat, knobs) / sh.n
            np.testing.assert_allclose(got[:sh.d], x, rtol=1e-12, atol=1e-13)
            np.testing.assert_allclose(got[sh.d:], stat, rtol=1e-12, atol=1e-13)
        w = x
    assert ctx.state.get("moment_count", 0) == (18 if beta1 > 0 else 0)


# -- whole runs ----------------------------------------------------------------------
def test_theory_step_and_bytes_by_hand(slsgd_small):
    """step_size theory: gamma = alpha/(4 L), L = max ||x_j||^2 / 4 + lambda from the
    file (scipy); one constants round once (a header down, 7 floats up per worker)
    and 2 floats more down per worker every round."""
    K, d, T = 3, slsgd_small[1].shape[1], 4      # T iterations: T + 1 rounds
    X, lam = slsgd_small[1], slsgd_small[3]
    L = 0.25 * float(sp.csr_matrix(X).multiply(X).sum(axis=1).max()) + lam
    it = np.arange(T + 1)
    for scaling, alpha in (("oasis", 0.02), ("identity", 0.01)):
        alg, h = sim_inprocess({"name": "scaled_localsgd", "scaling": scaling, "mode": "local",
                                "alpha": alpha, "step_size": "theory"}, slsgd_small[0], K, T + 1)
        want = (alpha if scaling == "oasis" else 1.0) / (4 * L)
        np.testing.assert_allclose(h["step_size"][1:], want, rtol=1e-12)
        assert alg.theory["L"] == pytest.approx(L, rel=1e-12)
        np.testing.assert_array_equal(h["comm_rounds"], np.where(it > 0, it + 1, 0))
        np.testing.assert_array_equal(h["bytes_up"], np.where(it > 0, K * 7 * 8, 0)
                                      + it * K * 8 * d)
        np.testing.assert_array_equal(h["bytes_down"], np.where(it > 0, K * 64, 0)
                                      + it * K * (64 + 8 * d + 16))
    assert np.isnan(alg.knobs[1])                # no schedule asked for: no cap


@pytest.mark.parametrize("alg", [
    {"scaling": "adam", "mode": "global", "beta1": 0.9},
    {"scaling": "oasis", "mode": "global", "estimate": "exact"},
    {"scaling": "oasis", "mode": "local", "beta_schedule": "theory"},
    {"scaling": "rmsprop", "mode": "global", "beta_schedule": "theory", "beta1": 0.5}])
@pytest.mark.slow
def test_every_option_learns(slsgd_small, alg):
    """40 rounds, K = 4, the defaults otherwise: below 2e-2 relative suboptimality on
    the synthetic set (the defaults' bound; measured after 40 rounds, seeds 0-3:
    adam + beta1 3.8e-3..4.7e-3, oasis exact 2.4e-3..2.7e-3, oasis local theory
    schedule 3.1e-3..3.9e-3, rmsprop theory + beta1 2.3e-3..2.5e-3), the loss falling."""
    _, hist = sim_inprocess({"name": "scaled_localsgd", **alg}, slsgd_small[0], 4, 40)
    sub = (hist["loss"] - slsgd_small[4]) / slsgd_small[4]
    assert sub[-1] <= 2e-2, sub[-1]
    assert hist["loss"][-1] < hist["loss"][1] < hist["loss"][0]


@pytest.mark.mpi
@pytest.mark.parametrize("alg", [
    {"scaling": "oasis", "mode": "global", "estimate": "exact", "beta_schedule": "theory",
     "beta1": 0.5, "gamma": 0.05},
    {"scaling": "adam", "mode": "local", "step_size": "theory", "beta_schedule": "theory",
     "beta1": 0.9}])
def test_mpi_equals_sim_with_the_options(tmp_path, slsgd_small, alg):
    """mpiexec -n 3 and -n 4 against sim with 2 and 3 workers: the same iterates
    (1e-12), rounds and bytes, the same theory constants."""
    cfg = write_config(tmp_path / "o.yaml", **raw_config(
        {"name": "scaled_localsgd", "local_steps": 7, "batch": 8, **alg}, slsgd_small[0],
        max_rounds=5))
    for n in (3, 4):
        runs = []
        for out, args, ranks in ((f"mpi{n}.h5", (), n),
                                 (f"sim{n}.h5", ("--backend", "sim", "--workers", n - 1), None)):
            res = cli("run", cfg, "-o", tmp_path / out, "-q", *args, n=ranks)
            assert res.returncode == 0, res.stderr
            runs.append(read_result(tmp_path / out))
        (ma, mh, mw), (sa, sh, sw) = runs
        assert ma["backend"] == "mpi" and ma["n_workers"] == n - 1 and sa["backend"] == "sim"
        for col in ("iteration", "comm_rounds", "bytes_up", "bytes_down"):
            np.testing.assert_array_equal(mh[col], sh[col], err_msg=col)
        for col in ("loss", "step_size", "dhat_min", "dhat_median", "clipped"):
            np.testing.assert_allclose(mh[col], sh[col], rtol=1e-12, err_msg=col)
        np.testing.assert_allclose(mw, sw, rtol=0, atol=1e-12 * np.abs(sw).max())


# -- bad values ------------------------------------------------------------------------
@pytest.mark.parametrize("key,value,msg", [
    ("beta_schedule", "paper", "algorithm.beta_schedule: must be one of constant, theory"),
    ("step_size", "auto", "algorithm.step_size: must be one of constant, theory"),
    ("estimate", "diag", "algorithm.estimate: must be one of hutchinson, exact"),
    ("beta1", 1.0, "algorithm.beta1: must be in [0.0, 1.0), got 1.0"),
    ("beta1", -0.5, "algorithm.beta1: must be in [0.0, 1.0)"),
])
def test_option_values_are_checked(key, value, msg):
    with pytest.raises(UserError, match=re.escape(msg)):
        resolve(base_cfg(**{key: value}))


@pytest.mark.parametrize("alg,model,msg", [
    ({"step_size": "theory", "gamma": 0.1}, {}, "algorithm.gamma: must be empty with "
     "step_size: theory"),
    ({"beta_schedule": "theory"}, {"lambda": 0.0}, "algorithm.beta_schedule: theory needs a "
     "strongly convex objective"),
    ({"beta1": 2.0}, {}, "algorithm.beta1: must be in [0.0, 1.0), got 2.0"),
    ({"step_size": "slow"}, {}, "algorithm.step_size: must be one of constant, theory"),
])
def test_bad_values_exit_2_naming_the_key(tmp_path, slsgd_small, alg, model, msg):
    raw = raw_config({"name": "scaled_localsgd", **alg}, slsgd_small[0], max_rounds=2)
    raw["model"].update(model)
    cfg = write_config(tmp_path / "bad.yaml", **raw)
    res = cli("run", cfg, "-o", tmp_path / "bad.h5", "-q", "--backend", "sim", "--workers", 2)
    assert res.returncode == 2, (res.returncode, res.stderr)
    lines = [ln for ln in res.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and msg in lines[0], res.stderr
