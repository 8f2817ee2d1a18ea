"""Scaled Local SGD (Adam / RMSProp / OASIS, global and local): the pieces
in-process (mini-batch Hessian-vector product, Hutchinson estimate, the
averaging rules, both worker tasks against naive loops, parameter checks) and
whole runs (identity == localsgd, convergence, bytes, sim == mpiexec) on a synthetic
set, and the convergence measured on a9a where ../shared/data is (``data``)."""

import itertools
import re

import numpy as np
import pytest

from distnewton.algorithms.localsgd import scaled as S
from distnewton.config import resolve
from distnewton.errors import UserError
from distnewton.runtime import WorkerContext
from support.launch import SHARED, cli, read_result, write_config
from support.references import a9a_reference, logistic_objective
from support.scaled_localsgd import (base_cfg, csr_batch, dense_batch_hessian, naive_rounds,
                                     params, raw_config, sim_inprocess, tiny_shard)


# -- in-process: the pieces ---------------------------------------------------
@pytest.mark.parametrize("loss", ["logistic", "ridge"])
def test_batch_hvp_is_the_minibatch_hessian_times_v(loss):
    sh = tiny_shard(loss)
    rng = np.random.default_rng(3)
    w, v = rng.standard_normal(sh.d), rng.standard_normal(sh.d)
    for B in ([1], [3], [0, 4, 7, 9], list(range(sh.n))):      # one row, an empty row, ...
        got = S.batch_hvp(sh.loss, sh.lam, w, v, *csr_batch(sh, np.array(B)))
        np.testing.assert_allclose(got, dense_batch_hessian(sh, w, B) @ v, rtol=1e-13, atol=1e-14)
    # the whole shard as one batch: the objective's own local Hessian-vector product
    full = S.batch_hvp(sh.loss, sh.lam, w, v, *csr_batch(sh, np.arange(sh.n)))
    np.testing.assert_allclose(full, sh.local_hvp_operator(w)(v), rtol=1e-13, atol=1e-14)


def test_hutchinson_estimate_approaches_the_hessian_diagonal():
    """E_v[v (.) H v] = diag(H) for Rademacher v: exactly over all 2^d sign
    vectors, and within 5 standard errors for N seeded draws (the statistic
    the oasis workers send), against the dense local Hessian's diagonal."""
    sh = tiny_shard("logistic", n=40, d=6, seed=4)
    w = np.linspace(-1, 1, sh.d)
    H = sh.local_hessian(w)                                  # dense f_k Hessian, lambda included
    B = csr_batch(sh, np.arange(sh.n))                       # batch = shard: H_B = H
    g = sh.local_grad(w)
    signs = [np.array(s, dtype=float) for s in itertools.product((-1, 1), repeat=sh.d)]
    exact = np.mean([v * S.batch_hvp(sh.loss, sh.lam, w, v, *B) for v in signs], axis=0)
    np.testing.assert_allclose(exact, np.diag(H), rtol=1e-12, atol=1e-15)
    rng, N = np.random.default_rng(11), 20000
    draws = np.array([S.statistic("oasis", sh, w, g, B, rng) for _ in range(N)])
    # v_i (Hv)_i = H_ii + sum_{j != i} v_i v_j H_ij: variance sum_{j != i} H_ij^2
    se = np.sqrt((np.sum(H * H, axis=1) - np.diag(H) ** 2) / N)
    err = np.abs(draws.mean(axis=0) - np.diag(H))
    assert np.all(err <= 5 * se), (err / se)
    assert set(np.unique(S.rademacher(rng, 1000))) == {-1.0, 1.0}


