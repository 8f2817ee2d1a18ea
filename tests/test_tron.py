"""``newton`` with ``solver: tron`` (trust-region Newton-CG,
:mod:`distnewton.algorithms.newton.tron`) and LIBLINEAR's stopping rule
``run.liblinear_eps``: the optimum against scikit-learn (logistic, ridge), every
iteration against a numpy re-implementation of Lin, Weng & Keerthi's Algorithm 2
(Steihaug CG, radius update) on a small dense problem, sim against ``mpiexec -n 3``,
and a stopped and resumed run against an uninterrupted one."""

from types import SimpleNamespace

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression, Ridge

from distnewton.algorithms import primitives as P
from distnewton.algorithms.base import Problem
from distnewton.algorithms.newton import Newton, Tron
from distnewton.data import write_libsvm
from distnewton.objectives import Shard
from distnewton.runtime.sim import SimRuntime

from support.checkpoints import EXIT_STOPPED, assert_resumed_equals_full, stopped_run
from support.launch import cli, read_result, write_config


def dense_problem(n=400, d=10, seed=1, loss="logistic"):
    """Gaussian rows with column scales 1 .. 1e-2 (an ill-conditioned Hessian)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) * np.logspace(0, -2, d)
    w = 3.0 * rng.standard_normal(d)
    if loss == "logistic":
        y = np.where(rng.random(n) < 1.0 / (1.0 + np.exp(-X @ w)), 1.0, -1.0)
    else:
        y = X @ w + 0.1 * rng.standard_normal(n)
    return X, y


def tron(X, y, loss="logistic", K=2, w0=None, **params):
    """(newton with solver tron, its sim runtime) over K contiguous shards, lambda = 1/n."""
    n, d = X.shape
    lam = 1.0 / n
    parts = np.array_split(np.arange(n), K)
    full = {k: v.default for k, v in Newton.params.items()}
    full.update(solver="tron", **params)
    rt = SimRuntime([Shard(sp.csr_matrix(X[p]), y[p], loss, lam) for p in parts], 0,
                    SimpleNamespace(**full))
    prob = Problem(n=n, d=d, lam=lam, loss=loss, sizes=tuple(len(p) for p in parts))
    return Newton(rt, prob, full, np.zeros(d) if w0 is None else w0), rt


def grad_norm(alg, rt):
    with rt.evaluating():
        return float(np.linalg.norm(P.loss_grad(rt, alg.prob, alg.w)[1]))


def solve(alg, rt, rtol, steps=100):
    """Iterate until ||g|| <= rtol ||g(w_0)||; fails on a stall before that."""
    g0 = grad_norm(alg, rt)
    for _ in range(steps):
        alg.step()
        if grad_norm(alg, rt) <= rtol * g0:
            return
        assert not alg.stalled, alg.stalled
    pytest.fail(f"not at {rtol} after {steps} iterations")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_logistic_reaches_the_sklearn_optimum(seed):
    """To ||g|| <= 1e-12 ||g_0|| (past tron.cpp's stop at reductions of 1e-12 |f|,
    where the gradient decides); the minimiser is unique: w to 1e-9 of
    scikit-learn's at tol 1e-14."""
    X, y = dense_problem(seed=seed)
    alg, rt = tron(X, y)
    solve(alg, rt, 1e-12)
    ref = LogisticRegression(C=1.0, fit_intercept=False, solver="newton-cholesky", tol=1e-14,
                             max_iter=200).fit(X, y).coef_.ravel()
    np.testing.assert_allclose(alg.w, ref, rtol=0, atol=1e-9 * np.abs(ref).max())
    assert alg.solver_used == "tron" and alg.tron.accepted > 3


def test_ridge_reaches_the_closed_form_and_sklearn():
    X, y = dense_problem(loss="ridge")
    n = X.shape[0]
    alg, rt = tron(X, y, loss="ridge")
    solve(alg, rt, 1e-10)
    closed = np.linalg.solve(X.T @ X / n + np.eye(X.shape[1]) / n, X.T @ y / n)
    ref = Ridge(alpha=1.0, fit_intercept=False, solver="cholesky").fit(X, y).coef_
    np.testing.assert_allclose(ref, closed, rtol=0, atol=1e-10 * np.abs(closed).max())
    np.testing.assert_allclose(alg.w, closed, rtol=0, atol=1e-8 * np.abs(closed).max())


# -- one TRON iteration in numpy (Lin, Weng & Keerthi 2008, Alg. 2; Steihaug 1983) ----
def f_g_H(X, y, w):
    lam, n = 1.0 / len(y), len(y)
    z = y * (X @ w)
    sig = 1.0 / (1.0 + np.exp(-z))
    f = np.mean(np.logaddexp(0.0, -z)) + 0.5 * lam * w @ w
    g = X.T @ (-(1.0 - sig) * y) / n + lam * w
    H = X.T @ (X * (sig * (1.0 - sig))[:, None]) / n + lam * np.eye(len(w))
    return f, g, H


