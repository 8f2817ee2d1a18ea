"""RANL (one-time Hessian, pruning masks, stale-region aggregation) against
independent references: the closed-form ridge optimum, scikit-learn's logistic
optimum (a synthetic set everywhere, a9a marked ``data``), exact hand counts of
the bytes, and a real ``mpiexec`` run.  ``german`` is a dense synthetic set of
german.numer_scale's shape (1000 x 24, +-1 labels), so the byte counts by hand
keep d = 24."""

import numpy as np
import pytest
from sklearn.datasets import load_svmlight_file

from distnewton.algorithms.ranl.masks import (check_tau, draw_masks, parse_capacities,
                                              region_counts, region_layout)
from distnewton.data import write_libsvm
from distnewton.errors import UserError
from support.launch import SHARED, cli, read_result, synth, write_config
from support.references import a9a_reference, logistic_objective, logistic_reference

A9A_DATA = pytest.mark.data(reason="a9a's scale for the rounds measured on it")
#: the defaults until 0.3 (now options): every region on every worker, gradients at the
#: full x_t over the whole shard, the Hessian at x0 only, no safeguard (the paper preset's
#: one-time Hessian and plain step), i.e. Newton with a frozen projected Hessian
OLD = {"preset": "paper", "capacities": 1.0, "eval_at": "full", "batch": None}
#: the old gradient (masked, at the full x_t, whole shard) with the capacities a test
#: sets, the paper's frozen Hessian and plain step
MASKED_FULL = {"preset": "paper", "eval_at": "full", "batch": None}


@pytest.fixture(scope="module")
def german(tmp_path_factory):
    return synth(tmp_path_factory.mktemp("ranl") / "g.svm", 1000, 24, density=1.0, seed=5)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """4000 x 40 synthetic logistic set: (path, data keys, X, y, lam, f*)."""
    path = synth(tmp_path_factory.mktemp("ranl") / "s.svm", 4000, 40, density=0.25)
    X, y, lam, _, f_ref = logistic_reference(path)
    return path, {}, X, y, lam, f_ref


@pytest.fixture(scope="module")
def a9a():
    X, y, lam, _, f_ref = a9a_reference()
    return SHARED / "a9a.bz2", {"n_features": 123}, X, y, lam, f_ref


def run(tmp_path, tag, train, workers=4, n=None, data=None, model=None, expect=0, **algo):
    run_keys = algo.pop("run", {})
    cfg = write_config(tmp_path / f"{tag}.yaml",
                       data={"train": str(train), **(data or {})},
                       model=model or {"loss": "logistic", "lambda": "1/n"},
                       algorithm={"name": algo.pop("name", "ranl"), **algo},
                       run={"max_rounds": 300, "grad_rtol": 1e-12, **run_keys})
    out = tmp_path / f"{tag}.h5"
    backend = [] if n else ["--backend", "sim", "--workers", workers]
    res = cli("run", cfg, *backend, "-o", out, "-q", n=n)
    assert res.returncode == expect, res.stderr
    return res if expect else read_result(out)


def ridge_optimum(path, lam):
    X, y = load_svmlight_file(str(path), zero_based=False)
    X = X.toarray()
    n, d = X.shape
    w = np.linalg.solve(X.T @ X / n + lam * np.eye(d), X.T @ y / n)
    return w, float(0.5 * np.mean((X @ w - y) ** 2) + 0.5 * lam * w @ w)


# -- masks, regions, capacities (no data needed) ---------------------------
@pytest.mark.parametrize("caps,Q,tau", [([0.3, 0.5, 0.7, 1.0], 10, 2), ([0.2] * 5, 10, 1),
                                        ([0.5] * 4, 4, 2), ([0.1, 1.0, 0.1], 7, 1)])
