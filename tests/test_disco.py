"""DiSCO (Zhang and Xiao 2015) against independent references: an independent
numpy DiSCO (dense Hessians, numpy solves) whose iterates and PCG counts
distnewton's match, scikit-learn's optimum on synthetic data and on a9a, the
rounds and bytes of an outer iteration by hand (a full Hessian-vector-product
round and a subset round to worker 0 per PCG iteration), and a real ``mpiexec``
run equal to the sim backend."""

import numpy as np
import pytest

import distnewton
from distnewton.errors import UserError
from distnewton.runtime import HEADER_BYTES
from support.a9a_runs import a9a_relative_gap
from support.launch import cli, read_result, synth, write_config
from support.references import logistic_objective, logistic_reference


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """600 x 10 logistic set: (path, X, y)."""
    path = synth(tmp_path_factory.mktemp("disco") / "s.svm", 600, 10, density=0.5, seed=5)
    X, y, *_ = logistic_reference(path, lam=1e-3)
    return path, X, y


def solve(path, workers=3, run=None, model=None, **algo):
    cfg = {"data": {"train": str(path), "partition": "contiguous"},
           "model": {"loss": "logistic", "lambda": 1e-3, **(model or {})},
           "algorithm": {"name": "disco", **algo},
           "run": {"max_rounds": 2000, "grad_rtol": 1e-13, **(run or {})}}
    return distnewton.solve(cfg, workers=workers)


def numpy_disco(X, y, lam, n1, mu, iterations, beta=0.05):
    """DiSCO in dense numpy: exact f'' and f_1'' (the first n1 rows), the paper's PCG
    and eps_k, the damped step.  Returns (w, PCG iterations per outer iteration)."""
    X = X.toarray()
    n, d = X.shape
    L = lam + 0.25 * np.sum(X * X) / n
    w, counts = np.zeros(d), []
    for _ in range(iterations):
        m = y * (X @ w)
        sig = 1 / (1 + np.exp(m))                                # sigma(-y x.w)
        g = -(X.T @ (y * sig)) / n + lam * w
        D = sig * (1 - sig)
        H = X.T @ (D[:, None] * X) / n + lam * np.eye(d)
        P = X[:n1].T @ (D[:n1, None] * X[:n1]) / n1 + (lam + mu) * np.eye(d)
        eps = beta * np.sqrt(lam / L) * np.linalg.norm(g)
        v, r = np.zeros(d), g.copy()
        s = np.linalg.solve(P, r)
        u, t = s.copy(), 0
        while True:
            t += 1
            a = (r @ s) / (u @ H @ u)
            v, r_new = v + a * u, r - a * (H @ u)
            if np.linalg.norm(r_new) <= eps:
                break
            s_new = np.linalg.solve(P, r_new)
            u = s_new + (r_new @ s_new) / (r @ s) * u
            r, s = r_new, s_new
        counts.append(t)
        w = w - v / (1 + np.sqrt(v @ H @ v))
    return w, counts


@pytest.mark.parametrize("mu,where", [(None, "worker"), (0.01, "worker"), (None, "master")])
def test_iterates_equal_an_independent_numpy_disco(small, mu, where):
    path, X, y = small
    r = solve(path, mu=mu, preconditioner=where, run={"max_iterations": 5, "grad_rtol": 1e-16})
    assert r.iterations == 5
    n1 = int(r.attrs["shard_sizes"][0])
    w_ref, counts = numpy_disco(X, y, 1e-3, n1, 1e-3 if mu is None else mu, 5)
    assert np.linalg.norm(r.w - w_ref) <= 1e-12 * np.linalg.norm(w_ref)
    assert list(r.history["pcg_iterations"][1:]) == counts
    assert min(counts) >= 2                    # PCG, not a one-step solve


def test_reaches_the_sklearn_optimum_on_synthetic_data(small):
    path, X, y = small
    _, _, lam, w_ref, f_ref = logistic_reference(path, lam=1e-3)
    r = solve(path, workers=4)
    assert r.attrs["status"] == "converged"
    f = logistic_objective(X, y, r.w, lam)
    assert (f - f_ref) / f_ref < 1e-8
    np.testing.assert_allclose(r.w, w_ref, atol=1e-6 * np.abs(w_ref).max())