def steihaug(H, g, delta, xi):
    """Nocedal & Wright Alg. 7.2 on min g.s + s.Hs/2, ||s|| <= delta, to ||r|| <= xi ||g||;
    returns (s, on the boundary)."""
    def boundary(s, d):
        roots = np.roots([d @ d, 2 * s @ d, s @ s - delta ** 2])
        return s + max(roots.real) * d
    s, r = np.zeros_like(g), g.copy()
    d = -r
    while True:
        dHd = d @ H @ d
        if dHd <= 0:
            return boundary(s, d), True
        a = (r @ r) / dHd
        if np.linalg.norm(s + a * d) >= delta:
            return boundary(s, d), True
        s_next, r_next = s + a * d, r + a * (H @ d)
        if np.linalg.norm(r_next) <= xi * np.linalg.norm(g):
            return s_next, False
        d = -r_next + (r_next @ r_next) / (r @ r) * d
        s, r = s_next, r_next


def reference_iteration(X, y, w, delta, first):
    """(s, prered, Delta', accepted, rho) of one iteration: Delta' by rho = actred/prered
    and alpha, the minimiser of the quadratic through f(w), g.s, f(w + s) (sigma3 = 4
    when it is concave), the first iteration first cutting Delta to ||s||; with both
    reductions below 1e-12 |f| (rho None), accepted when ||g|| decreases, Delta kept."""
    f, g, H = f_g_H(X, y, w)
    s, _ = steihaug(H, g, delta, 0.1)
    prered = -(g @ s + 0.5 * s @ H @ s)
    f_new, g_new, _ = f_g_H(X, y, w + s)
    rho = (f - f_new) / prered
    if abs(f - f_new) <= 1e-12 * abs(f) and prered <= 1e-12 * abs(f):   # below rounding:
        return s, prered, delta, np.linalg.norm(g_new) < np.linalg.norm(g), None  # by ||g||
    snorm = np.linalg.norm(s)
    delta = min(delta, snorm) if first else delta
    curv = f_new - f - g @ s
    alpha = 4.0 if curv <= 0 else max(0.25, -(g @ s) / (2 * curv))
    if rho < 1e-4:
        new = min(alpha * snorm, 0.5 * delta)
    elif rho < 0.25:
        new = max(0.25 * delta, min(alpha * snorm, 0.5 * delta))
    elif rho < 0.75:
        new = max(0.25 * delta, min(alpha * snorm, 4.0 * delta))
    else:
        new = max(delta, min(alpha * snorm, 4.0 * delta))
    return s, prered, new, rho > 1e-4, rho


def test_every_iteration_matches_a_numpy_tron_iteration():
    """From w_0 = (-30, 30, ...) (far out: rejected steps, all four radius cases, steps
    inside and on the boundary, then reductions below f's rounding), each iteration of
    the module on 2 shards is the numpy one from the same w and Delta; Delta_0 =
    ||g_0|| / lambda."""
    X, y = dense_problem(seed=1)
    w0 = 30.0 * np.where(np.arange(X.shape[1]) % 2, 1.0, -1.0)
    newton, rt = tron(X, y, w0=w0)
    alg = newton.trust_region()             # the Tron whose hooks newton's solver tron runs
    seen, first = set(), True
    for t in range(40):
        it = alg.gradient()
        if t == 0:
            # LIBLINEAR's Delta_0 = ||grad f_L(w_0)||, f_L = f / lambda (lambda = 1/n)
            assert alg.delta == pytest.approx(len(y) * np.linalg.norm(f_g_H(X, y, w0)[1]),
                                              rel=1e-12)
        w, delta = it.w.copy(), alg.delta
        s, prered, new_delta, accept, rho = reference_iteration(X, y, w, delta, first)
        # the sums over 2 shards round differently: g agrees to ~1e-16 absolute, and the
        # step relative to what that is of g (measured: <= 30 times, the CG's amplification)
        g = f_g_H(X, y, w)[1]
        assert np.linalg.norm(it.g - g) <= 1e-14
        tol = 1e-12 + 100 * np.linalg.norm(it.g - g) / np.linalg.norm(g)
        p = alg.direction(it)
        np.testing.assert_allclose(-p, s, rtol=0, atol=tol * np.linalg.norm(s))
        assert it.predicted == pytest.approx(prered, rel=tol)
        alpha = alg.line_search(it, p)
        info = alg.update(it, p, alpha)
        assert (alpha == 1.0) == accept
        assert info["trust_radius"] == pytest.approx(new_delta, rel=tol)
        np.testing.assert_array_equal(alg.w, w - p if accept else w)   # w + s_t, or kept
        seen.add(("rho", None if rho is None else
                  int(np.searchsorted([1e-4, 0.25, 0.75], rho, side="right"))))
        seen.add(("boundary", bool(np.isclose(np.linalg.norm(s), delta, rtol=1e-9))))
        first = first and not accept
        if alg.stalled or grad_norm(alg, rt) < 1e-12:    # below: rounding decides
            break
    assert seen == {("rho", 0), ("rho", 1), ("rho", 2), ("rho", 3), ("rho", None),
                    ("boundary", True), ("boundary", False)}


