"""``solver: auto`` for newton's Newton systems (the cost model of
:mod:`distnewton.algorithms.newton.solver_cost`) and the default CG tolerances: what auto
picks, that both paths reach scikit-learn's optimum, and that explicit settings
(``solver: cholesky`` / ``cg``, ``cg_rtol``) pass the solvers what they did before."""

from types import SimpleNamespace

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression

import distnewton.algorithms.primitives as P
from distnewton import api
from distnewton.algorithms.newton import solver_cost as sc
from distnewton.algorithms.base import Problem
from distnewton.algorithms.giant import GIANT
from distnewton.algorithms.newton import Newton
from distnewton.algorithms.newton_type import HESSIAN
from distnewton.data import write_libsvm
from distnewton.objectives import Shard
from distnewton.runtime.sim import SimRuntime

from support.launch import write_config
from support.references import german_like, logistic_reference


def sparse_rows(n=3000, d=123, per_row=14, seed=7):
    """a9a's shape in memory: binary rows with ``per_row`` ones, logistic labels."""
    rng = np.random.default_rng(seed)
    cols = np.stack([rng.choice(d, per_row, replace=False) for _ in range(n)])
    X = sp.csr_matrix((np.ones(n * per_row), (np.repeat(np.arange(n), per_row), cols.ravel())),
                      shape=(n, d))
    y = np.where(rng.random(n) < 1 / (1 + np.exp(-(X @ rng.standard_normal(d)) / 2)), 1.0, -1.0)
    return X, y


def dense_rows(n=3000, d=22, seed=5):
    rng = np.random.default_rng(seed)
    X = sp.csr_matrix(rng.uniform(-1.0, 1.0, (n, d)))
    y = np.where(rng.random(n) < 1 / (1 + np.exp(-X @ rng.standard_normal(d))), 1.0, -1.0)
    return X, y


def problem(X, K=2):
    n, d = X.shape
    parts = np.array_split(np.arange(n), K)
    sq, nnz = sc.row_nnz_sq(X, parts)
    return Problem(n=n, d=d, lam=1.0 / n, loss="logistic", sizes=tuple(len(p) for p in parts),
                   nnz=nnz, row_nnz_sq=sq), parts


def newton(X, y, K=2, **params):
    prob, parts = problem(X, K)
    full = {k: v.default for k, v in Newton.params.items()}
    full.update(params)
    rt = SimRuntime([Shard(X[p], y[p], "logistic", prob.lam) for p in parts], 0,
                    SimpleNamespace(**full))
    return Newton(rt, prob, full, np.zeros(X.shape[1]), seed=0), rt


def test_the_cost_model_by_hand():
    """The estimates are the documented formulas (hand-computed here)."""
    X, _ = sparse_rows()                       # 2 shards of 1500 rows, 14 non-zeros each
    prob, _ = problem(X)
    assert prob.nnz == (21000, 21000) and prob.row_nnz_sq == (1500 * 196.0,) * 2
    # sparse shard (d^2/2 = 7564.5 > 30 * 14^2), its pair map of 1500 * 14 * 15 / 2
    # pairs: 20 per pair + 20 d^2 + 2 d^3/3 flops
    want = sc.FLOP_SECONDS * (20 * 1500 * 105 + 20 * 123 ** 2 + 2 * 123 ** 3 / 3)
    assert sc.direct_seconds(prob) == pytest.approx(want, rel=1e-12)
    # a map over its byte budget: scipy's CSR product, 10.5 * sum nnz^2
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sc, "PAIRS_MAX_BYTES", 12 * 1500 * 105 - 1)
        want = sc.FLOP_SECONDS * (10.5 * 1500 * 196 + 20 * 123 ** 2 + 2 * 123 ** 3 / 3)
        assert sc.direct_seconds(prob) == pytest.approx(want, rel=1e-12)
    assert sc.cg_seconds(prob, 1e-3) == pytest.approx(10 * (1e-3 + sc.FLOP_SECONDS * 10 * 21000),
                                                      rel=1e-12)
    Xd, _ = dense_rows()                       # a dense shard: BLAS syrk and BLAS hvp
    prob, _ = problem(Xd)
    want = sc.FLOP_SECONDS * (1500 * 22 ** 2 / 2 + 20 * 22 ** 2 + 2 * 22 ** 3 / 3)
    assert sc.direct_seconds(prob) == pytest.approx(want, rel=1e-12)
    assert sc.cg_seconds(prob, 0.0) == pytest.approx(10 * sc.FLOP_SECONDS * 1.25 * 1500 * 22)


def wide_rows(n=20000, scale=0.0):
    """d = 300 and 30 non-zeros per row (forming H costs ~30 hvp), 10,000 rows per
    shard; ``scale`` = e spreads the column norms over 10^-e..1 (ill-conditioned H)."""
    X, y = sparse_rows(n=n, d=300, per_row=30)
    return (X @ sp.diags(np.logspace(-scale, 0, 300))).tocsr(), y