def test_masks_keep_their_sizes_and_cover_every_region_tau_times(caps, Q, tau):
    counts = region_counts(caps, Q)
    check_tau(tau, counts, Q)
    rng = np.random.default_rng(0)
    freq = np.zeros((len(caps), Q))
    for _ in range(300):
        M = draw_masks(rng, counts, Q, tau)
        np.testing.assert_array_equal(M.sum(axis=1), counts)
        assert M.sum(axis=0).min() >= tau
        freq += M
    # every worker sees every region it can: no region is systematically skipped
    assert (freq[counts < Q] > 0).all()


def test_regions_capacities_and_tau_errors():
    contiguous = region_layout(123, 10)
    assert np.all(np.diff(contiguous) >= 0) and set(np.bincount(contiguous)) == {12, 13}
    rnd = region_layout(123, "random", n_regions=10, region_seed=3)
    assert sorted(np.bincount(rnd)) == sorted(np.bincount(contiguous))
    np.testing.assert_array_equal(rnd, region_layout(123, "random", 10, 3))
    assert not np.array_equal(rnd, region_layout(123, "random", 10, 4))
    np.testing.assert_array_equal(region_counts([0.3, 0.05, 1.0], 10), [3, 1, 10])
    caps = parse_capacities("uniform(0.3, 1.0)", 6, seed=7)
    assert caps.min() >= 0.3 and caps.max() <= 1.0
    np.testing.assert_array_equal(caps, parse_capacities(" uniform( 0.3 ,1 ) ", 6, seed=7))
    for bad, key in [(lambda: region_layout(24, 30), "algorithm.regions"),
                     (lambda: region_layout(24, 4, n_regions=6), "algorithm.n_regions"),
                     (lambda: parse_capacities([0.5, 0.5], 3, 0), "algorithm.capacities"),
                     (lambda: parse_capacities("normal(0, 1)", 3, 0), "algorithm.capacities"),
                     (lambda: check_tau(3, np.array([5, 5]), 10), "algorithm.tau")]:
        with pytest.raises(UserError, match=key):
            bad()


# -- whole runs -----------------------------------------------------------
@pytest.mark.slow
def test_ridge_with_full_masks_is_newton_and_lands_on_the_closed_form(tmp_path, german):
    """Capacity 1, full batches: the frozen Hessian is the exact ridge Hessian, so one
    gradient round solves the problem.  label_skew shards have unequal sizes: the
    n_k/n weights make the aggregate the exact global gradient."""
    lam, K, d, Q = 1e-3, 4, 24, 10
    w_star, _ = ridge_optimum(german, lam)
    attrs, hist, w = run(tmp_path, "ridge", german, data={"partition": "label_skew"},
                         model={"loss": "ridge", "lambda": lam}, **OLD)
    assert attrs["status"] == "converged" and len(set(attrs["shard_sizes"])) > 1
    np.testing.assert_array_equal(hist["comm_rounds"], [0, 2])        # Hessian + gradient
    np.testing.assert_allclose(w, w_star, rtol=0, atol=1e-10 * np.abs(w_star).max())
    assert hist["bytes_up"][1] == 8 * K * (d * d + d)
    assert hist["bytes_down"][1] == 2 * K * (64 + 8 * d) + 8 * K + 8 * K * Q
    assert hist["coverage_min"][1] == K and hist["staleness"][1] == 0
    assert hist["hessian_computed"][1] == 1


@pytest.mark.parametrize("ref", ["small", pytest.param("a9a", marks=A9A_DATA)])
@pytest.mark.slow
def test_frozen_hessian_newton_reaches_1e8_of_sklearn_within_300_rounds(tmp_path, ref,
                                                                          request):
    """The old defaults (capacity 1, full batches).  a9a measured: 1e-8 after 208
    rounds (1 Hessian + 207 gradient rounds).  H = Hess f(0) bounds every Hessian
    from above (l'' <= 1/4), so the unit steps decrease f monotonically, linearly."""
    path, data, X, y, lam, f_ref = request.getfixturevalue(ref)
    attrs, hist, w = run(tmp_path, "faithful", path, data=data, **OLD,
                         run={"target_subopt": 1e-8, "f_star": f_ref})
    assert attrs["status"] == "converged" and hist["comm_rounds"][-1] <= 300
    assert -1e-12 <= (logistic_objective(X, y, w, lam) - f_ref) / f_ref <= 1e-8
    assert np.all(np.diff(hist["loss"]) <= 1e-15)


