"""L-BFGS and Local SGD: their pieces in-process (line search, two-loop
recursion, the SGD inner loop) and whole runs, sim and real mpiexec, on a
synthetic set (every clone) and on a9a (``data``: its published-scale optimum)."""

import numpy as np
import pytest
import scipy.sparse as sp

from distnewton.algorithms.lbfgs import strong_wolfe, two_loop
from distnewton.algorithms.localsgd.localsgd import sgd, stochastic_grad
from distnewton.objectives import Shard
from support.launch import SHARED, cli, read_result, synth, write_config
from support.references import a9a_reference, logistic_objective, logistic_reference

A9A_DATA = pytest.mark.data(reason="a9a's published-scale optimum and measured floors")
#: Local SGD at its defaults on the synthetic set (rows of norm ~1, so lr 0.01 is
#: slow): measured 0.4606 after 1 round and 0.1346 after 20 for seeds 0-3 (they
#: agree to 1e-4); the bound keeps a 1.5x margin
SMALL_LSGD_BOUND = 0.2


# -- in-process: the pieces ---------------------------------------------------
@pytest.mark.parametrize("fun,a1,c2", [
    (lambda a: ((a - 3.0) ** 2, 2 * (a - 3.0)), 1.0, 0.9),       # first trial accepted
    (lambda a: ((a - 1.0) ** 2, 2 * (a - 1.0)), 100.0, 0.9),     # overshoot: zoom
    (lambda a: ((a - 5.0) ** 2, 2 * (a - 5.0)), 0.01, 0.5),      # too short: extrapolate
    (lambda a: (a ** 4 / 4 - a - 0.2 * np.cos(7 * a), a ** 3 - 1 + 1.4 * np.sin(7 * a)), 1.0, 0.3),
])
def test_strong_wolfe_line_search(fun, a1, c2):
    calls = []

    def phi(a):
        calls.append(a)
        f, d = fun(a)
        return float(f), float(d), ("extra", a)

    f0, d0 = (float(v) for v in fun(0.0))
    c1 = 1e-4
    a, f, extra, trials = strong_wolfe(phi, f0, d0, a1, c1, c2, 1e6, 30)
    assert a is not None and trials == len(calls) and extra == ("extra", a)
    fa, da = fun(a)
    assert f == fa and fa <= f0 + c1 * a * d0 and abs(da) <= -c2 * d0


def test_strong_wolfe_overflow_and_failure():
    def phi(a):
        return (np.inf, np.nan, None) if a > 3 else (np.cos(a + 0.5), -np.sin(a + 0.5), None)
    f0, d0 = np.cos(0.5), -np.sin(0.5)          # minimum at a = pi - 0.5, overflow beyond 3
    a, f, _, trials = strong_wolfe(phi, f0, d0, 50.0, 1e-4, 0.1, 1e6, 30)
    assert 0 < a <= 3 and abs(np.sin(a + 0.5)) <= 0.1 * np.sin(0.5) and f == np.cos(a + 0.5)
    # an ascent "direction" can never satisfy sufficient decrease: it gives up
    a, f, _, trials = strong_wolfe(lambda a: (a, 1.0, None), 0.0, -1.0, 1.0, 1e-4, 0.9, 1e6, 12)
    assert a is None and f == 0.0 and trials == 12