def test_a_rejected_step_keeps_w_and_costs_only_its_rounds():
    """Rounds: 1 at w_0, then #CG + 1 per iteration; a rejection keeps w and g (no
    gradient round) and the next Hessian-vector rounds are at w again."""
    X, y = dense_problem(seed=1)
    w0 = 3.0 * np.where(np.arange(X.shape[1]) % 2, 1.0, -1.0)   # Delta_0 too large: 8 of
    alg, rt = tron(X, y, w0=w0)                                # 25 steps are rejected
    rounds, rejected = 1, 0
    for _ in range(25):
        before = alg.w.copy()
        info = alg.step()
        rounds += info["cg_iterations"] + 1
        assert rt.algo.rounds == rounds
        if info["step_size"] == 0.0:
            rejected += 1
            np.testing.assert_array_equal(alg.w, before)
    assert rejected >= 2



@pytest.mark.parametrize("layout", ["tron", "namespace"])
def test_the_trust_region_state_resumes_from_either_checkpoint_layout(layout):
    """newton's Tron (f, g, Delta and the accepted steps, on itself) goes through the
    checkpoint serialiser inside newton's entry and comes back a Tron; ``tron`` as a
    namespace of those four values (the layout of checkpoints written before Tron
    was a class) resumes too.  Either way the run goes on with the iterates of an
    uninterrupted one, bit for bit (from w_0 = (-30, 30, ...): rejected steps too)."""
    import io

    import h5py

    from distnewton.io.checkpoint import restore_attributes, write_obj

    X, y = dense_problem(seed=1)
    w0 = 30.0 * np.where(np.arange(X.shape[1]) % 2, 1.0, -1.0)
    full, _ = tron(X, y, w0=w0)
    infos = [full.step() for _ in range(12)]
    alg, rt = tron(X, y, w0=w0)
    for _ in range(6):
        alg.step()
    tr = alg.tron
    assert isinstance(tr, Tron) and tr.accepted > 0
    if layout == "namespace":
        alg.tron = SimpleNamespace(f=tr.f, g=tr.g, delta=tr.delta, accepted=tr.accepted)
    with h5py.File(io.BytesIO(), "w") as f:
        write_obj(f, "algorithm", alg)
        resumed = Newton.__new__(Newton)
        restore_attributes(resumed, f["algorithm"], rt, alg.prob)
    assert type(resumed.tron) is (Tron if layout == "tron" else SimpleNamespace)
    for i in range(6, 12):
        assert resumed.step() == infos[i]
    assert type(resumed.tron) is Tron and resumed.tron.accepted == full.tron.accepted
    np.testing.assert_array_equal(resumed.w, full.w)

# -- through the CLI: sim = mpi, resume, LIBLINEAR's rule, bad values ----------------
@pytest.fixture(scope="module")
def far(tmp_path_factory):
    """An 800 x 10 set and a far warm start (3 rejected steps, iterations 5, 8 and 11,
    on 2 workers): (data file, w0 file)."""
    tmp = tmp_path_factory.mktemp("tron")
    X, y = dense_problem(n=800, d=10, seed=3)
    write_libsvm(tmp / "t.svm", sp.csr_matrix(X), y)
    np.save(tmp / "w0.npy", 30.0 * np.where(np.arange(10) % 2, 1.0, -1.0))
    return tmp / "t.svm", tmp / "w0.npy"


def config(tmp_path, far, **run):
    return write_config(tmp_path / "tron.yaml", data={"train": str(far[0])},
                        model={"loss": "logistic", "lambda": "1/n", "w0": str(far[1])},
                        algorithm={"name": "newton", "solver": "tron"},
                        run={"max_rounds": 400, "grad_rtol": 1e-10, **run})


