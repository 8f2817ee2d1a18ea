"""IST against the slides' theory (Shulgin & Richtarik, ICML 2023 workshop): the logged
h, sigma^2, theta, W_bar checked against numpy over *every* sketch draw built from the
slides' definitions (5), (12), (22), (23), (17), (18); ``step_size: theory`` (1/theta,
Theorem (19)'s step) and ``precondition: homogeneous`` (29) against closed forms and a
reparametrised run; Theorems (19) and (24) on measured runs; sim == mpiexec; bad values."""

import itertools
import math
from types import SimpleNamespace

import numpy as np
import pytest
import scipy.sparse as sp
from click.testing import CliRunner

from support.launch import cli, read_result, write_config
from support.references import ist_quadratic

from distnewton.algorithms.base import Problem
from distnewton.algorithms.ist import IST
from distnewton.cli import main
from distnewton.data import partition, write_libsvm
from distnewton.objectives import Shard
from distnewton.runtime.sim import SimRuntime


def ridge_set(path, n, d, K, seed=0, scale=1.0, spread=0.5, w_spread=0.0, labels="ridge"):
    """Dense Gaussian rows (times ``scale``) in K contiguous blocks, block i scaled by
    (1 + spread i) and labelled by its own w_i = w + w_spread N(0, I) (so contiguous shards
    differ): y = X w_i + noise; ``labels`` "zero" (b_i = 0) or "sign" (+-1)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) * scale
    block = np.repeat(np.arange(K), -(-n // K))[:n]
    X *= (1 + spread * block)[:, None]
    w = rng.standard_normal(d) + w_spread * rng.standard_normal((K, d))[block]
    y = np.einsum("ij,ij->i", X, w) + 0.3 * rng.standard_normal(n)
    y = {"ridge": y, "zero": np.zeros(n), "sign": np.where(y > 0, 1.0, -1.0)}[labels]
    write_libsvm(path, X, y)
    return path


def cli_run(tmp_path, tag, train, K, algorithm, lam=1e-2, rounds=3, n=None):
    cfg = write_config(tmp_path / f"{tag}.yaml",
                       data={"train": str(train), "partition": "contiguous"},
                       model={"loss": "ridge", "lambda": lam},
                       algorithm={"name": "ist", **algorithm},
                       run={"grad_rtol": None, "max_rounds": rounds})
    out = tmp_path / f"{tag}.h5"
    backend = [] if n else ["--backend", "sim", "--workers", K]
    res = cli("run", cfg, *backend, "-o", out, "-q", n=n)
    assert res.returncode == 0, res.stderr
    return read_result(out)


def problem_of(train, K, lam):
    from sklearn.datasets import load_svmlight_file
    X, y = load_svmlight_file(str(train), zero_based=False)
    parts = partition(y, K, "contiguous")
    return X, y, parts, ist_quadratic(X, y, parts, lam)


# -- an independent reference: every draw, from the slides' definitions -------------
def draws(sketch, d, K, Ls, p=0.5):
    """(probability, [C_1..C_K] diagonals) over every equally likely draw."""
    if sketch == "identity":
        yield 1.0, [np.ones(d)] * K
    elif sketch == "perm":                      # (5): C_i = n sum_{j in block i} e_pi_j e_pi_j^T
        q = d // K
        perms = list(itertools.permutations(range(d)))
        for pi in perms:
            Cs = [np.zeros(d) for _ in range(K)]
            for i in range(K):
                Cs[i][list(pi[q * i:q * (i + 1)])] = K
            yield 1.0 / len(perms), Cs
    elif sketch == "perm_precond":              # (12): sqrt(n / [L_i]_pi_i pi_i) e_pi_i e_pi_i^T
        assert d == K
        perms = list(itertools.permutations(range(d)))
        for pi in perms:
            Cs = [np.zeros(d) for _ in range(K)]
            for i in range(K):
                Cs[i][pi[i]] = math.sqrt(K / Ls[i][pi[i], pi[i]])
            yield 1.0 / len(perms), Cs
    else:                                       # bernoulli: C_i = diag(mask_i) / p
        for bits in itertools.product((0, 1), repeat=d * K):
            m = np.array(bits, dtype=float).reshape(K, d)
            yield float(np.prod(np.where(m == 1, p, 1 - p))), list(m / p)


def slides_quantities(Ls, bs, sketch, x, p=0.5):
    """W_bar (22), theta (23), h = x* - E[B]^-1 E[Cb] ((17) when E[B] = I) and
    sigma^2(x) = E||g - E g||_L^2 (18), g = B x - Cb (10), by enumeration."""
    K, d = len(Ls), len(bs[0])
    L, b = sum(Ls) / K, sum(bs) / K
    EB, EBLB, ECb, Eg, Eg2 = (np.zeros((d, d)), np.zeros((d, d)), np.zeros(d), np.zeros(d),
                              0.0)
    for w, Cs in draws(sketch, d, K, Ls, p):
        B = sum(C[:, None] * Li * C[None, :] for C, Li in zip(Cs, Ls)) / K
        Cb = sum(C * bi for C, bi in zip(Cs, bs)) / K
        g = B @ x - Cb
        EB += w * B
        EBLB += w * B @ L @ B
        ECb += w * Cb
        Eg += w * g
        Eg2 += w * g @ L @ g
    W = 0.5 * (L @ EB + EB @ L)
    lam, V = np.linalg.eigh(W)
    Wmh = V @ np.diag(lam ** -0.5) @ V.T
    theta = np.linalg.eigvalsh(Wmh @ EBLB @ Wmh).max()
    h = np.linalg.solve(L, b) - np.linalg.solve(EB, ECb)
    return {"W_min": lam[0], "W_max": lam[-1], "theta": theta, "h_norm": math.sqrt(h @ L @ h),
            "sigma2": Eg2 - Eg @ L @ Eg, "EB": EB, "ECb": ECb, "h": h}


def homogeneous(Ls, bs):
    """(29): L_i -> D^-1/2 L_i D^-1/2, b_i -> D^-1/2 b_i, D = Diag(L)."""
    s = 1 / np.sqrt(np.diag(sum(Ls) / len(Ls)))
    return [s[:, None] * L * s[None, :] for L in Ls], [s * b for b in bs], s


@pytest.mark.parametrize("sketch,d,K,pre", [("perm", 6, 3, "none"), ("perm", 4, 4, "none"),
                                            ("perm", 3, 3, "none"), ("bernoulli", 2, 2, "none"),
                                            ("perm_precond", 5, 5, "none"),
                                            ("bernoulli", 4, 2, "none"),
                                            ("identity", 5, 3, "none"),
                                            ("perm", 6, 3, "homogeneous"),
                                            ("perm_precond", 4, 4, "homogeneous")])
def test_logged_slides_quantities_match_enumeration(tmp_path, sketch, d, K, pre):
    """The HDF5 columns theta, W_min, W_max, h_norm and sigma2 (at the final model) equal
    numpy's over all d! permutations / 2^(dK) masks, to 1e-10 relative."""
    lam = 1e-2
    train = ridge_set(tmp_path / "r.svm", 12 * K, d, K, seed=d + K)
    _, hist, w = cli_run(tmp_path, "r", train, K, {"sketch": sketch, "gamma": 0.05,
                                                   "precondition": pre}, lam)
    _, _, _, (Ls, bs, _) = problem_of(train, K, lam)
    x = w
    if pre == "homogeneous":
        Ls, bs, s = homogeneous(Ls, bs)
        x = w / s                                       # u = D^{1/2} x
    ref = slides_quantities(Ls, bs, sketch, x)
    for key in ("theta", "W_min", "W_max", "h_norm", "sigma2"):
        assert np.all(hist[key][1:] == hist[key][1]) or key == "sigma2"
        assert hist[key][-1] == pytest.approx(ref[key], rel=1e-10, abs=1e-13), key
    assert np.isnan(hist["theta"][0])                       # row 0: before any round
    if sketch == "perm_precond":                            # (13), (14), (17) verbatim
        np.testing.assert_allclose(ref["EB"], np.eye(d), atol=1e-13)
        Dtb = sum(b / np.sqrt(np.diag(L)) for L, b in zip(Ls, bs)) / K
        np.testing.assert_allclose(ref["ECb"], Dtb / math.sqrt(K), rtol=1e-12)
        h17 = np.linalg.solve(sum(Ls) / K, sum(bs) / K) - Dtb / math.sqrt(K)
        np.testing.assert_allclose(ref["h"], h17, rtol=1e-10)
        assert hist["theta"][-1] == pytest.approx(1.0, rel=1e-12)   # B_k = I: theta = 1
    if sketch == "identity":                                # (25): theta = lambda_max(L)
        assert hist["theta"][-1] == pytest.approx(np.linalg.eigvalsh(sum(Ls) / K)[-1],
                                                  rel=1e-12)
        assert hist["sigma2"][-1] == 0.0 and hist["h_norm"][-1] < 1e-12


