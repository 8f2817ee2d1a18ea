"""FedNL (compressed Hessian learning) against independent references: every
compressor against its definition, FedNL with the identity compressor and
alpha = 1 against an independent numpy loop (Newton with the previous round's
Hessian), scikit-learn's optimum for Top-K, option 2, FedNL-LS and FedNL-PP,
the bytes of a round by hand for every compressor, and real ``mpiexec`` runs
(collective, ragged and subset rounds) equal to the sim backend."""

import numpy as np
import pytest

import distnewton
from distnewton.algorithms.fednl.compressors import (Compressor, pack_indices, top_indices,
                                                     unpack_indices)
from distnewton.errors import UserError
from distnewton.runtime import HEADER_BYTES
from support.launch import SHARED, cli, read_result, write_config
from support.references import a9a_like, logistic_reference

LAM = 1e-3


def sym(d, seed=0):
    A = np.random.default_rng(seed).standard_normal((d, d))
    return A + A.T


# -- compressors against their definitions ---------------------------------
def test_indices_pack_two_per_word_and_round_trip():
    for n in (0, 1, 2, 7, 8):
        idx = np.arange(n) * 1000 + 3
        words = pack_indices(idx)
        assert words.dtype == np.float64 and words.size == (n + 1) // 2
        assert np.array_equal(unpack_indices(words, n), idx)


def test_identity_is_exact_on_the_upper_triangle():
    M = sym(7)
    c = Compressor("identity", 7)
    msg = c.encode(M)
    assert msg.size == 28 == c.words() and np.array_equal(c.decode(msg), M)
    assert c.alpha_theory() == 1.0


def test_topk_keeps_the_k_largest_upper_entries():
    d, M = 9, sym(9, 1)
    c = Compressor("topk", d, k_mult=2)                 # K = 18 of D = 45
    C = c.decode(c.encode(M))
    u, v = M[np.triu_indices(d)], C[np.triu_indices(d)]
    kept = np.flatnonzero(v)
    assert kept.size == 18
    assert np.array_equal(v[kept], u[kept])             # kept entries unchanged
    assert np.abs(u[kept]).min() >= np.abs(np.delete(u, kept)).max()
    assert np.array_equal(C, C.T)
    assert c.alpha_theory() == pytest.approx(1 - np.sqrt(1 - (2 * 18 - 9) / 81), rel=1e-15)
    assert c.words() == 18 + 9
    assert np.array_equal(top_indices(np.array([1.0, -3.0, 3.0, 2.0]), 2), [1, 2])  # ties


@pytest.mark.parametrize("name", ["randk", "randseqk"])
def test_random_compressors_are_unbiased(name):
    """E C(M) = M: the mean of 20000 draws within 5 standard errors, entry by entry
    (each entry's variance is (D/K - 1) u^2)."""
    d, M = 5, sym(5, 2)
    c = Compressor(name, d, k_mult=1)                   # K = 5 of D = 15
    rng = np.random.default_rng(0)
    N = 20000
    mean = sum(c.decode_upper(c.encode(M, rng, k=0, t=t), k=0, t=t) for t in range(N)) / N
    u = M[np.triu_indices(d)]
    se = np.sqrt((c.D / c.K - 1) / N) * np.abs(u)
    assert np.all(np.abs(mean - u) <= 5 * se)
    assert c.alpha_theory() == pytest.approx(c.K / c.D, rel=1e-15)


def test_randseqk_indices_come_from_the_shared_seed():
    d, M = 6, sym(6, 3)
    c, other_end = Compressor("randseqk", d, k_mult=1, seed=4), Compressor("randseqk", d, 1, 1, 4)
    msg = c.encode(M, k=2, t=5)
    assert msg.size == c.K == 6                          # values only: no indices sent
    v = other_end.decode_upper(msg, k=2, t=5)
    s = c.seq_offset(2, 5)
    idx = (s + np.arange(6)) % c.D                       # K consecutive from the offset
    assert np.array_equal(np.flatnonzero(v), np.sort(idx))
    assert np.allclose(v[idx], M[np.triu_indices(d)][idx] * c.D / c.K, rtol=1e-15, atol=0)
    offsets = {c.seq_offset(k, t) for k in range(3) for t in range(20)}
    assert len(offsets) > 10                             # clients and rounds differ
    assert len({Compressor("randseqk", d, 1, 1, s).seq_offset(2, 5) for s in range(20)}) > 5