@pytest.mark.slow
@pytest.mark.mpi
def test_sim_and_mpiexec_give_the_same_iterates(tmp_path, far):
    cfg = config(tmp_path, far)
    assert cli("run", cfg, "--backend", "sim", "--workers", 2, "-o", tmp_path / "s.h5",
               "-q").returncode == 0
    res = cli("run", cfg, "-o", tmp_path / "m.h5", "-q", n=3)
    assert res.returncode == 0, res.stderr
    attrs, hs, ws = read_result(tmp_path / "s.h5")
    _, hm, wm = read_result(tmp_path / "m.h5")
    assert attrs["status"] == "converged" and np.sum(hs["step_size"] == 0.0) >= 2
    for col in ("comm_rounds", "bytes_up", "bytes_down", "iteration", "step_size",
                "cg_iterations"):
        np.testing.assert_array_equal(hm[col], hs[col], err_msg=col)
    np.testing.assert_allclose(hm["trust_radius"][1:], hs["trust_radius"][1:], rtol=1e-12)
    np.testing.assert_allclose(hm["loss"], hs["loss"], rtol=1e-12)
    np.testing.assert_allclose(wm, ws, rtol=0, atol=1e-12 * np.abs(ws).max())


@pytest.mark.slow
@pytest.mark.parametrize("backend", [pytest.param("mpi", marks=pytest.mark.mpi), "sim"])
@pytest.mark.parametrize("after", ["rejected", "accepted"])
def test_stop_then_resume_equals_an_uninterrupted_run(tmp_path, far, backend, after):
    """Stopped right after a rejected step (the workers hold w and the trial point:
    the next round must use w) and after an accepted one; the radius, f, g and the
    workers' points come back from the checkpoint."""
    cfg = config(tmp_path, far)
    opts = ["--backend", "sim", "--workers", "2"] if backend == "sim" else []
    n = 3 if backend == "mpi" else None
    full, stopped = tmp_path / "full.h5", tmp_path / "stopped.h5"
    res = cli("run", cfg, *opts, "-o", full, "-q", n=n)
    assert res.returncode == 0, res.stderr
    steps = read_result(full)[1]["step_size"]
    at = int(np.flatnonzero(steps == (0.0 if after == "rejected" else 1.0))[1])
    res = stopped_run(cfg, stopped, backend, at=at, opts=opts)
    assert res.returncode == EXIT_STOPPED, res.stderr
    hist_stop = read_result(stopped)[1]
    assert hist_stop["step_size"][-1] == steps[at]
    res = cli("run", "--resume", stopped, *opts, "-q", n=n)
    assert res.returncode == 0, res.stderr
    assert_resumed_equals_full(stopped, full, hist_stop)


@pytest.mark.slow
def test_liblinear_eps_stops_at_liblinears_threshold(tmp_path, far):
    """||g|| <= eps max(min(#pos, #neg), 1)/n ||grad f(0)|| first holds at the last row
    (w0 here: zeros, as LIBLINEAR's gnorm0)."""
    X, y = dense_problem(n=800, d=10, seed=3)
    cfg = write_config(tmp_path / "ll.yaml", data={"train": str(far[0])},
                       model={"loss": "logistic", "lambda": "1/n"},
                       algorithm={"name": "newton", "solver": "tron"},
                       run={"max_rounds": 400, "grad_rtol": None, "liblinear_eps": 1e-3})
    res = cli("run", cfg, "--backend", "sim", "--workers", 2, "-o", tmp_path / "ll.h5", "-q")
    assert res.returncode == 0, res.stderr
    attrs, h, _ = read_result(tmp_path / "ll.h5")
    pos = int(np.sum(y > 0))
    limit = 1e-3 * max(min(pos, len(y) - pos), 1) / len(y) * h["grad_norm"][0]
    assert attrs["status"] == "converged" and "liblinear_eps" in attrs["message"]
    assert h["grad_norm"][-1] <= limit < h["grad_norm"][-2]


def test_liblinear_scale_counts_the_labels_on_the_workers():
    X, y = dense_problem()
    alg, rt = tron(X, y, K=3)
    pos = int(np.sum(y > 0))
    assert P.liblinear_scale(rt, alg.prob) == min(pos, len(y) - pos) / len(y)
    assert rt.algo.rounds == 1
    alg, rt = tron(*dense_problem(loss="ridge"), loss="ridge")
    assert P.liblinear_scale(rt, alg.prob) == 1.0 and rt.algo.rounds == 0


@pytest.mark.slow
@pytest.mark.parametrize("key, value, message", [
    ("run.liblinear_eps", "0", "run.liblinear_eps: must be > 0, got 0.0"),
    ("algorithm.cg_precondition", "jacobi", "algorithm.cg_precondition: solver tron runs "
                                            "unpreconditioned CG"),
    ("algorithm.solver", "trust", "algorithm.solver: must be one of auto, cholesky, cg, tron, "
                                  "got 'trust'"),
])
def test_bad_values_are_one_line_errors_naming_the_key(tmp_path, far, key, value, message):
    res = cli("run", config(tmp_path, far), "--backend", "sim", "--set", f"{key}={value}",
              "-o", tmp_path / "x.h5", "-q")
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1, res.stderr
    assert lines[0].startswith(f"distnewton: error: {message}")