# -- step_size: theory ---------------------------------------------------------------
def test_theory_step_rules(tmp_path):
    """identity: gamma = 1/lambda_max(L) (the slides' (25)); preconditioned Perm-1:
    Theorem (19)'s (1/2 - beta)/(beta + 1/2) (< 1/theta = 1), for two betas; the charged
    setup round costs d^2 + d floats up per worker."""
    lam, K, d = 1e-2, 4, 4
    train = ridge_set(tmp_path / "r.svm", 80, d, K)
    _, _, _, (Ls, _, _) = problem_of(train, K, lam)
    _, h, _ = cli_run(tmp_path, "id", train, K, {"sketch": "identity", "step_size": "theory"})
    assert h["step_size"][-1] == pytest.approx(1 / np.linalg.eigvalsh(sum(Ls) / K)[-1],
                                               rel=1e-12)
    np.testing.assert_array_equal(h["comm_rounds"], [0, 2, 3])   # setup + 2 (max_rounds 3)
    assert h["bytes_up"][1] == 8 * K * (d * d + d) + 8 * K * d
    for beta in (1 / 6, 0.01):
        _, h, _ = cli_run(tmp_path, f"pp{beta}", train, K,
                          {"sketch": "perm_precond", "step_size": "theory", "theory_beta": beta})
        assert h["step_size"][-1] == pytest.approx((0.5 - beta) / (beta + 0.5), rel=1e-15)
        assert h["theta"][-1] == pytest.approx(1.0, rel=1e-12)
    assert h["step_size"][-1] == pytest.approx(0.49 / 0.51, rel=1e-15)