def test_averaging_rules():
    beta = 0.9
    g2 = [np.array([4.0, 0.0, 1.0]), np.array([1.0, 9.0, 2.0])]       # squared gradients
    m, c, D = S.ema_update("adam", beta, np.zeros(3), 0, g2[0])
    np.testing.assert_allclose(D, np.sqrt(g2[0]))                      # bias-corrected: |g|
    m, c, D = S.ema_update("adam", beta, m, c, g2[1])
    np.testing.assert_allclose(D, np.sqrt((beta * (1 - beta) * g2[0] + (1 - beta) * g2[1])
                                          / (1 - beta ** 2)))
    assert c == 2
    m, c, D = S.ema_update("rmsprop", beta, np.zeros(3), 0, g2[0])
    np.testing.assert_allclose(D, np.sqrt((1 - beta) * g2[0]))          # no bias correction
    m, c, D = S.ema_update("rmsprop", beta, m, c, g2[1])
    np.testing.assert_allclose(D, np.sqrt(beta * (1 - beta) * g2[0] + (1 - beta) * g2[1]))
    s = [np.array([4.0, 0.0, -1.0]), np.array([1.0, 9.0, 2.0])]        # Hutchinson samples
    m, c, D = S.ema_update("oasis", beta, np.zeros(3), 0, s[0])
    np.testing.assert_array_equal(D, s[0])                              # warm start
    m, c, D = S.ema_update("oasis", beta, m, c, s[1])
    np.testing.assert_allclose(D, beta * s[0] + (1 - beta) * s[1])
    np.testing.assert_array_equal(S.clip(np.array([-3.0, 1e-9, 0.5]), 1e-2), [3.0, 1e-2, 0.5])


@pytest.mark.parametrize("rule", ["adam", "rmsprop", "oasis"])
@pytest.mark.parametrize("mode", ["local", "global"])
def test_worker_tasks_follow_the_formulas_across_rounds(rule, mode):
    sh = tiny_shard("logistic")
    p = params(scaling=rule, mode=mode, gamma=0.2, beta=0.8, alpha=0.05, local_steps=6,
               batch=4)
    ctx = WorkerContext(0, sh, np.random.default_rng(5), p)
    w0, dhat = np.linspace(-0.5, 0.5, sh.d), np.linspace(0.5, 2.0, sh.d)
    want = naive_rounds(sh, w0, np.random.default_rng(5), 3, 6, 4, 0.2, rule, 0.8, 0.05,
                        mode, dhat)
    w = w0
    for x, stat in want:                       # 3 rounds of 6 steps: epochs of 4 batches
        if mode == "local":
            got = S._local(ctx, w) / sh.n
            np.testing.assert_allclose(got, x, rtol=1e-12, atol=1e-13)
        else:
            got = S._global(ctx, w, dhat) / sh.n
            np.testing.assert_allclose(got[:sh.d], x, rtol=1e-12, atol=1e-13)
            np.testing.assert_allclose(got[sh.d:], stat, rtol=1e-12, atol=1e-13)
        w = x
    if mode == "local":                        # the client's own D persists in ctx.state
        assert ctx.state["scale_count"] == 18 and isinstance(ctx.state["scale_m"], np.ndarray)
    else:
        assert "scale_m" not in ctx.state
    np.testing.assert_array_equal(w0, np.linspace(-0.5, 0.5, sh.d))   # broadcast untouched


@pytest.mark.parametrize("key,value,msg", [
    ("beta", 1.0, "algorithm.beta: must be in [0.0, 1.0), got 1.0"),
    ("beta", -0.1, "algorithm.beta: must be in [0.0, 1.0)"),
    ("alpha", 0.0, "algorithm.alpha: must be > 0"),
    ("gamma", -1, "algorithm.gamma: must be > 0"),
    ("local_steps", 0, "algorithm.local_steps: must be >= 1"),
    ("batch", 0, "algorithm.batch: must be >= 1"),
    ("scaling", "adagrad", "algorithm.scaling: must be one of identity, adam, rmsprop, oasis"),
    ("mode", "both", "algorithm.mode: must be one of global, local"),
    ("lr", 0.1, "algorithm.lr: unknown key"),
])
def test_parameters_are_checked(key, value, msg):
    with pytest.raises(UserError, match=re.escape(msg)):
        resolve(base_cfg(**{key: value}))
    cfg = resolve(base_cfg())
    assert cfg["algorithm"] == {"name": "scaled_localsgd", "scaling": "adam", "mode": "global",
                                "gamma": None, "beta": 0.99, "alpha": 0.01, "local_steps": 10,
                                "batch": 32, "step_size": "constant",
                                "beta_schedule": "constant", "beta1": 0.0,
                                "estimate": "hutchinson"}


# -- whole runs ------------------------------------------------------------------
#: every scaling's relative suboptimality on the synthetic set after 40 rounds at
#: the defaults (K = 4 iid), measured over seeds 0-3: adam 4.6e-3..6.4e-3, rmsprop
#: 2.4e-3..2.7e-3, oasis 2.2e-3..3.0e-3 (global and local); any round 20..40 at most
#: 4.1e-2 (constant-step noise).  The bound keeps a 3x margin over the final values.
SMALL_BOUND = 2e-2