def test_rankr_error_equals_the_discarded_eigenvalues():
    d, M = 8, sym(8, 4)
    lam = np.linalg.eigvalsh(M)
    for R in (1, 3):
        c = Compressor("rankr", d, rank=R)
        C = c.decode(c.encode(M))
        discarded = np.sort(np.abs(lam))[:d - R]
        assert np.linalg.norm(M - C) ** 2 == pytest.approx(np.sum(discarded ** 2), rel=1e-10)
        assert np.linalg.matrix_rank(C, tol=1e-9) == R and c.words() == R * (d + 1)
        assert c.alpha_theory() == pytest.approx(1 - np.sqrt(1 - R / d))


def test_toplek_sends_the_fewest_entries_that_keep_the_contraction():
    d, M = 10, sym(10, 5)
    c = Compressor("toplek", d, k_mult=3)               # K = 30 of D = 55
    msg = c.encode(M)
    u = M[np.triu_indices(d)]
    v = c.decode_upper(msg)
    k = np.count_nonzero(v)
    assert msg.size == k + (k + 1) // 2 and k <= c.K
    bound = (1 - c.K / c.D) * (u @ u)
    assert np.sum((u - v) ** 2) <= bound                 # contraction with delta = K/D
    top = np.sort(np.abs(u))[::-1]
    assert np.sum(top[k - 1:] ** 2) > bound              # one entry fewer would break it


# -- FedNL against independent references ----------------------------------
@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """2000 x 40 sparse binary logistic set and its scikit-learn optimum (lambda 1e-3)."""
    path = a9a_like(tmp_path_factory.mktemp("fednl") / "s.svm", n=2000, d=40, per_row=8)
    X, y, lam, w_ref, f_ref = logistic_reference(path, lam=LAM)
    return str(path), X.toarray(), y, w_ref, f_ref


def solve(small, workers=4, run=None, **algo):
    cfg = {"data": {"train": small[0]}, "model": {"loss": "logistic", "lambda": LAM},
           "algorithm": {"name": "fednl", **algo},
           "run": {"max_rounds": 400, "grad_norm": 1e-11, "grad_rtol": 1e-16, **(run or {})}}
    return distnewton.solve(cfg, workers=workers)


def numpy_grad_hess(X, y, w):
    z = y * (X @ w)
    s = 1 / (1 + np.exp(z))                              # sigma(-z)
    g = -(X.T @ (y * s)) / len(y) + LAM * w
    H = (X.T * (s * (1 - s))) @ X / len(y) + LAM * np.eye(X.shape[1])
    return g, H


def test_identity_alpha_1_is_newton_with_the_previous_rounds_hessian(small):
    """x1 = x0 - H(x0)^-1 g(x0); x_{k+1} = x_k - H(x_{k-1})^-1 g(x_k)  (mu = lambda:
    the projection never binds, every eigenvalue of H is >= lambda)."""
    _, X, y, _, _ = small
    for T in (1, 2, 5):
        r = solve(small, preset="paper", compressor="identity", alpha=1.0,
                  run={"max_iterations": T})
        w, H_prev = np.zeros(X.shape[1]), None
        for _ in range(T):
            g, H = numpy_grad_hess(X, y, w)
            w = w - np.linalg.solve(H if H_prev is None else H_prev, g)
            H_prev = H
        assert r.iterations == T
        assert np.linalg.norm(r.w - w) <= 1e-12 * np.linalg.norm(w)


@pytest.mark.parametrize("algo", [
    {"compressor": "topk"},
    {"compressor": "topk", "preset": "paper"},
    {"compressor": "topk", "line_search": True},
    {"compressor": "randseqk", "option": 2},
    {"compressor": "topk", "h0": "zero"},
    {"compressor": "toplek"},
    {"compressor": "rankr", "rank": 2, "alpha": 1.0},
    {"compressor": "randk", "participation": 2},
    {"compressor": "topk", "participation": 3, "h0": "zero"},
], ids=lambda a: "-".join(f"{k}={v}" for k, v in a.items()))
def test_reaches_the_sklearn_optimum(small, algo):
    """||w - w*|| <= 1e-8 ||w*|| (sklearn's Newton-Cholesky at tol 1e-12 is ~1e-12 off)."""
    r = solve(small, **algo)
    assert r.status == "converged", r.message
    assert np.linalg.norm(r.w - small[3]) <= 1e-8 * np.linalg.norm(small[3])
    assert r.history["participants"][-1] == algo.get("participation", 4)