def test_homogeneous_preconditioning_of_identical_shards_gives_theta_K(tmp_path):
    """Identical shards (the slides' homogeneous f_i = 1/2 x^T L x): with (29) and Perm-1
    sketches B_k = n I on every draw ((30): E[B] = n Diag(L~) = n I), so theta = n and the
    theory step is 1/n; without preconditioning theta is larger."""
    K = d = 4
    rng = np.random.default_rng(3)
    X = rng.standard_normal((20, d)) * np.array([1.0, 3.0, 0.5, 2.0])
    write_libsvm(tmp_path / "h.svm", np.vstack([X] * K), np.tile(rng.standard_normal(20), K))
    _, h, _ = cli_run(tmp_path, "hom", tmp_path / "h.svm", K,
                      {"sketch": "perm", "step_size": "theory", "precondition": "homogeneous"})
    assert h["theta"][-1] == pytest.approx(K, rel=1e-12)
    assert h["step_size"][-1] == pytest.approx(1 / K, rel=1e-12)
    _, h0, _ = cli_run(tmp_path, "het", tmp_path / "h.svm", K, {"sketch": "perm"})
    assert h0["theta"][-1] > 1.5 * K


def api_run(X, y, parts, lam, rounds, w0=None, seed=0, **params):
    shards = [Shard(X[p], y[p], "ridge", lam) for p in parts]
    full = {k: v.default for k, v in IST.params.items()}
    full.update(params)
    rt = SimRuntime(shards, seed, SimpleNamespace(**full))
    prob = Problem(n=X.shape[0], d=X.shape[1], lam=lam, loss="ridge",
                   sizes=tuple(len(p) for p in parts))
    alg = IST(rt, prob, full, np.zeros(X.shape[1]) if w0 is None else w0, seed=seed)
    return alg, [alg.step() for _ in range(rounds)]