@pytest.fixture(scope="module")
def a9a():
    X, y, lam, _, f_ref = a9a_reference()
    return {"train": str(SHARED / "a9a.bz2"), "n_features": 123}, X, y, lam, f_ref


@pytest.mark.parametrize("mode", ["global", "local"])
def test_identity_scaling_is_localsgd_bit_for_bit(slsgd_small, mode):
    alg = {"name": "scaled_localsgd", "scaling": "identity", "mode": mode, "gamma": 0.7,
           "local_steps": 13, "batch": 9, "alpha": 3.0, "beta": 0.5}     # alpha, beta unused
    a, ha = sim_inprocess(alg, slsgd_small[0], 3, 4)
    b, hb = sim_inprocess({"name": "localsgd", "lr": 0.7, "local_steps": 13, "batch": 9},
                          slsgd_small[0], 3, 4)
    np.testing.assert_array_equal(a.w, b.w)
    for col in ("loss", "grad_norm", "comm_rounds", "bytes_up", "bytes_down", "step_size"):
        np.testing.assert_array_equal(ha[col], hb[col], err_msg=col)
    assert np.all(np.isnan(ha["clipped"]))


@pytest.mark.parametrize("ref,bound", [("slsgd_small", SMALL_BOUND), pytest.param(
    "a9a", 5e-2, marks=pytest.mark.data(reason="a9a's scale for the floors measured on it"))])
@pytest.mark.parametrize("scaling,mode", [(s, m) for s in ("adam", "rmsprop", "oasis")
                                          for m in ("global", "local")])
@pytest.mark.slow
def test_every_scaling_learns(ref, bound, scaling, mode, request):
    """Defaults (H = 10 steps of batch 32, beta 0.99, alpha 1e-2, gamma 0.03), K = 4
    iid, 40 rounds.  The synthetic set: see SMALL_BOUND.  a9a: measured relative
    suboptimality after 40 rounds, seeds 0-7:
    adam global 7.4e-3..1.1e-2, adam local 8.1e-3..1.8e-2, rmsprop global
    6.8e-3..1.4e-2, rmsprop local 7.6e-3..1.8e-2, oasis global 1.5e-2..2.1e-2,
    oasis local 9.7e-3..1.6e-2 (identity, gamma 1: 9.4e-3..3.5e-2); the largest
    value at any round 20..40 over those seeds is 6.3e-2 (constant-step noise)."""
    data, X, y, lam, f_ref = request.getfixturevalue(ref)
    alg, hist = sim_inprocess({"name": "scaled_localsgd", "scaling": scaling, "mode": mode},
                              data, 4, 40)
    subopt = (hist["loss"] - f_ref) / f_ref
    assert subopt[-1] <= bound, subopt[-1]
    assert hist["loss"][-1] < hist["loss"][1] < hist["loss"][0]
    assert logistic_objective(X, y, alg.w, lam) == pytest.approx(hist["loss"][-1], rel=1e-12)
    if mode == "global":                           # the shared D_hat, logged
        assert np.all(hist["dhat_min"][1:] >= 1e-2)
        # clipped: the fraction of D_hat's entries held at alpha (the last one, by hand)
        assert hist["clipped"][-1] == np.mean(alg.dhat == 1e-2)
        assert np.all((hist["clipped"][1:] > 0) == (hist["dhat_min"][1:] == 1e-2))
        # one D update per round (the initial round included): 40 rounds, 39 iterations
        assert np.all(alg.dhat >= 1e-2) and alg.count == 40 == hist["iteration"][-1] + 1
    else:
        assert np.all(np.isnan(hist["dhat_min"]))