@pytest.mark.parametrize("rows, latency, want", [
    (sparse_rows, 2e-5, "tron"),        # 1500 rows of a9a's shape, cheap rounds
    (sparse_rows, 5e-4, "cholesky"),    # 10 rounds of 0.5 ms cost more than H
    (lambda: sparse_rows(n=32000), 5e-4, "cholesky"),  # a9a: H costs ~26 hvp, d^3 small
    (wide_rows, 5e-4, "tron"),          # w8a-like: d = 300, H costs ~30 hvp + d^3/3
    (wide_rows, 1e-2, "cholesky"),      # slow rounds: the direct path
    (dense_rows, 2e-5, "cholesky"),     # ijcnn1's shape: H from one small syrk
])
def test_auto_picks_by_cost_and_only_when_auto(rows, latency, want):
    X, y = rows()
    alg, rt = newton(X, y)
    rt.modelled_latency = latency - rt.round_latency
    assert alg.solver() == want and alg.solver_used == want and not alg.hessian_free()
    alg, rt = newton(X, y, cg_precondition="jacobi")  # preconditioned: line-search CG
    rt.modelled_latency = latency - rt.round_latency
    assert alg.solver() == ("cg" if want == "tron" else want)
    assert alg.hessian_free() == (want == "tron")
    for solver in ("cholesky", "cg", "tron"):          # explicit settings are obeyed
        alg, rt = newton(X, y, solver=solver)
        rt.modelled_latency = latency
        assert alg.solver() == solver and alg.hessian_free() == (solver == "cg")
    alg, _ = newton(X, y, cg_threshold=100 if X.shape[1] > 100 else 10)
    assert alg.solver() == "tron"                     # d > cg_threshold: always Hessian-free


@pytest.mark.parametrize("rows", [wide_rows, dense_rows])
def test_the_default_reaches_the_sklearn_optimum(rows):
    X, y = rows()
    alg, rt = newton(X, y)
    for _ in range(60):
        alg.step()
        with rt.evaluating():
            if np.linalg.norm(P.loss_grad(rt, alg.prob, alg.w)[1]) < 1e-12:
                break
    ref = LogisticRegression(C=1.0, fit_intercept=False, solver="newton-cholesky",
                             tol=1e-13, max_iter=200).fit(X, y)
    np.testing.assert_allclose(alg.w, ref.coef_.ravel(), rtol=0,
                               atol=1e-7 * np.abs(ref.coef_).max())
    assert alg.solver_used == ("tron" if rows is wide_rows else "cholesky")


def test_auto_leaves_cg_once_a_solve_costs_more_than_a_direct_iteration(monkeypatch):
    """Column norms over 10^-2..1: the Hessian-free path starts (TRON; the estimate
    is per 10 hvp) but its CG counts grow past the break-even; from the next
    iteration on the run is Cholesky, and it still reaches scikit-learn's optimum.
    Here without pair maps (scipy's CSR product forms H: nothing to build)."""
    import distnewton.objectives as O
    for module in (sc, O):
        monkeypatch.setattr(module, "PAIRS_MAX_BYTES", 0)
    X, y = wide_rows(scale=2.0)
    alg, rt = newton(X, y)
    assert alg.solver() == "tron" and sc.map_build_seconds(alg.prob) == 0
    limit = sc.break_even_hvps(alg.prob, rt.round_latency)
    assert 15 < limit < 30                  # ~ 19 ms per direct iteration / 1 ms per hvp
    counts = []
    for _ in range(40):
        counts.append(alg.step()["cg_iterations"])
        with rt.evaluating():
            if np.linalg.norm(P.loss_grad(rt, alg.prob, alg.w)[1]) < 1e-11:
                break
    first = next(i for i, c in enumerate(counts) if c > limit)
    assert all(0 < c <= limit for c in counts[:first])        # CG while it was cheap
    assert counts[first + 1:] and not any(counts[first + 1:])  # then Cholesky for good
    assert alg.solver_used == "cholesky"
    ref = LogisticRegression(C=1.0, fit_intercept=False, solver="newton-cholesky",
                             tol=1e-13, max_iter=200).fit(X, y)
    np.testing.assert_allclose(alg.w, ref.coef_.ravel(), rtol=0,
                               atol=1e-6 * np.abs(ref.coef_).max())