@pytest.mark.parametrize("sketch", ["perm", "perm_precond", "bernoulli", "identity"])
def test_homogeneous_is_ist_on_the_reparametrised_problem(tmp_path, sketch):
    """(29) literally: IST with precondition homogeneous on X (lambda 0) gives
    x^k = D^{-1/2} u^k, u^k the plain IST iterates on X D^{-1/2} (same sketches; D =
    Diag(X^T X / N) by numpy)."""
    K, d = 3, 7
    X, y, parts, _ = problem_of(ridge_set(tmp_path / "r.svm", 90, d, K), K, 0.0)
    s = 1 / np.sqrt(np.asarray(X.multiply(X).mean(axis=0)).ravel())
    Xt = sp.csr_matrix(X @ sp.diags(s))
    a, _ = api_run(X, y, parts, 0.0, 30, sketch=sketch, gamma=0.02, precondition="homogeneous",
                   analysis=False)
    b, _ = api_run(Xt, y, parts, 0.0, 30, sketch=sketch, gamma=0.02, analysis=False)
    np.testing.assert_allclose(a.w, s * b.w, rtol=0, atol=1e-12 * np.abs(a.w).max())
    assert np.abs(a.w).max() > 0.1                       # it moved


# -- the theorems on measured runs ----------------------------------------------------
def test_theory_step_reaches_the_theorem19_neighbourhood(tmp_path):
    """Preconditioned Perm-1 (d = K = 8), heterogeneous shards, theory step gamma = 1/2:
    the measured (1/k) sum_{t<k} ||grad f(x^t)||^2_{L^-1} stays below Theorem (19)'s
    right-hand side on every row, and the bound is far from vacuous (a quarter of
    ||grad f(x^0)||^2_{L^-1} after 400 rounds).  B_k = I makes the stationary law exact:
    E||grad f||^2_{L^-1} -> ||h||_L^2 + gamma/(2 - gamma) sigma^2, which the tail matches."""
    K = d = 8
    # [L_i]_jj ~ K on every shard (scale sqrt(K), no spread): the preconditioned sketch is
    # then nearly unbiased; the shards differ by their w_i
    train = ridge_set(tmp_path / "r.svm", 800, d, K, scale=math.sqrt(K), spread=0.0,
                      w_spread=0.3, seed=1)
    _, h, _ = cli_run(tmp_path, "t19", train, K, {"sketch": "perm_precond",
                                                  "step_size": "theory"}, rounds=400)
    gamma = h["step_size"][-1]
    assert gamma == pytest.approx(0.5, rel=1e-15)
    avg, bound = h["grad_avg"][1:], h["bound19"][1:]
    assert np.all(avg <= bound)
    assert bound[-1] < 0.25 * avg[0]                      # avg[0] = ||grad f(x^0)||^2_{L^-1}
    # the tail's ||grad f||^2_{L^-1}: from the running averages
    k = np.arange(1, len(avg) + 1)
    per_round = np.diff(np.concatenate(([0.0], avg * k)))
    tail = per_round[100:].mean()
    stationary = h["h_norm"][-1] ** 2 + gamma / (2 - gamma) * h["sigma2"][-1]
    assert tail == pytest.approx(stationary, rel=0.1)     # 300 nearly independent rounds
    # and the x-space mean-square bound: the tail's RMS distance is inside it
    assert np.sqrt(np.mean(h["dist_opt"][101:] ** 2)) <= h["dist_bound"][-1]