def test_bytes_per_round_by_hand(slsgd_small):
    K, d, T = 3, slsgd_small[1].shape[1], 4
    it = np.arange(T + 1)
    _, h = sim_inprocess({"name": "scaled_localsgd", "scaling": "adam", "mode": "local"},
                         slsgd_small[0], K, T)
    np.testing.assert_array_equal(h["iteration"], it)
    np.testing.assert_array_equal(h["comm_rounds"], it)                   # 1 round each
    np.testing.assert_array_equal(h["bytes_down"], it * K * (64 + 8 * d))  # header + x
    np.testing.assert_array_equal(h["bytes_up"], it * K * 8 * d)          # n_m x_m
    _, h = sim_inprocess({"name": "scaled_localsgd", "scaling": "rmsprop", "mode": "global"},
                         slsgd_small[0], K, T + 1)
    # iteration 1: the initial statistics round (x^0 down, n_m s_m up) + the first round
    # every round: header + x + D_hat down (2d), n_m x_m + n_m s_m up (2d)
    np.testing.assert_array_equal(h["iteration"], it)
    np.testing.assert_array_equal(h["comm_rounds"], np.where(it > 0, it + 1, 0))
    np.testing.assert_array_equal(h["bytes_down"],
                                  np.where(it > 0, K * (64 + 8 * d), 0) + it * K * (64 + 16 * d))
    np.testing.assert_array_equal(h["bytes_up"],
                                  np.where(it > 0, K * 8 * d, 0) + it * K * 16 * d)


@pytest.mark.mpi
def test_mpi_equals_sim_global_oasis(tmp_path, slsgd_small):
    cfg = write_config(tmp_path / "s.yaml", **raw_config(
        {"name": "scaled_localsgd", "scaling": "oasis", "mode": "global", "alpha": 1e-3,
         "local_steps": 7, "batch": 8}, slsgd_small[0], max_rounds=6))
    runs = []
    for out, args, n in (("mpi.h5", (), 3), ("sim.h5", ("--backend", "sim", "--workers", 2), None)):
        res = cli("run", cfg, "-o", tmp_path / out, "-q", *args, n=n)
        assert res.returncode == 0, res.stderr
        runs.append(read_result(tmp_path / out))
    (ma, mh, mw), (sa, sh, sw) = runs
    assert ma["backend"] == "mpi" and ma["n_workers"] == 2 and sa["backend"] == "sim"
    for col in ("iteration", "comm_rounds", "bytes_up", "bytes_down"):
        np.testing.assert_array_equal(mh[col], sh[col], err_msg=col)
    np.testing.assert_allclose(mh["loss"], sh["loss"], rtol=1e-12)
    for col in ("dhat_min", "dhat_median", "dhat_max", "clipped"):
        np.testing.assert_allclose(mh[col], sh[col], rtol=1e-12, err_msg=col)
    np.testing.assert_allclose(mw, sw, rtol=0, atol=1e-12 * np.abs(sw).max())
    assert mh["comm_rounds"][-1] == 6 and mh["iteration"][-1] == 5    # init round + 5


@pytest.mark.parametrize("scaling,mode,options", [
    ("oasis", "local", {}), ("adam", "global", {}),
    ("rmsprop", "global", {"beta_schedule": "theory", "step_size": "theory", "beta1": 0.9})])
@pytest.mark.slow
def test_checkpoint_then_resume_equals_an_uninterrupted_run(tmp_path, slsgd_small, scaling, mode,
                                                            options):
    """Master state (m, count, dhat; the theory's step and cap) and worker state (the
    local D, the first moment, the epoch position, the RNG that draws batches and
    Rademacher vectors) survive a checkpoint: 12 rounds, resume to 20 == 20 rounds
    straight."""
    cfg = write_config(tmp_path / "c.yaml", **raw_config(
        {"name": "scaled_localsgd", "scaling": scaling, "mode": mode, "local_steps": 30,
         "batch": 4, **options}, slsgd_small[0], max_rounds=20))
    sim = ("--backend", "sim", "--workers", 2, "-q")
    part, full = tmp_path / "part.h5", tmp_path / "full.h5"
    for args in (("run", cfg, "-o", part, "--set", "run.checkpoint_every=6",
                  "--set", "run.max_rounds=12"),
                 ("run", "--resume", part, "--set", "run.max_rounds=20"),
                 ("run", cfg, "-o", full)):
        res = cli(*args, *sim)
        assert res.returncode == 0, res.stderr
    (_, hr, wr), (_, hf, wf) = read_result(part), read_result(full)
    for col in ("iteration", "comm_rounds", "bytes_up", "bytes_down"):
        np.testing.assert_array_equal(hr[col], hf[col], err_msg=col)
    np.testing.assert_allclose(hr["loss"], hf["loss"], rtol=1e-12)
    np.testing.assert_allclose(wr, wf, rtol=0, atol=1e-12 * np.abs(wf).max())