@pytest.mark.data(reason="a9a: the issue's check of Top-K at the published set's scale")
def test_topk_on_a9a_reaches_sklearn_to_1e8(tmp_path):
    """The FedNL paper's lambda = 1e-3 (at lambda = 1/n = 3e-5 the floor mu = lambda
    lets FedNL's first steps, on a poorly learned H, go far: use FedNL-LS there)."""
    X, y, lam, w_ref, f_ref = logistic_reference(SHARED / "a9a.bz2", 123, lam=1e-3)
    cfg = {"data": {"train": str(SHARED / "a9a.bz2"), "n_features": 123},
           "model": {"loss": "logistic", "lambda": 1e-3},
           "algorithm": {"name": "fednl", "compressor": "topk"},
           "run": {"max_rounds": 300, "grad_norm": 1e-12, "grad_rtol": 1e-16}}
    r = distnewton.solve(cfg, workers=8)
    assert np.linalg.norm(r.w - w_ref) <= 1e-8 * np.linalg.norm(w_ref)
    assert (r.loss - f_ref) / f_ref <= 1e-12


def test_hessian_gap_shrinks_as_the_hessians_are_learned(small):
    r = solve(small, preset="paper", compressor="topk", option=2, h0="zero")
    gap = r.history["hessian_gap"][1:]        # l_k: from ||Hess f_i(x_1)|| (H_i = 0) down
    assert np.all(np.diff(gap) < 0) and gap[-1] < 1e-2 * gap[0]