def test_the_break_even_charges_the_pair_maps_build():
    """With pair maps the direct iteration that would replace CG also builds them:
    PAIR_BUILD per pair of the largest shard, on top of the per-iteration cost; the
    same ill-conditioned run then stays Hessian-free (its solves of 17-29 products
    cost less than forming and factoring H for the first time)."""
    X, y = wide_rows(scale=2.0)
    alg, rt = newton(X, y)
    pairs = 10000 * 30 * 31 / 2                          # 10,000 rows of 30 non-zeros
    assert sc.map_build_seconds(alg.prob) == pytest.approx(sc.FLOP_SECONDS * 50 * pairs)
    per_hvp = sc.cg_seconds(alg.prob, rt.round_latency) / sc.CG_EXPECTED
    assert sc.break_even_hvps(alg.prob, rt.round_latency) == pytest.approx(
        (sc.direct_seconds(alg.prob) + sc.map_build_seconds(alg.prob)) / per_hvp)
    counts = [alg.step()["cg_iterations"] for _ in range(16)]
    assert max(counts) > 15 and alg.solver_used == "tron"


def test_auto_with_jacobi_leaves_line_search_cg_the_same_way(monkeypatch):
    """Preconditioned, auto's Hessian-free path is the line-search Newton-CG; a solve
    over the break-even (here set to 1 hvp) sends it to Cholesky just the same."""
    X, y = wide_rows(scale=2.0)
    alg, rt = newton(X, y, cg_precondition="jacobi")
    monkeypatch.setattr(sc, "break_even_hvps", lambda prob, latency: 1.0)
    assert alg.solver() == "cg"
    first = alg.step()
    assert first["cg_iterations"] > 1 and alg.solver_used == "cholesky"
    assert alg.step()["cg_iterations"] == 0 and alg.curvature() == HESSIAN

def capture_cg(monkeypatch):
    seen = []
    real = P.cg

    def spy(op, b, rtol, maxiter=None, diag=None):
        seen.append(rtol)
        return real(op, b, rtol=rtol, maxiter=maxiter, diag=diag)
    monkeypatch.setattr(P, "cg", spy)
    return seen


def test_cg_tolerances_default_and_explicit(monkeypatch):
    """Unset cg_rtol: global Newton-CG at 0.1, local CG at 1e-10; set: the forcing
    sequence max(cg_rtol, min(0.1, sqrt(||g||/||g0||))) and cg_rtol, as before."""
    X, y = sparse_rows(n=600)
    seen = capture_cg(monkeypatch)
    alg, _ = newton(X, y, solver="cg")
    for _ in range(4):
        alg.step()
    assert seen == [0.1] * 4
    seen.clear()
    alg, rt = newton(X, y, solver="cg", cg_rtol=1e-10)
    norms = []
    for _ in range(4):
        with rt.evaluating():
            norms.append(np.linalg.norm(P.loss_grad(rt, alg.prob, alg.w)[1]))
        alg.step()
    want = [max(1e-10, min(0.1, np.sqrt(g / norms[0]))) for g in norms]
    np.testing.assert_allclose(seen, want, rtol=1e-12)
    assert want[-1] < 0.1                               # the sequence did tighten
    for rtol, local in ((None, 1e-10), (1e-3, 1e-3)):
        seen.clear()
        prob, parts = problem(X)
        full = {k: v.default for k, v in GIANT.params.items()}
        full.update(solver="cg", direction="local", cg_rtol=rtol)
        rt = SimRuntime([Shard(X[p], y[p], "logistic", prob.lam) for p in parts], 0,
                        SimpleNamespace(**full))
        GIANT(rt, prob, full, np.zeros(X.shape[1])).step()
        assert seen == [local, local]                  # one local solve per worker


def run(tmp_path, path, **run_extra):
    cfg = write_config(tmp_path / "c.yaml", data={"train": str(path)},
                       model={"loss": "logistic", "lambda": "1/n"},
                       algorithm={"name": "newton"},
                       run={"max_rounds": 400, "grad_rtol": 1e-11, **run_extra})
    return api.solve(str(cfg), workers=2)


def test_the_run_pipeline_hands_auto_the_data_and_the_modelled_latency(tmp_path):
    """Through a config: w8a-like rows go to CG (the row counts reach the Problem),
    a modelled 10 ms per round sends them back to Cholesky; both reach f*."""
    X, y = wide_rows()                                   # 10,000 rows per worker
    path = tmp_path / "wide.svm"
    write_libsvm(path, X, y)
    _, _, _, _, f_ref = logistic_reference(path)
    fast = run(tmp_path, path)
    slow = run(tmp_path, path, latency_model={"per_round": 1e-2, "per_byte": 0.0})
    assert fast.history["cg_iterations"].sum() > 0 and slow.history["cg_iterations"].sum() == 0
    for res in (fast, slow):
        assert res.status == "converged"
        assert res.loss == pytest.approx(f_ref, rel=1e-12)
    dense = run(tmp_path, german_like(tmp_path / "german_like.svm"))   # d = 24, dense rows
    assert dense.history["cg_iterations"].sum() == 0
