"""The divergence guard (distnewton.divergence): its rules on synthetic loss
sequences, then whole runs that diverge without ever reaching inf/NaN.

The whole runs use RANL's ``preset: paper`` on one-hot logistic data (a9a's kind
of features: every row spans several regions), which blows up from f(0) = log 2
to 10..50 and oscillates there, as it does on a9a; the kept model is checked
against the loss recomputed in numpy from the data, not against the history
alone."""

import math

import numpy as np
import pytest
from scipy.special import expit

from distnewton.data import write_libsvm
from distnewton.divergence import FAR_COUNT, Guard
from support.launch import cli, read_result, write_config

RUN = {"divergence_patience": 20, "divergence_factor": 10.0, "oscillation_window": 50,
       "oscillation_margin": 1.0}


def first_fire(losses, run=RUN, f_zero=None):
    """(index, message) of the first loss that fires a rule; (None, "") if none."""
    g = Guard(run, losses[0], f_zero)
    for i, f in enumerate(losses[1:], start=1):
        msg = g.see(f)
        if msg:
            return i, msg
    return None, ""


def converging(n=600, f0=math.log(2), f_star=0.3, rate=0.05, noise=0.0, seed=0):
    """f* + (f0 - f*) exp(-rate t), plus |noise| x (f0 - f*) of floor noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    f = f_star + (f0 - f_star) * np.exp(-rate * t)
    f[1:] += noise * (f0 - f_star) * np.abs(rng.standard_normal(n - 1))
    return f


# -- the rules on loss sequences --------------------------------------------------
def test_converging_and_noisy_floor_sequences_never_fire():
    """Descent, and stochastic floors up to 20% of the progress made (Local SGD,
    RANL's mini-batches sit at 1e-3..1e-1 relative suboptimality, i.e. well under
    that) for 600 iterations: max_rounds, not diverged."""
    assert first_fire(converging()) == (None, "")
    for noise in (0.01, 0.05, 0.2):
        for seed in range(5):
            assert first_fire(converging(noise=noise, seed=seed)) == (None, ""), (noise, seed)


def test_a_run_far_above_the_start_fires_at_20_of_the_last_25_iterations():
    losses = [0.69, 0.5, 0.4] + [50.0] * 30
    i, msg = first_fire(losses)
    assert i == 2 + FAR_COUNT
    assert "run.divergence_factor (10) x the starting loss 0.69" in msg and "loss 50" in msg
    assert f"in {FAR_COUNT} of the last" in msg
    # dips below the threshold do not reset it: 4 of every 5 far above
    losses = [0.69] + [0.5 if k % 5 == 0 else 50.0 for k in range(1, 60)]
    assert first_fire(losses)[0] == 24                 # rows 1-24: 4 dips, 20 far above


#: RANL, capacities uniform(0.3, 1), label_skew a9a, frozen Hessian, no safeguard
#: (tests/test_ranl.py's heterogeneous run), its first 60 losses, measured: it
#: climbs to 690 f(w0), then converges (1e-6 after 206 rounds)
CLIMBS_THEN_CONVERGES = [
    0.6931, 221.9, 475.8, 158.3, 105.4, 99.53, 39.44, 73.25, 138.7, 195.4, 7.494, 56.98,
    3.405, 38.31, 1.703, 5.698, 3.540, 2.790, 2.844, 4.372, 6.299, 2.248, 2.812, 2.613,
    2.865, 0.7594, 0.4739, 0.5509, 0.9033, 1.228, 0.4014, 0.9078, 0.5879, 0.6898, 0.7979,
    0.8998, 0.3843, 0.8362, 1.558, 2.280, 2.927, 3.469, 3.862, 4.112, 0.3667, 3.279, 8.575,
    13.93, 19.07, 24.81, 0.3411, 14.54, 45.52, 1.748, 26.25, 2.253, 12.36, 40.83, 3.455,
    1.086] + [0.33 - 0.006 * k / 150 for k in range(150)]


def test_a_run_that_climbs_far_then_converges_does_not_fire():
    assert first_fire(CLIMBS_THEN_CONVERGES) == (None, "")


def test_isolated_trial_points_far_above_do_not_fire():
    """A safeguard that rejects a trial point logs its loss in one row and the
    accepted point's in the next (RANL's damping on a9a: one row at 117 f(x0))."""
    losses = list(converging(200))
    for i in range(2, 80, 2):
        losses[i] = 81.0
    assert first_fire(losses) == (None, "")


def test_a_sustained_oscillation_below_the_far_threshold_fires():
    """Best 0.45 early, then a loss that swings between 0.5 and 6 (under 10 f0):
    after 50 iterations without a new best, the median is far above f0."""
    rng = np.random.default_rng(1)
    losses = [math.log(2), 0.45] + list(rng.choice([0.5, 2.0, 4.0, 6.0], size=100))
    i, msg = first_fire(losses)
    assert i == 1 + 50
    assert "no new best loss in 50 iterations" in msg and "sustained oscillation" in msg
    # one lucky dip per window does not hide it (the median, not every loss)
    losses = [math.log(2), 0.45] + [0.46 if j % 10 == 0 else 3.0 for j in range(100)]
    assert first_fire(losses)[0] == 51


def test_a_floor_above_the_best_but_below_the_start_does_not_fire():
    """Best 0.301 once, then 500 iterations at 0.31..0.35; and IST's preconditioned
    sketch on label-skewed german ridge (configs/ist/german-ridge-precond.yaml,
    measured): f(0) = 0.5, best 0.359 at iteration 23, then 0.38..0.50 for 577
    iterations (median 0.43, more than half the progress lost): a floor."""
    rng = np.random.default_rng(2)
    losses = [math.log(2), 0.5, 0.301] + list(0.31 + 0.04 * rng.random(500))
    assert first_fire(losses) == (None, "")
    ist = [0.5] + list(np.linspace(0.5, 0.36, 22)) + [0.3586] + list(
        0.38 + 0.12 * rng.beta(2.5, 2.5, size=577))
    assert np.median(ist[-50:]) > 0.3586 + 0.5 * (0.5 - 0.3586)
    assert first_fire(ist) == (None, "")
    assert first_fire(ist, {**RUN, "oscillation_margin": 0.5})[0] is not None


def test_the_rising_rule_keeps_its_message():
    losses = [1.0, 0.5] + [0.5 + 0.001 * k for k in range(1, 25)]
    i, msg = first_fire(losses)
    assert i == 1 + 20 and msg == "loss grew for 20 iterations in a row"


def test_a_warm_start_at_the_optimum_is_judged_against_the_zero_models_loss():
    """Ridge warm-started at its optimum: f(w0) = 1e-6, a stochastic method's floor
    at 2e-5..1e-4 would be 'ten times the start', but f(0) = 0.5 is the scale."""
    rng = np.random.default_rng(3)
    losses = [1e-6] + list(2e-5 + 8e-5 * rng.random(300))
    assert first_fire(losses, f_zero=0.5) == (None, "")
    assert first_fire(losses)[0] == FAR_COUNT                 # f(w0) alone: fires
    i, msg = first_fire([1e-6, 0.2] + [6.0] * 30, f_zero=0.5)
    assert i == 1 + FAR_COUNT and "zero model" in msg and "0.5" in msg


def test_keys_turn_the_rules_off_and_a_zero_reference_disables_the_factor():
    off = {**RUN, "divergence_factor": None, "oscillation_window": 0, "divergence_patience": 0}
    rng = np.random.default_rng(4)
    wild = [0.69] + list(rng.choice([1.0, 50.0, 500.0], size=200))
    assert first_fire(wild, off) == (None, "")
    assert first_fire([0.0, 1.0, 2.0, 3.0, 2.0, 3.0], {**RUN, "oscillation_window": 0}) \
        == (None, "")                                          # f_ref = 0: no scale


def test_the_best_model_is_tracked_and_replay_continues_the_counters():
    g = Guard(RUN, 0.69, w=np.zeros(2))
    for k, f in enumerate([0.5, 0.4, 0.6, 0.45]):
        g.see(f, np.full(2, k + 1.0))
    assert g.best_f == 0.4 and np.array_equal(g.best_w, [2.0, 2.0])
    losses = [0.69, 0.4] + [30.0] * (FAR_COUNT - 1)
    resumed = Guard(RUN, losses[0]).replay(losses)
    assert sum(resumed.far) == FAR_COUNT - 1 and resumed.see(30.0)   # the 20th
    assert resumed.best_f == 0.4
    # after a resume the model kept is the resumed one until a lower loss than its own
    g = Guard(RUN, 0.69, w=np.zeros(2)).replay([0.69, 0.4, 0.6])
    g.see(0.5, np.ones(2))
    assert g.best_f == 0.4 and np.array_equal(g.best_w, [1.0, 1.0])


# -- whole runs ------------------------------------------------------------------------
def one_hot(path, n=4000, groups=8, levels=5, seed=2):
    """Logistic data with a9a's kind of features: one 1 per group of ``levels``."""
    rng = np.random.default_rng(seed)
    d = groups * levels
    X = np.zeros((n, d))
    for g in range(groups):
        X[np.arange(n), g * levels + rng.integers(levels, size=n)] = 1.0
    y = np.where(rng.random(n) < expit(X @ rng.standard_normal(d)), 1.0, -1.0)
    write_libsvm(path, X, y)
    return X, y