# -- bytes by hand ------------------------------------------------------------
@pytest.mark.parametrize("name,words", [
    ("identity", lambda d, K: d * (d + 1) // 2),
    ("topk", lambda d, K: K + (K + 1) // 2),
    ("randk", lambda d, K: K + (K + 1) // 2),
    ("randseqk", lambda d, K: K),
    ("rankr", lambda d, K: 1 * (d + 1)),
])
def test_bytes_of_a_round_by_hand(small, name, words):
    """Round 0 (h0 local): reduce of [f, g, upper triangle of n_i H_i]; round 1: a
    gather of [g_i, message]; down: header, x and 4 control floats, per worker (the
    paper's FedNL: option 1, no line search)."""
    K, d = 4, 40
    r = solve(small, workers=K, preset="paper", compressor=name, k_mult=1,
              run={"max_iterations": 2})
    D, Kc = d * (d + 1) // 2, d
    down = 2 * K * (HEADER_BYTES + 8 * (d + 4))
    up = K * 8 * (1 + d + D) + K * 8 * (d + words(d, Kc))
    assert (r.rounds, r.bytes_down, r.bytes_up) == (2, down, up)


def test_toplek_bytes_are_its_entries_plus_a_length_word(small):
    """A ragged gather: per client d floats, k + ceil(k/2) words, one length word."""
    K, d = 4, 40
    r = solve(small, workers=K, compressor="toplek", k_mult=4, run={"max_iterations": 2})
    first = K * 8 * (1 + d + d * (d + 1) // 2)
    msg_words = (r.bytes_up - first - K * 8 * (d + 1)) // 8
    assert 0 < msg_words <= K * (4 * d + 2 * d)          # at most K entries and indices
    full = solve(small, workers=K, compressor="topk", k_mult=4, run={"max_iterations": 2})
    assert r.bytes_up < full.bytes_up


def test_participation_rounds_address_tau_clients(small):
    """FedNL-PP: a first full round, then one subset round to tau clients each."""
    K, d, tau = 4, 40, 2
    r = solve(small, workers=K, compressor="randseqk", k_mult=1, participation=tau,
              run={"max_iterations": 3})
    D = d * (d + 1) // 2
    head = HEADER_BYTES + 8 * (d + 4)
    assert r.rounds == 4
    assert r.bytes_down == K * head + 3 * tau * head
    assert r.bytes_up == K * 8 * (1 + d + D) + 3 * tau * 8 * (1 + d + d)


@pytest.mark.parametrize("algo,needle", [
    ({"participation": 9}, "algorithm.participation"),
    ({"participation": 2, "line_search": True}, "algorithm.line_search"),
    ({"participation": 2, "option": 1}, "algorithm.option"),
    ({"alpha": 1.5}, "algorithm.alpha"),
    ({"compressor": "top"}, "algorithm.compressor"),
])
def test_impossible_parameters_are_user_errors(small, algo, needle):
    with pytest.raises(UserError, match=needle):
        solve(small, **algo)


# -- real MPI: collective, ragged and subset rounds ----------------------------
@pytest.mark.mpi
@pytest.mark.parametrize("algo", [{"compressor": "toplek", "line_search": True},
                                  {"compressor": "randk", "participation": 2}],
                         ids=["toplek-ls", "randk-pp"])
def test_mpi_run_equals_the_sim_run(tmp_path, small, algo):
    cfg = write_config(tmp_path / "f.yaml", data={"train": small[0]},
                       model={"loss": "logistic", "lambda": LAM},
                       algorithm={"name": "fednl", **algo},
                       run={"max_rounds": 60, "max_iterations": 12, "grad_rtol": 1e-16})
    res = cli("run", cfg, "-o", tmp_path / "m.h5", "-q", n=4)
    assert res.returncode == 0, res.stderr
    _, hist, w = read_result(tmp_path / "m.h5")
    sim = solve(small, workers=3, run={"max_rounds": 60, "max_iterations": 12}, **algo)
    assert sim.iterations == 12 and sim.history["grad_norm"][-1] < 0.1 * sim.history["grad_norm"][0]
    assert np.linalg.norm(w - sim.w) <= 1e-12 * np.linalg.norm(sim.w)
    for key in ("comm_rounds", "bytes_up", "bytes_down"):
        assert np.array_equal(hist[key], sim.history[key])


def test_rows_per_worker_keeps_the_papers_split(small):
    """data.rows_per_worker: K x N rows, lambda = 1/n over those; N beyond a part is an error."""
    cfg = {"data": {"train": small[0], "rows_per_worker": 300},
           "model": {"loss": "logistic", "lambda": "1/n"},
           "algorithm": {"name": "fednl"}, "run": {"max_rounds": 4}}
    r = distnewton.solve(cfg, workers=4)
    assert list(r.attrs["shard_sizes"]) == [300] * 4 and r.attrs["n_samples"] == 1200
    assert r.attrs["lambda"] == 1 / 1200
    cfg["data"]["rows_per_worker"] = 501                  # the parts have 500 rows
    with pytest.raises(UserError, match="data.rows_per_worker: 501 rows per worker"):
        distnewton.solve(cfg, workers=4)


@pytest.mark.parametrize("compressor", ["randseqk", "randk", "toplek"])
def test_line_search_ahead_keeps_the_iterates_with_fewer_rounds(small, compressor):
    """ls_ahead: the unit step's loss rides with the next FedNL round.  Until the
    Armijo test compares losses at rounding level (||g|| ~ 1e-10 here), the iterates
    equal the plain line search's (the same losses, iteration by iteration), and the
    rounds to ||grad f|| <= 1e-9 drop by close to half (one per accepted unit step)."""
    runs = [solve(small, compressor=compressor, line_search=True, option=2, ls_ahead=ahead)
            for ahead in (False, True)]
    g = [r.history["grad_norm"] for r in runs]
    upto = int(np.flatnonzero(g[0] <= 1e-9)[0])
    assert np.array_equal(runs[0].history["loss"][:upto], runs[1].history["loss"][:upto])
    rounds = [int(r.history["comm_rounds"][np.flatnonzero(gn <= 1e-9)[0]])
              for r, gn in zip(runs, g)]
    assert rounds[1] < 0.75 * rounds[0]
    assert np.linalg.norm(runs[1].w - small[3]) <= 1e-8 * np.linalg.norm(small[3])