@pytest.mark.slow
def test_the_default_prunes_and_reaches_sklearns_optimum_on_coupled_data(tmp_path, small):
    """``algorithm: {name: ranl}`` on synthetic rows that span several regions (where
    the paper's pruned gradient is biased): partial masks really (capacities
    uniform(0.5, 1): fewer than 4 workers per region), refreshed Hessians, and 1e-8 of
    scikit-learn's f* (measured: 17 rounds, one Hessian refresh; the paper's preset
    stays above 1e-2)."""
    path, data, X, y, lam, f_ref = small
    attrs, hist, w = run(tmp_path, "default", path, data=data,
                         run={"target_subopt": 1e-8, "f_star": f_ref})
    assert attrs["status"] == "converged" and hist["comm_rounds"][-1] <= 40
    assert 0 <= (logistic_objective(X, y, w, lam) - f_ref) / f_ref <= 1e-8
    assert hist["coverage_mean"][1:].max() < 4 and hist["staleness"][2:].max() > 0
    assert hist["hessian_computed"].sum() >= 2                        # refreshed
    paper_attrs, paper_hist, _ = run(tmp_path, "paper", path, data=data, preset="paper",
                                     run={"max_rounds": 80})
    assert (np.nanmin(paper_hist["loss"]) - f_ref) / f_ref > 1e-4      # the paper's does not


@A9A_DATA
def test_the_default_reaches_1e6_of_sklearn_on_a9a_and_the_paper_preset_diverges(tmp_path,
                                                                                  a9a):
    """lambda = 1/n, 4 workers, iid: 1e-6 after 57 rounds (seed 0; 57-77 over seeds
    0-3, benchmarks/ranl_default.py).  ``preset: paper`` oscillates between 3 and 6000
    f(0) and ends ``diverged`` (the divergence guard) with the best model, w0 = 0."""
    _, _, X, y, lam, f_ref = a9a
    attrs, hist, w = run(tmp_path, "a9a-default", SHARED / "a9a.bz2", data={"n_features": 123},
                         run={"target_subopt": 1e-6, "f_star": f_ref, "max_rounds": 500})
    assert attrs["status"] == "converged" and hist["comm_rounds"][-1] <= 100
    assert (logistic_objective(X, y, w, lam) - f_ref) / f_ref <= 1e-6
    assert hist["coverage_mean"][1:].max() < 4
    attrs, hist, w = run(tmp_path, "a9a-paper", SHARED / "a9a.bz2", data={"n_features": 123},
                         preset="paper")
    assert attrs["status"] == "diverged" and "run.divergence_factor" in attrs["message"]
    assert hist["comm_rounds"][-1] <= 50
    assert logistic_objective(X, y, w, lam) == pytest.approx(np.min(hist["loss"]), rel=1e-12)


def conditioned_ridge(path, kappa, n=1000, d=20, seed=0):
    """X^T X / n = V diag(s^2) V^T with eigenvalues from 1 down to 1/kappa, V random."""
    rng = np.random.default_rng(seed)
    U, _ = np.linalg.qr(rng.standard_normal((n, d)))
    V, _ = np.linalg.qr(rng.standard_normal((d, d)))
    X = np.sqrt(n) * (U * np.logspace(0, -np.log10(kappa) / 2, d)) @ V.T
    write_libsvm(path, X, X @ rng.standard_normal(d) + 0.1 * rng.standard_normal(n))
    return path


