"""The scaled Local SGD claims tables (benchmarks/_scaled_localsgd_store.py and
_scaled_localsgd_claims.py): per-seed margins computed by hand, a run that never
reaches a target never invents a margin, the cache returns what was put, and a
variant that is not the paper's never enters a verdict."""

import sys

import numpy as np
import pytest

from support.launch import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
pytest.importorskip("h5py")
import _scaled_localsgd_claims as SC  # noqa: E402
import _scaled_localsgd_store as S  # noqa: E402


def runs(curves, rounds=None, gamma=1.0):
    """Runs from a list of suboptimality curves (one per seed), rounds 0..n-1."""
    curves = [np.asarray(c, dtype=float) for c in curves]
    rnd = [np.arange(len(c)) if rounds is None else np.asarray(rounds) for c in curves]
    return S.Runs(curves, rnd, gamma=gamma)


def test_rounds_to_a_target_count_communication_rounds_and_nan_when_not_reached():
    # global mode's history: round 0, then 2, 3, ... (the extra start round counts)
    r = runs([[1.0, 0.5, 0.05, 0.01], [1.0, 0.9, 0.8, 0.7]], rounds=[0, 2, 3, 4])
    got = r.reach(0.1)
    assert got[0] == 3 and np.isnan(got[1])
    assert r.budget == 4


def test_final_is_the_mean_of_the_last_ten_rounds():
    c = np.r_[np.ones(5), np.full(10, 0.02)]
    c[-1] = 0.11                                  # one noisy last round
    assert runs([c]).final()[0] == pytest.approx((9 * 0.02 + 0.11) / 10)


def test_margin_at_a_target_is_log10_of_the_rounds_ratio_censored_at_budget_plus_one():
    fast = runs([[1, 0.5, 1e-4, 1e-4], [1, 1, 1, 1], [1, 1, 1, 1]])     # hits 1e-3 at 2, never
    slow = runs([[1, 1, 1, 1e-4], [1, 1, 1, 1e-4], [1, 1, 1, 1]])       # at 3, at 3, never
    m = S.margin(fast, slow, 1e-3)
    assert m[0] == pytest.approx(np.log10(3 / 2))
    assert m[1] == pytest.approx(np.log10(3 / 4))    # A never: counted at budget + 1 = 4
    assert np.isnan(m[2])                             # neither: no margin invented


def test_margin_after_the_budget_and_the_no_worse_tolerance():
    a = runs([np.full(12, 0.01)])
    b = runs([np.full(12, 0.02)])
    assert S.margin(a, b, S.BUDGET)[0] == pytest.approx(np.log10(2))
    assert S.margin(b, a, S.BUDGET, tol=0.5)[0] == pytest.approx(0.5 - np.log10(2))


def test_best_of_margin_takes_the_strongest_competitor_and_skips_shared_failures():
    a = runs([np.full(12, 0.01), np.full(12, 0.01)])
    weak, strong = runs([np.full(12, 0.1)] * 2), runs([np.full(12, 0.02), np.full(12, 0.005)])
    m = S.best_of_margin(a, [weak, strong], S.BUDGET)
    assert m == pytest.approx([np.log10(2), np.log10(0.5)])
    never = runs([np.ones(12)] * 2)
    assert np.isnan(S.best_of_margin(never, [never], 1e-3)).all()


def test_gain_margin_is_the_difference_of_two_margins():
    v, b = runs([np.full(12, 0.01)]), runs([np.full(12, 0.1)])
    v2, b2 = runs([np.full(12, 0.05)]), runs([np.full(12, 0.1)])
    assert S.gain_margin(v, b, v2, b2, S.BUDGET)[0] == pytest.approx(1 - np.log10(2))


def test_the_cache_returns_what_was_put_under_the_configurations_key(tmp_path):
    store = S.Store(str(tmp_path / "c" / "curves.h5"))
    raw = {"algorithm": {"name": "scaled_localsgd", "gamma": 0.03}, "run": {"seed": 3}}
    key = store.key(raw, 8)
    assert store.get(key) is None
    store.put(key, {"loss": [0.7, 0.5], "comm_rounds": [0, 2]}, raw)
    got = store.get(key)
    assert list(got["loss"]) == [0.7, 0.5] and list(got["comm_rounds"]) == [0, 2]
    assert store.key(dict(raw, run={"seed": 4}), 8) != key != store.key(raw, 4)


def test_a_variant_that_is_not_the_papers_never_enters_the_verdict():
    claim = SC.Claim("p", "Sec. 1", "text", "setting")
    t = SC.Table(1, claim)
    ten = lambda v: {k: np.full(10, v) for k in SC.KEYS + SC.INFO}   # noqa: E731
    r = runs([np.full(12, 0.01)] * 10)
    t.add("ours", "exact diagonal", "a9a iid", r, ten(1.0))          # holds everywhere
    t.add("paper's", SC.PAPER, "a9a iid", r, ten(-1.0))              # holds nowhere
    assert t.verdict() == "no"
    assert "(not the paper's)" in t.rows[0][1]
    assert t.rows[1][1] == "as the paper writes it"


def test_target_names_are_powers_of_ten():
    assert [SC.key_name(k) for k in (1e-3, 1e-6, S.BUDGET)] == ["1e-3", "1e-6", "budget"]


@pytest.mark.slow
def test_smoke_run_prints_every_claim_with_a_verdict_and_the_papers_label(tmp_path):
    """``--smoke`` (synthetic data, 10 seeds, 21 rounds) goes through every claim
    table: each has its verdict line, the paper's rows and the exact diagonal's
    "(not the paper's)" label; it leaves nothing behind (cache and figure in a
    temporary folder)."""
    import subprocess

    from support.launch import env
    pytest.importorskip("sklearn")
    res = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "paper_scaled_localsgd.py"),
                          "--smoke"], cwd=tmp_path, env=env(), capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    out = res.stdout
    for n in range(1, 9):
        assert f"## Claim {n}:" in out
    assert out.count("**Verdict: ") == 8
    assert "as the paper writes it" in out and "exact diagonal (not the paper's)" in out
    assert not list(tmp_path.iterdir())