def test_rounds_and_bytes_of_an_outer_iteration_by_hand(small):
    """Iteration k with T_k PCG iterations: the gradient round (w and a 1-float header
    down), P^{-1} f' to worker 0, T_k Hessian-vector-product rounds to all K and
    T_k - 1 more P^{-1} r rounds to worker 0: 2 T_k + 1 rounds.  The first iteration
    adds the L round (nothing down, 1 float up per worker)."""
    path, _, _ = small
    K, d = 3, 10
    r = solve(path, workers=K, run={"max_iterations": 4, "grad_rtol": 1e-16})
    h = r.history
    T = np.asarray(h["pcg_iterations"][1:])
    assert np.all(T >= 2)
    rounds = np.diff(h["comm_rounds"])
    np.testing.assert_array_equal(rounds, 2 * T + 1 + (np.arange(4) == 0))
    H = HEADER_BYTES
    grad_down, grad_up = K * (H + 8 * (d + 1)), K * 8 * (d + 1)
    hv_down, hv_up = K * (H + 8 * (d + 2)), K * 8 * d
    p_down, p_up = H + 8 * (d + 2), 8 * d                   # one worker only
    down = grad_down + T * hv_down + T * p_down
    up = grad_up + T * hv_up + T * p_up
    down[0] += K * H
    up[0] += K * 8
    np.testing.assert_array_equal(np.diff(h["bytes_down"]), down)
    np.testing.assert_array_equal(np.diff(h["bytes_up"]), up)


def test_the_papers_count_with_the_preconditioner_on_the_master(small):
    """preconditioner: master (here by ``preset: paper``): the gradient round is a
    gather in which worker 0 adds its Hessian's upper triangle; then T
    Hessian-vector rounds: T + 1 rounds (the worker variant would take 2T + 1)."""
    path, _, _ = small
    K, d = 3, 10
    r = solve(path, workers=K, preset="paper", run={"max_iterations": 4, "grad_rtol": 1e-16})
    h = r.history
    T = np.asarray(h["pcg_iterations"][1:])
    assert np.all(T >= 2)
    np.testing.assert_array_equal(np.diff(h["comm_rounds"]), T + 1 + (np.arange(4) == 0))
    H = HEADER_BYTES
    down = K * (H + 8 * d) + T * K * (H + 8 * (d + 2))
    up = K * 8 * (d + 1) + 8 * d * (d + 1) // 2 + T * K * 8 * d
    down[0] += K * H
    up[0] += K * 8
    np.testing.assert_array_equal(np.diff(h["bytes_down"]), down)
    np.testing.assert_array_equal(np.diff(h["bytes_up"]), up)


def test_large_d_preconditioner_by_local_cg_gives_the_same_iterates(small):
    """solver: cg (the inner local solve for large d) against the Cholesky factor."""
    path, _, _ = small
    runs = [solve(path, solver=s, run={"max_iterations": 4, "grad_rtol": 1e-16})
            for s in ("cholesky", "cg")]
    assert list(runs[0].history["pcg_iterations"]) == list(runs[1].history["pcg_iterations"])
    assert np.linalg.norm(runs[0].w - runs[1].w) <= 1e-8 * np.linalg.norm(runs[0].w)


def test_pcg_rtol_replaces_the_papers_rule_and_lambda_0_needs_it(small):
    path, _, _ = small
    loose = solve(path, pcg_rtol=0.5, run={"max_iterations": 3})
    tight = solve(path, run={"max_iterations": 3})
    assert loose.history["pcg_iterations"][1:].sum() < tight.history["pcg_iterations"][1:].sum()
    with pytest.raises(UserError, match="algorithm.pcg_rtol"):
        solve(path, model={"lambda": 0.0})


@pytest.mark.slow
@pytest.mark.data(reason="a9a's published-scale optimum")
def test_reaches_the_sklearn_optimum_on_a9a():
    r, gap = a9a_relative_gap({"name": "disco"}, max_rounds=3000)
    assert r.attrs["status"] == "converged" and gap < 1e-8


@pytest.mark.mpi
@pytest.mark.parametrize("where", ["worker", "master"])
def test_mpi_run_equals_the_sim_run(tmp_path, small, where):
    """Over MPI the P^{-1} rounds are point-to-point messages to rank 1 (worker), or
    the gradient round a gather of unequal replies (master)."""
    path, _, _ = small
    cfg = write_config(tmp_path / "d.yaml", data={"train": str(path), "partition": "contiguous"},
                       model={"loss": "logistic", "lambda": 1e-3},
                       algorithm={"name": "disco", "preconditioner": where},
                       run={"max_rounds": 2000, "max_iterations": 5, "grad_rtol": 1e-16})
    res = cli("run", cfg, "-o", tmp_path / "m.h5", "-q", n=4)
    assert res.returncode == 0, res.stderr
    _, hist, w = read_result(tmp_path / "m.h5")
    sim = solve(path, workers=3, preconditioner=where,
                run={"max_iterations": 5, "grad_rtol": 1e-16})
    assert sim.iterations == 5
    assert np.linalg.norm(w - sim.w) <= 1e-12 * np.linalg.norm(sim.w)
    for key in ("comm_rounds", "bytes_up", "bytes_down", "pcg_iterations"):
        assert np.array_equal(hist[key], sim.history[key])