def test_theorem24_interpolation_with_homogeneous_perm(tmp_path):
    """b_i = 0 (zero labels), Perm-2 on heterogeneous shards with (29) and the theory step
    1/theta: the slides' (24), (1/T) sum_{t<T} E||grad f(x^t)||^2_{L^-1 W_bar L^-1} <=
    2 (f(x^0) - E f(x^T)) / (gamma T), with both expectations over 100 seeds, for every T
    (a single run can break it: the first rounds dominate both sides, and seed 0 does, by
    15%); and every run goes to x* = 0."""
    K, d = 3, 6
    train = ridge_set(tmp_path / "z.svm", 90, d, K, labels="zero")
    w0 = np.random.default_rng(0).standard_normal(d)
    X, y, parts, _ = problem_of(train, K, 1e-2)
    lhs, rhs = np.zeros(30), np.zeros(30)
    for seed in range(100):
        alg, info = api_run(X, y, parts, 1e-2, 30, w0=w0, seed=seed, sketch="perm",
                            step_size="theory", precondition="homogeneous")
        lhs += np.array([i["grad_avg_W"] for i in info]) / 100
        rhs += np.array([i["bound24"] for i in info]) / 100
        assert np.linalg.norm(alg.w) < 1e-2 * np.linalg.norm(w0)
    assert alg.gamma == pytest.approx(1 / info[-1]["theta"], rel=1e-15)
    assert np.all(lhs <= rhs)                       # measured: 5-7% below
    assert rhs[-1] < 0.1 * lhs[0]                   # not vacuous
    assert info[-1]["h_norm"] == 0.0                # b = 0: m = x* = 0
    assert info[-1]["sigma2"] < 1e-6 * info[0]["sigma2"]   # sigma^2(x) = x^T (..) x -> 0


# -- bad values ----------------------------------------------------------------------
@pytest.mark.parametrize("algorithm,loss,key", [
    ({"step_size": "large"}, "ridge", "algorithm.step_size"),
    ({"theory_beta": 0.5}, "ridge", "algorithm.theory_beta"),
    ({"theory_beta": 0}, "ridge", "algorithm.theory_beta"),
    ({"precondition": "jacobi"}, "ridge", "algorithm.precondition"),
    ({"step_size": "theory"}, "logistic", "algorithm.step_size: theory needs model.loss ridge"),
    ({"step_size": "theory", "local_steps": 2}, "ridge", "algorithm.step_size: theory needs one"),
    ({"step_size": "theory", "workers": 9}, "ridge", "algorithm.step_size: theory needs d >= K"),
])
def test_bad_values_exit_2_naming_the_key(tmp_path, algorithm, loss, key):
    train = ridge_set(tmp_path / "r.svm", 40, 4, 2, labels="sign" if loss == "logistic" else "ridge")
    algorithm = dict(algorithm)
    K = algorithm.pop("workers", 2)
    cfg = write_config(tmp_path / "c.yaml", data={"train": str(train)},
                       model={"loss": loss, "lambda": 0.01},
                       algorithm={"name": "ist", **algorithm}, run={"max_rounds": 2})
    res = CliRunner().invoke(main, ["run", str(cfg), "--backend", "sim", "--workers", str(K),
                                    "-o", str(tmp_path / "o.h5"), "-q"])
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert res.exit_code == 2 and len(lines) == 1 and key in lines[0], res.output
    assert not (tmp_path / "o.h5").exists()


def test_theory_without_a_theta_exits_2(tmp_path):
    """Two strongly correlated features of scales 1 and 10: Perm-1's W_bar = (n/2)(L D + D L)
    is indefinite ((28) fails), so no theta exists; the run says so and exits 2."""
    rng = np.random.default_rng(0)
    z = rng.standard_normal(200)
    X = np.column_stack([z + 0.1 * rng.standard_normal(200), 10 * z])
    write_libsvm(tmp_path / "c.svm", X, z)
    cfg = write_config(tmp_path / "c.yaml", data={"train": str(tmp_path / "c.svm")},
                       model={"loss": "ridge", "lambda": 1e-4},
                       algorithm={"name": "ist", "sketch": "perm", "step_size": "theory"},
                       run={"max_rounds": 2})
    res = CliRunner().invoke(main, ["run", str(cfg), "--backend", "sim", "--workers", "2",
                                    "-o", str(tmp_path / "o.h5"), "-q"])
    assert res.exit_code == 2, res.output
    assert "algorithm.step_size: theory: W_bar (22) is not positive definite" in res.output