@pytest.mark.slow
def test_rounds_do_not_depend_on_the_condition_number_but_gd_rounds_do(tmp_path):
    """Full masks (the old defaults): 2 rounds at every kappa (measured 2, 2, 2).  GD
    (Armijo): 387 rounds at kappa 1e2, not done in 500 at 1e4 and 1e6.  (With partial
    masks the stale blocks are not condition-number free: see benchmarks/paper_ranl.py.)"""
    lam, rounds = 1e-12, {"ranl": [], "gd": []}
    for kappa in (1e2, 1e4, 1e6):
        path = conditioned_ridge(tmp_path / f"k{kappa:.0e}.svm", kappa)
        _, f_star = ridge_optimum(path, lam)
        for name in rounds:
            attrs, hist, _ = run(tmp_path, f"{name}{kappa:.0e}", path, name=name,
                                 **(OLD if name == "ranl" else {}),
                                 model={"loss": "ridge", "lambda": lam},
                                 run={"grad_rtol": None, "target_subopt": 1e-8,
                                      "f_star": f_star, "max_rounds": 500})
            rounds[name].append(hist["comm_rounds"][-1] if attrs["status"] == "converged"
                                else np.inf)
    assert max(rounds["ranl"]) <= 3
    assert 10 * max(rounds["ranl"]) < rounds["gd"][0] < np.inf == rounds["gd"][1] == rounds["gd"][2]


@A9A_DATA
def test_heterogeneous_capacities_on_label_skewed_a9a_reach_1e6(tmp_path, a9a):
    """capacities uniform(0.3, 1) (3..10 of 10 regions), label_skew, the masked
    full-batch gradient: measured 1e-6 after 206 rounds (iid: 132)."""
    _, _, X, y, lam, f_ref = a9a
    attrs, hist, w = run(tmp_path, "het", SHARED / "a9a.bz2",
                         data={"n_features": 123, "partition": "label_skew"},
                         capacities="uniform(0.3, 1.0)", **MASKED_FULL,
                         run={"target_subopt": 1e-6, "f_star": f_ref})
    assert attrs["status"] == "converged" and hist["comm_rounds"][-1] <= 300
    assert (logistic_objective(X, y, w, lam) - f_ref) / f_ref <= 1e-6
    counts = region_counts(parse_capacities("uniform(0.3, 1.0)", 4, seed=0), 10)
    assert counts.min() < 10                                          # really partial
    np.testing.assert_array_equal(hist["coverage_mean"][1:], counts.sum() / 10)
    assert hist["coverage_min"][1:].min() >= 1
    assert hist["staleness"][1] == 0 and hist["staleness"][2:].min() > 0


@A9A_DATA
def test_refreshing_the_hessian_with_stale_blocks_needs_the_safeguard(tmp_path, a9a):
    """Measured (seed 0): hessian_refresh 10 alone blows up on label-skewed a9a with
    heterogeneous capacities (loss ~1e5 after 300 rounds): the fresh Hessian is much
    smaller than H0 and amplifies the stale blocks.  With the line search it is stable
    and reaches 1e-8 in 138 rounds (faithful, no refresh: 272)."""
    _, _, X, y, lam, f_ref = a9a
    common = dict(data={"n_features": 123, "partition": "label_skew"},
                  capacities="uniform(0.3, 1.0)", hessian_refresh=10, **MASKED_FULL)
    _, hist, _ = run(tmp_path, "refresh", SHARED / "a9a.bz2", **common)
    assert not hist["loss"][-1] < 1.0                                 # f(0) = log 2
    attrs, hist, w = run(tmp_path, "refresh-ls", SHARED / "a9a.bz2", safeguard="line_search",
                         run={"target_subopt": 1e-8, "f_star": f_ref}, **common)
    assert attrs["status"] == "converged" and hist["comm_rounds"][-1] <= 200
    assert (logistic_objective(X, y, w, lam) - f_ref) / f_ref <= 1e-8


@pytest.mark.parametrize("algo,needle", [({"tau": 5}, "tau <= 4"),
                                         ({"tau": 2, "capacities": 0.3}, "needs 20")])