def test_two_loop_is_the_bfgs_inverse_update():
    rng = np.random.default_rng(0)
    d, memory = 6, []
    A = rng.standard_normal((d, d))
    A = A @ A.T + np.eye(d)                       # y = A s: curvature pairs of a quadratic
    for _ in range(4):
        s = rng.standard_normal(d)
        y = A @ s
        memory.append((s, y, 1.0 / (s @ y)))
    s, y, _ = memory[-1]
    H = (s @ y) / (y @ y) * np.eye(d)
    for s, y, rho in memory:                      # H+ = (I - rho s y') H (I - rho y s') + rho s s'
        V = np.eye(d) - rho * np.outer(y, s)
        H = V.T @ H @ V + rho * np.outer(s, s)
    g = rng.standard_normal(d)
    np.testing.assert_allclose(two_loop(g, memory), H @ g, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(two_loop(g, []), g)


def tiny_shard(loss="logistic", n=13, d=5, seed=1):
    rng = np.random.default_rng(seed)
    mask = np.ones(n)
    mask[3] = 0.0                                 # an empty row
    X = sp.csr_matrix(sp.diags(mask) @ sp.random(n, d, density=0.4, random_state=seed))
    X.eliminate_zeros()
    assert X[3].nnz == 0
    y = np.where(rng.random(n) < 0.5, -1.0, 1.0) if loss == "logistic" else rng.standard_normal(n)
    return Shard(X, y, loss, lam=0.1)


@pytest.mark.parametrize("loss", ["logistic", "ridge"])
@pytest.mark.parametrize("batch", [1, 4, 100])
def test_sgd_steps_follow_the_formula_across_epochs_and_rounds(loss, batch):
    """sgd() == a naive loop: per-epoch permutations from the worker's RNG,
    consecutive mini-batches (the last one short), dense gradients, lr/(1 + decay s),
    the epoch position and s kept in the state across calls (rounds)."""
    sh = tiny_shard(loss)
    Xd, n = sh.X.toarray(), sh.n
    lr, decay, D = 0.3, 0.05, np.linspace(1.0, 2.0, sh.d)
    rng_a, rng_b, state = np.random.default_rng(7), np.random.default_rng(7), {}
    w = np.linspace(-1, 1, sh.d)
    got = w
    for steps in (5, 17, 1):                      # three rounds, crossing epoch ends
        got = sgd(sh, got, rng_a, state, steps, lr, decay, batch,
                  precondition=lambda g, w, B: g / D)
    want, s, order = w.copy(), 0, []
    b = min(batch, n)
    while s < 23:
        if not order:
            perm = rng_b.permutation(n)
            order = [perm[i:i + b] for i in range(0, n, b)]
        B = order.pop(0)
        z = Xd[B] @ want
        g = Xd[B].T @ sh.loss.deriv(z, sh.y[B]) / len(B) + sh.lam * want
        want = want - lr / (1 + decay * s) * g / D
        s += 1
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-13)
    assert state["t"] == 23
    # the one-row fast path and the mini-batch path agree on the same row
    i = np.array([1], dtype=np.intp)
    row = sh.X[1]
    g1 = stochastic_grad(sh.loss, sh.lam, w, row.indices.astype(np.intp), row.data, None, sh.y[i])
    gb = stochastic_grad(sh.loss, sh.lam, w, row.indices.astype(np.intp), row.data,
                         np.zeros(row.nnz, dtype=np.intp), sh.y[i])
    np.testing.assert_allclose(g1, gb, rtol=1e-14, atol=1e-15)


def test_sgd_never_modifies_the_broadcast_vector():
    sh, w = tiny_shard(), np.ones(5)
    sgd(sh, w, np.random.default_rng(0), {}, 3, 0.1)
    np.testing.assert_array_equal(w, np.ones(5))


# -- whole runs ----------------------------------------------------------------
@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """4000 x 50 synthetic logistic set: (data keys, X, y, lam, f*)."""
    path = synth(tmp_path_factory.mktemp("lbfgs") / "s.svm", 4000, 50, density=0.2)
    X, y, lam, _, f_ref = logistic_reference(path)
    return {"train": str(path)}, X, y, lam, f_ref


@pytest.fixture(scope="module")
def a9a():
    X, y, lam, _, f_ref = a9a_reference()
    return {"train": str(SHARED / "a9a.bz2"), "n_features": 123}, X, y, lam, f_ref


def config(tmp_path, tag, algorithm, data, **run):
    return write_config(
        tmp_path / f"{tag}.yaml", data={**data, "partition": "iid"},
        model={"loss": "logistic", "lambda": "1/n"},
        algorithm=algorithm, run={"grad_rtol": 1e-12, **run})


def run(cfg, out, *args, n=None):
    res = cli("run", cfg, "-o", out, "-q", *args, n=n)
    assert res.returncode == 0, res.stderr
    return read_result(out)


def sim(cfg, out, workers):
    return run(cfg, out, "--backend", "sim", "--workers", workers)


def assert_same_run(a, b, exact=("iteration", "comm_rounds", "bytes_up", "bytes_down")):
    (_, ha, wa), (_, hb, wb) = a, b
    for col in exact:
        np.testing.assert_array_equal(ha[col], hb[col], err_msg=col)
    np.testing.assert_allclose(ha["loss"], hb["loss"], rtol=1e-12)
    np.testing.assert_allclose(wa, wb, rtol=0, atol=1e-12 * np.abs(wb).max())


@pytest.mark.parametrize("ref", ["small", pytest.param("a9a", marks=A9A_DATA)])
@pytest.mark.slow
def test_lbfgs_reaches_the_sklearn_optimum(tmp_path, ref, request):
    data, X, y, lam, f_ref = request.getfixturevalue(ref)
    D = X.shape[1]
    attrs, hist, w = sim(config(tmp_path, "lbfgs", {"name": "lbfgs"}, data, max_rounds=300),
                         tmp_path / "l.h5", 4)
    f = logistic_objective(X, y, w, lam)
    # a9a measured: 7.2e-10 after 300 rounds (262 iterations); f* ~ 0.32
    assert abs(f - f_ref) / f_ref <= 1e-8
    assert hist["loss"][-1] == pytest.approx(f, rel=1e-12)
    # sufficient decrease every step (strict until f is within rounding of f*)
    dec, above = np.diff(hist["loss"]), hist["loss"][1:] - f_ref > 1e-13 * f_ref
    assert np.all(dec <= 0) and np.all(dec[above] < 0)
    # rounds: 1 to start (f, g at w0), then one per line-search trial
    rounds = 1 + np.cumsum(hist["ls_trials"])[1:]
    np.testing.assert_array_equal(hist["comm_rounds"][1:], rounds)
    assert np.median(hist["ls_trials"][1:]) == 1              # the unit step is mostly accepted
    K, R = 4, hist["comm_rounds"]
    np.testing.assert_array_equal(hist["bytes_down"], R * K * (64 + 8 * D))
    np.testing.assert_array_equal(hist["bytes_up"], R * K * 8 * (D + 1))