def objective(X, y, w):
    lam = 1.0 / len(y)
    return float(np.mean(np.logaddexp(0.0, -y * (X @ w))) + 0.5 * lam * w @ w)


@pytest.fixture(scope="module")
def onehot(tmp_path_factory):
    path = tmp_path_factory.mktemp("div") / "onehot.svm"
    X, y = one_hot(path)
    return path, X, y


def ranl_paper(tmp_path, onehot, tag, **run):
    path, X, y = onehot
    cfg = write_config(tmp_path / f"{tag}.yaml", data={"train": str(path)},
                       model={"loss": "logistic", "lambda": "1/n"},
                       algorithm={"name": "ranl", "preset": "paper"},
                       run={"max_rounds": 300, **run})
    out = tmp_path / f"{tag}.h5"
    res = cli("run", cfg, "--backend", "sim", "--workers", 4, "-o", out, "-q")
    return res, out


@pytest.mark.slow
def test_a_run_that_blows_up_without_overflow_ends_diverged_with_the_best_model(tmp_path,
                                                                               onehot):
    """The loss falls below f(0) = log 2 once, then jumps to 10..50 (never inf):
    diverged once 20 of 25 rows are above 6.93, or by the oscillation rule at 50,
    exit 0 as every diverged run (5 only with --require-converged), the model of
    the best loss kept (not w0 = 0)."""
    _, X, y = onehot
    res, out = ranl_paper(tmp_path, onehot, "far")
    assert res.returncode == 0, res.stderr
    attrs, hist, w = read_result(out)
    assert attrs["status"] == "diverged"
    assert "run.divergence_factor (10) x the starting loss 0.6931" in attrs["message"]
    assert "best model" in attrs["message"]
    assert np.isfinite(hist["loss"]).all() and hist["loss"][-1] > 10 * math.log(2)
    assert len(hist["loss"]) <= 50                      # not 300 rounds of max_rounds
    best = np.min(hist["loss"])
    assert best < math.log(2)                           # a model better than w0 = 0
    assert objective(X, y, w) == pytest.approx(best, rel=1e-12)
    res, _ = ranl_paper(tmp_path, onehot, "strict", require_converged=True)
    assert res.returncode == 5, res.stderr