# -- bytes ---------------------------------------------------------------------------
def test_homogeneous_bytes_by_hand(tmp_path):
    """perm + homogeneous: the scale c_i / D on S_i is q_i floats (not one), so the
    payloads are [q_i, S_i, w_i, scale_i]: 8 (3d + K) bytes, plus K headers + phi and the
    K Scatterv counts; the D round once (d floats up per worker).  identity + homogeneous
    broadcasts D^-1 with x (d + 1 + d floats per worker)."""
    K, d = 3, 7
    train = ridge_set(tmp_path / "r.svm", 60, d, K)
    _, h, _ = cli_run(tmp_path, "p", train, K, {"sketch": "perm", "precondition": "homogeneous"})
    np.testing.assert_array_equal(np.diff(h["bytes_down"][1:]), K * 72 + 8 * K + 8 * (3 * d + K))
    np.testing.assert_array_equal(h["comm_rounds"], [0, 2, 3])
    assert h["bytes_up"][1] == 8 * K * d + 8 * d
    _, h, _ = cli_run(tmp_path, "i", train, K, {"sketch": "identity",
                                                "precondition": "homogeneous"})
    np.testing.assert_array_equal(np.diff(h["bytes_down"][1:]), K * (64 + 8 * (2 * d + 1)))


# -- sim == mpi ------------------------------------------------------------------------
@pytest.mark.mpi
@pytest.mark.parametrize("algorithm", [
    {"sketch": "perm", "step_size": "theory", "precondition": "homogeneous"},
    {"sketch": "perm_precond", "step_size": "theory", "precondition": "homogeneous"},
    {"sketch": "identity", "precondition": "homogeneous", "gamma": 0.3},
])
def test_sim_equals_mpi_with_the_new_options(tmp_path, algorithm):
    """mpiexec -n 3 (2 workers) against sim: the same rounds and bytes, every history
    column (the slides' quantities too) and the model to 1e-12."""
    train = ridge_set(tmp_path / "r.svm", 200, 10, 2)
    _, hs, ws = cli_run(tmp_path, "sim", train, 2, algorithm, rounds=15)
    _, hm, wm = cli_run(tmp_path, "mpi", train, 2, algorithm, rounds=15, n=3)
    for col in ("iteration", "comm_rounds", "bytes_up", "bytes_down"):
        np.testing.assert_array_equal(hs[col], hm[col])
    for col in ("loss", "step_size", "dist_opt", "h_norm", "sigma2", "theta", "W_min",
                "grad_avg", "grad_avg_W", "dist_bound"):
        np.testing.assert_allclose(hs[col], hm[col], rtol=1e-12, atol=0, equal_nan=True)
    np.testing.assert_allclose(ws, wm, rtol=0, atol=1e-12 * np.abs(ws).max())
    assert hs["loss"][-1] < 0.9 * hs["loss"][0]


def test_stop_and_resume_with_theory_and_homogeneous(tmp_path):
    """The theory step, D, the diagonal table and the analysis state (running sums
    included) are checkpointed: stop after 3 steps, resume, and the history and model
    equal an uninterrupted run's (1e-12)."""
    train = ridge_set(tmp_path / "r.svm", 120, 6, 6)          # d = K: bound19 is logged
    cfg = write_config(tmp_path / "c.yaml", data={"train": str(train), "partition": "contiguous"},
                       model={"loss": "ridge", "lambda": 1e-2},
                       algorithm={"name": "ist", "sketch": "perm_precond", "step_size": "theory",
                                  "precondition": "homogeneous"},
                       run={"grad_rtol": None, "max_rounds": 12})
    opts = ["--backend", "sim", "--workers", "6", "-q"]
    assert cli("run", cfg, *opts, "-o", tmp_path / "full.h5").returncode == 0
    res = cli("run", cfg, *opts, "-o", tmp_path / "stop.h5",
              extra_env={"DISTNEWTON_TEST_SIGNAL": "SIGTERM@3"})
    assert res.returncode == 3, res.stderr
    res = cli("run", "--resume", tmp_path / "stop.h5", *opts)
    assert res.returncode == 0, res.stderr
    _, hf, wf = read_result(tmp_path / "full.h5")
    _, hr, wr = read_result(tmp_path / "stop.h5")
    for col in ("comm_rounds", "bytes_up", "bytes_down"):
        np.testing.assert_array_equal(hr[col], hf[col])
    for col in ("loss", "step_size", "grad_avg", "bound19", "sigma2", "dist_bound"):
        np.testing.assert_allclose(hr[col], hf[col], rtol=1e-12, equal_nan=True, err_msg=col)
    np.testing.assert_allclose(wr, wf, rtol=0, atol=1e-12 * np.abs(wf).max())
    assert np.isfinite(hr["bound19"][1:]).all()