@pytest.mark.mpi
def test_lbfgs_mpi_equals_sim(tmp_path, small):
    cfg = config(tmp_path, "lbfgs", {"name": "lbfgs", "m": 5}, small[0], max_rounds=40)
    mpi = run(cfg, tmp_path / "mpi.h5", n=3)
    assert mpi[0]["backend"] == "mpi" and mpi[0]["n_workers"] == 2
    assert_same_run(mpi, sim(cfg, tmp_path / "sim.h5", 2), exact=(
        "iteration", "comm_rounds", "bytes_up", "bytes_down", "ls_trials"))


@pytest.mark.mpi
def test_localsgd_reproducible_identical_over_mpi_and_one_round_each(tmp_path, small):
    alg = {"name": "localsgd", "batch": 8, "lr": 0.05, "decay": 1e-3}
    cfg = config(tmp_path, "lsgd", alg, small[0], max_rounds=3)
    D = small[1].shape[1]
    a = sim(cfg, tmp_path / "a.h5", 2)
    b = sim(cfg, tmp_path / "b.h5", 2)
    assert_same_run(a, b, exact=tuple(k for k in a[1] if k != "wall_time" and not k.startswith("time_")))
    np.testing.assert_array_equal(a[2], b[2])                # same seed: bitwise identical
    assert_same_run(run(cfg, tmp_path / "mpi.h5", n=3), a)
    other = run(cfg, tmp_path / "c.h5", "--backend", "sim", "--workers", 2, "--set", "run.seed=1")
    assert np.abs(other[2] - a[2]).max() > 1e-6              # the seed drives the sampling
    # one round per iteration; down: header + w, up: n_k w_k (d floats) per worker
    hist, K, it = a[1], 2, a[1]["iteration"]
    np.testing.assert_array_equal(hist["comm_rounds"], it)
    np.testing.assert_array_equal(hist["bytes_down"], it * K * (64 + 8 * D))
    np.testing.assert_array_equal(hist["bytes_up"], it * K * 8 * D)
    # step_size: worker 1's first step of the round, lr/(1 + decay s), s steps per round
    s = np.ceil(a[0]["shard_sizes"][0] / 8) * (it[1:] - 1)
    np.testing.assert_allclose(hist["step_size"][1:], 0.05 / (1 + 1e-3 * s))


@pytest.mark.parametrize("ref,bound", [("small", SMALL_LSGD_BOUND),
                                       pytest.param("a9a", 1e-2, marks=A9A_DATA)])
@pytest.mark.slow
def test_localsgd_learns(tmp_path, ref, bound, request):
    data, X, y, lam, f_ref = request.getfixturevalue(ref)
    attrs, hist, w = sim(config(tmp_path, "lsgd", {"name": "localsgd"}, data, max_rounds=20),
                         tmp_path / "l.h5", 4)
    subopt = (hist["loss"] - f_ref) / f_ref
    # Defaults (batch 1, 1 epoch per round, lr 0.01).  a9a measured: 4.1e-2 after 1
    # round, 2.7e-3 after 20 (seeds 1-3: 2.6e-3..3.8e-3; the largest value at any
    # round 10..20 over seeds 0-3 is 9.1e-3, the constant-step noise floor).
    # The synthetic set: see SMALL_LSGD_BOUND.
    assert hist["comm_rounds"][-1] == 20 and attrs["status"] == "max_rounds"
    assert subopt[-1] <= bound
    assert hist["loss"][-1] < hist["loss"][1] < hist["loss"][0]
    assert logistic_objective(X, y, w, lam) == pytest.approx(hist["loss"][-1], rel=1e-12)


@pytest.mark.slow
def test_one_full_batch_local_step_is_one_gd_step(tmp_path, small):
    """local_steps 1, batch >= n_k: w_k = w - lr grad f_k(w) and
    sum_k (n_k/n) w_k = w - lr grad f(w), for shards of unequal size too."""
    lsgd = sim(config(tmp_path, "lsgd", {"name": "localsgd", "local_steps": 1, "batch": 10**6,
                                         "lr": 2.0}, small[0], max_rounds=4), tmp_path / "l.h5", 3)
    gd = sim(config(tmp_path, "gd", {"name": "gd", "step_size": 2.0}, small[0], max_rounds=4),
             tmp_path / "g.h5", 3)
    assert len(set(lsgd[0]["shard_sizes"])) > 1               # 4000 = 1334 + 2 * 1333
    assert_same_run(lsgd, gd, exact=("iteration", "comm_rounds", "bytes_down"))
    assert lsgd[1]["loss"][-1] < lsgd[1]["loss"][0]