@pytest.mark.slow
def test_with_the_factor_off_the_oscillation_rule_ends_it(tmp_path, onehot):
    """run.divergence_factor: null: the loss swings between 4 and 48 for 50
    iterations: diverged by the oscillation rule, the best model kept."""
    _, X, y = onehot
    res, out = ranl_paper(tmp_path, onehot, "osc", divergence_factor=None)
    assert res.returncode == 0, res.stderr
    attrs, hist, w = read_result(out)
    assert attrs["status"] == "diverged" and "sustained oscillation" in attrs["message"]
    assert "run.oscillation_window 50" in attrs["message"]
    assert 50 < len(hist["loss"]) < 60
    assert objective(X, y, w) == pytest.approx(np.min(hist["loss"]), rel=1e-12)


def test_a_warm_starts_reference_is_the_zero_models_loss_kept_for_resume(tmp_path):
    """model.w0 near the optimum of a ridge problem: the guard's reference is
    f(0) = mean(y^2)/2 (computed by numpy here), written as the checkpoint's
    f_zero so that a resumed run judges against the same; a cold start's is NaN
    (its reference is its own starting loss, the history's first row)."""
    import h5py

    import distnewton
    rng = np.random.default_rng(0)
    X = rng.standard_normal((400, 6))
    y = X @ rng.standard_normal(6) + 0.01 * rng.standard_normal(400)
    w0 = np.linalg.lstsq(X, y, rcond=None)[0]
    np.save(tmp_path / "w0.npy", w0)
    for tag, model in (("warm", {"w0": str(tmp_path / "w0.npy")}), ("cold", {})):
        out = tmp_path / f"{tag}.h5"
        res = distnewton.solve({"model": {"loss": "ridge", "lambda": 1e-6, **model},
                                "algorithm": {"name": "gd"},
                                "run": {"max_rounds": 3, "grad_rtol": None,
                                        "checkpoint_every": 1}},
                               data=(X, y), workers=2, output=out, warn=False)
        assert res.status == "max_rounds"
        with h5py.File(out, "r") as f:
            f_zero = float(f["checkpoint"].attrs["f_zero"])
        if tag == "warm":
            assert f_zero == pytest.approx(0.5 * np.mean(y ** 2), rel=1e-12)
            assert res.history["loss"][0] < 1e-3 * f_zero
        else:
            assert math.isnan(f_zero)