@pytest.mark.slow
def test_impossible_tau_is_a_one_line_user_error(tmp_path, german, algo, needle):
    res = run(tmp_path, "tau", german, model={"loss": "ridge", "lambda": 1e-3}, expect=2,
              **algo)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "algorithm.tau" in lines[0] and needle in lines[0]
    assert not (tmp_path / "tau.h5").exists()


@pytest.mark.slow
def test_half_capacity_sends_exactly_half_the_gradient_bytes(tmp_path, german):
    """german: d = 24 in 4 regions of 6; capacity 0.5 -> 2 regions = 12 entries."""
    K, d, Q = 4, 24, 4
    per_round = {}
    for cap, s in ((1.0, 4), (0.5, 2)):
        _, hist, _ = run(tmp_path, f"cap{cap}", german, model={"loss": "ridge", "lambda": 1e-3},
                         regions=Q, capacities=cap, **MASKED_FULL,
                         run={"grad_rtol": None, "max_iterations": 4})
        up, down = np.diff(hist["bytes_up"]), np.diff(hist["bytes_down"])
        np.testing.assert_array_equal(up, [8 * K * (d * d + s * 6)] + [8 * K * s * 6] * 3)
        grad_down = K * (64 + 8 * d) + 8 * K + 8 * K * s
        np.testing.assert_array_equal(down, [K * (64 + 8 * d) + grad_down] + [grad_down] * 3)
        per_round[cap] = up[1:]
    np.testing.assert_array_equal(2 * per_round[0.5], per_round[1.0])


@pytest.mark.slow
def test_refresh_and_line_search_rounds_are_counted(tmp_path, german):
    K, d, m = 4, 24, 10                                # m = ls_steps trial steps per round
    _, hist, _ = run(tmp_path, "ls", german, model={"loss": "ridge", "lambda": 1e-3},
                     regions=4, capacities=0.5, hessian_refresh=2, safeguard="line_search",
                     **MASKED_FULL,
                     run={"grad_rtol": None, "max_iterations": 3})
    hess = hist["hessian_computed"][1:]
    np.testing.assert_array_equal(hess, [1, 0, 1])
    # line-search rounds from the accepted step alpha = 2^-j (trial j is in round j // m),
    # or all ceil(max_backtracks / m) = 3 rounds when no trial passed (step 0)
    steps = hist["step_size"][1:]
    ls = np.array([3 if a == 0 else int(round(-np.log2(a))) // m + 1 for a in steps])
    assert steps[0] == 1.0                              # the first, exact-Hessian step
    np.testing.assert_array_equal(np.diff(hist["comm_rounds"]), hess + 1 + ls)
    grad = 8 * K * (12 + 1)                             # masked entries + loss
    np.testing.assert_array_equal(np.diff(hist["bytes_up"]),
                                  8 * K * d * d * hess + grad + 8 * K * m * ls)


@pytest.mark.mpi
def test_mpi_run_equals_the_sim_run(tmp_path, small):
    """Everything random on: random regions, per-worker capacities, stochastic
    gradient and Hessian batches (worker streams), gradients at the pruned model."""
    algo = dict(regions="random", n_regions=8, region_seed=5, capacities=[0.5, 0.8],
                batch=1500, hessian_batch=1000, eval_at="pruned", run={"max_rounds": 12})
    _, hs, ws = run(tmp_path, "sim", small[0], workers=2, **dict(algo))
    _, hm, wm = run(tmp_path, "mpi", small[0], n=3, **dict(algo))
    for col in ("comm_rounds", "bytes_up", "bytes_down", "coverage_min", "coverage_mean",
                "staleness", "hessian_computed"):
        np.testing.assert_array_equal(hs[col], hm[col])
    np.testing.assert_allclose(hs["loss"], hm["loss"], rtol=1e-12)
    np.testing.assert_allclose(ws, wm, rtol=0, atol=1e-10 * np.abs(ws).max())
