"""Validation-based early stopping (``data.validation``, ``run.early_stopping``).

The references are numpy's: the mean logistic loss of every iterate (captured
by a monitor) on the validation rows, of the kept model, and a numpy replay of
the stopping rule ("the iteration number has grown by N since the best
validation loss") on the recorded column; scikit-learn's optimum on the rows
kept for training checks that a held-out fraction is really left out.  The
same checks run on the sim backend, through ``distnewton run`` and under
``mpiexec -n 3`` (both the parallel ingestion, with a validation file, and the
rank-0 path a held-out fraction takes).
"""

import json
import math

import h5py
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from distnewton import solve
from distnewton.config import resolve
from distnewton.data import write_libsvm
from distnewton.errors import UserError
from distnewton.monitors import Monitor
from distnewton.validation import hold_out
from support.launch import cli

PATIENCE = 3


def noisy(n=500, d=40, seed=0):
    """A logistic problem small lambda over-fits: the validation loss turns up."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = np.where(X @ rng.standard_normal(d) + 3.0 * rng.standard_normal(n) > 0, 1.0, -1.0)
    return X, y


def mean_logistic(X, y, w):
    """numpy: (1/m) sum log(1 + exp(-y x.w)), the data loss without the penalty."""
    return float(np.mean(np.logaddexp(0.0, -y * (X @ w))))


def replay(iterations, losses, patience):
    """numpy's replay of the rule: (stop iteration, best iteration), or None."""
    best, best_it = math.inf, None
    for it, v in zip(iterations, losses):
        if v < best:
            best, best_it = v, it
        if best_it is not None and it - best_it >= patience:
            return int(it), int(best_it)
    return None


class Iterates(Monitor):
    """Every history row's model, as the loop holds it when the row is recorded."""

    def __init__(self):
        self.w = []

    def iteration(self, loop, row):
        self.w.append(np.array(loop.alg.w, copy=True))


def config(validation, patience=PATIENCE, **run):
    return {"model": {"lambda": 1e-6}, "algorithm": {"name": "gd"},
            "data": {"validation": validation},
            "run": {"early_stopping": patience, "max_rounds": 600, **run}}


def check_early_stop(history, w, Xv, yv, patience=PATIENCE):
    """The stop and the kept model against numpy; returns the best iteration."""
    its, vl = history["iteration"], history["validation_loss"]
    stop, best = replay(its, vl, patience)
    assert its[-1] == stop                                  # stopped where numpy's rule does
    assert vl[list(its).index(best)] == vl.min()
    np.testing.assert_allclose(mean_logistic(Xv, yv, w), vl.min(), rtol=1e-12)
    assert np.all(np.isfinite(history["validation_accuracy"]))
    return best


def test_validation_file_losses_and_stop_against_numpy(tmp_path):
    X, y = noisy()
    Xv, yv = noisy(300, seed=1)
    val = tmp_path / "val.svm"
    write_libsvm(val, Xv, yv)
    seen = Iterates()
    r = solve(config(str(val)), data=(X, y), monitors=[seen])
    h = r.history
    expect = [mean_logistic(Xv, yv, w) for w in seen.w]     # every iterate's, numpy
    np.testing.assert_allclose(h["validation_loss"], expect, rtol=1e-12)
    acc = [np.mean(np.where(Xv @ w > 0, 1.0, -1.0) == yv) for w in seen.w]
    np.testing.assert_allclose(h["validation_accuracy"], acc, rtol=0, atol=0)
    best = check_early_stop(h, r.w, Xv, yv)
    assert r.status == "converged" and r.success
    assert f"did not improve for {PATIENCE} iterations" in r.message
    assert f"iteration {best}'s" in r.message
    np.testing.assert_array_equal(r.w, seen.w[list(h["iteration"]).index(best)])
    assert best < h["iteration"][-1] and r.attrs["n_samples"] == 500   # file: n unchanged


def test_held_out_fraction_is_left_out_of_training():
    """No early stopping: the run converges to scikit-learn's optimum on the rows
    kept; the last validation loss is numpy's on the held-out rows."""
    X, y = noisy(400, d=8)
    keep, held = hold_out(400, 0.25, 7)
    assert len(held) == 100 and not set(keep) & set(held)
    assert sorted(np.concatenate([keep, held])) == list(range(400))
    r = solve({"model": {"lambda": 1e-2}, "algorithm": {"name": "newton"},
               "data": {"validation": 0.25, "seed": 7}, "run": {"grad_rtol": 1e-12}},
              data=(X, y))
    ref = LogisticRegression(C=1.0 / (1e-2 * 300), fit_intercept=False, tol=1e-12,
                             solver="newton-cholesky").fit(X[keep], y[keep])
    np.testing.assert_allclose(r.w, ref.coef_.ravel(), rtol=1e-8, atol=1e-10)
    assert r.attrs["n_samples"] == 300 and r.status == "converged"
    assert "validation" not in r.message
    np.testing.assert_allclose(r.history["validation_loss"][-1],
                               mean_logistic(X[held], y[held], r.w), rtol=1e-12)


def test_held_out_fraction_early_stop_against_numpy():
    X, y = noisy(600)
    _, held = hold_out(600, 0.2, 0)
    r = solve(config(0.2), data=(X, y))
    check_early_stop(r.history, r.w, X[held], y[held])
    assert r.attrs["n_samples"] == 480


def test_recording_only_without_early_stopping():
    X, y = noisy(300, d=8)
    r = solve({"model": {"lambda": 1e-2}, "algorithm": {"name": "newton"},
               "data": {"validation": 0.1}}, data=(X, y))
    assert "validation_loss" in r.history and r.status == "converged"
    r = solve({"model": {"lambda": 1e-2}, "algorithm": {"name": "newton"}}, data=(X, y))
    assert "validation_loss" not in r.history         # the columns only with data.validation


@pytest.mark.parametrize("sets,key", [
    ({"run.early_stopping": 3}, "run.early_stopping: needs data.validation"),
    ({"data.validation": 1.5}, "data.validation: a held-out fraction must be in (0, 1)"),
    ({"data.validation": 0}, "data.validation: a held-out fraction must be in (0, 1)"),
    ({"data.validation": 0.1, "data.shards": "x", "data.train": None},
     "data.validation: a held-out fraction needs data.train"),
    ({"data.validation": 0.1, "model.multiclass": "ovr"}, "data.validation: not supported"),
    ({"data.validation": 0.1, "run.early_stopping": 0}, "run.early_stopping: must be >= 1"),
])
def test_refusals_name_the_key(sets, key):
    raw = {"data": {"train": "t.svm"}, "algorithm": {"name": "gd"}}
    with pytest.raises(UserError, match="^" + key.replace("(", r"\(").replace(")", r"\)")):
        resolve(raw, [f"{k}={'null' if v is None else v}" for k, v in sets.items()])


def test_too_small_fraction_is_one_line():
    X, y = noisy(10, d=3)
    with pytest.raises(UserError, match=r"^data.validation: 0.01 of the 10 training rows"):
        solve(config(0.01), data=(X, y))


def read_result(path):
    with h5py.File(path, "r") as f:
        return ({k: f["history"][k][()] for k in f["history"]}, f["model/w"][()],
                f.attrs["status"], f.attrs["message"])


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("validation")
    X, y = noisy(600)
    Xv, yv = noisy(300, seed=1)
    write_libsvm(folder / "train.svm", X, y)
    write_libsvm(folder / "val.svm", Xv, yv)
    (folder / "run.yaml").write_text(
        f"data: {{train: {folder / 'train.svm'}, cache: off}}\n"
        "model: {lambda: 1.0e-6}\nalgorithm: {name: gd}\n"
        f"run: {{early_stopping: {PATIENCE}, max_rounds: 600}}\n")
    return folder, (X, y), (Xv, yv)


def run_args(folder, out, validation):
    return ["run", folder / "run.yaml", "--set", f"data.validation={validation}",
            "-o", out, "-q"]


@pytest.mark.slow
def test_cli_sim_with_a_validation_file(files, tmp_path):
    folder, _, (Xv, yv) = files
    out = tmp_path / "r.h5"
    p = cli(*run_args(folder, out, folder / "val.svm"), "--set", "run.backend=sim",
            "--workers", "2")
    assert p.returncode == 0, p.stderr
    h, w, status, message = read_result(out)
    check_early_stop(h, w, Xv, yv)
    assert status == "converged" and "run.early_stopping" in message
    p = cli("report", out, "--no-compute", "--format", "json")
    assert p.returncode == 0, p.stderr
    row = json.loads(p.stdout)[0]
    assert row["best_validation_loss"] == h["validation_loss"].min()
    assert row["validation_loss"] == h["validation_loss"][-1]
    table = cli("report", out, "--no-compute").stdout
    assert "best_val_loss" in table and f"{h['validation_loss'].min():.3e}" in table


@pytest.mark.slow
@pytest.mark.mpi
@pytest.mark.parametrize("which", ["file", "fraction"])
def test_mpiexec_3_equals_numpy_and_sim(files, tmp_path, which):
    """Under mpiexec -n 3 with the parallel ingestion (a fraction: every rank
    draws the same global rows and sends them to rank 0): numpy's checks hold
    and the history is the sim run's."""
    folder, (X, y), (Xv, yv) = files
    validation = folder / "val.svm" if which == "file" else 0.2
    if which == "fraction":
        _, held = hold_out(600, 0.2, 0)
        Xv, yv = X[held], y[held]
    out, ref = tmp_path / "mpi.h5", tmp_path / "sim.h5"
    p = cli(*run_args(folder, out, validation), "--set", "run.backend=mpi", n=3)
    assert p.returncode == 0, p.stderr
    q = cli(*run_args(folder, ref, validation), "--set", "run.backend=sim", "--workers", "2")
    assert q.returncode == 0, q.stderr
    h, w, status, _ = read_result(out)
    check_early_stop(h, w, Xv, yv)
    with h5py.File(out, "r") as f:                # which ingestion path ran
        parallel = bool(f.attrs.get("setup_seconds_json", ""))
    assert parallel                                 # both: every rank reads its part
    hs, ws, _, _ = read_result(ref)
    np.testing.assert_array_equal(h["iteration"], hs["iteration"])
    np.testing.assert_allclose(h["validation_loss"], hs["validation_loss"], rtol=1e-10)
    np.testing.assert_allclose(w, ws, rtol=1e-10, atol=1e-14)
    assert status == "converged"


@pytest.mark.slow
@pytest.mark.mpi
@pytest.mark.parametrize("n,data,model,run", [
    (3, {"partition": "label_skew", "partition_alpha": 0.5}, {"fit_intercept": True}, {}),
    (2, {"partition": "iid", "seed": 4, "rows_per_worker": 100},
     {"class_weight": "balanced"}, {"workers": 3, "master_shard": True}),
])
def test_parallel_ingestion_holds_out_the_rank_0_paths_rows(files, tmp_path, n, data, model,
                                                            run):
    """A held-out fraction under the parallel ingestion (every rank draws the same
    global rows; rank 0 receives them) gives the rank-0 path's shards, validation
    rows and run: with rank 0 hosting workers, label_skew, rows_per_worker, balanced
    class weights and the intercept."""
    import yaml
    folder = files[0]
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({
        "data": {"train": str(folder / "train.svm"), "cache": False, "validation": 0.2,
                 **data},
        "model": {"lambda": 1e-4, **model}, "algorithm": {"name": "giant"},
        "run": {"max_rounds": 10, "early_stopping": 2, **run}}))
    out = {}
    for par in ("1", "0"):
        p = cli("run", cfg, "-q", "-o", tmp_path / f"r{par}.h5", n=n,
                extra_env={"DISTNEWTON_PARALLEL_INGEST": par})
        assert p.returncode == 0, p.stderr
        with h5py.File(tmp_path / f"r{par}.h5", "r") as f:
            out[par] = (dict(f.attrs), {k: f["history"][k][()] for k in f["history"]},
                        f["model/w"][()])
    (pa, ha, wa), (pb, hb, wb) = out["1"], out["0"]
    assert "setup_seconds_json" in pa and "setup_seconds_json" not in pb
    np.testing.assert_array_equal(pa["shard_sizes"], pb["shard_sizes"])
    assert pa["n_samples"] == pb["n_samples"] == sum(pb["shard_sizes"])
    for col in ("loss", "validation_loss", "validation_accuracy"):
        np.testing.assert_allclose(ha[col], hb[col], rtol=1e-12, err_msg=col)
    np.testing.assert_allclose(wa, wb, rtol=0, atol=1e-12 * np.abs(wb).max())


@pytest.mark.data(reason="a9a trained, a9a.t as data.validation, read by scikit-learn")
def test_a9a_with_a9a_t_as_validation_against_numpy(shared_data):
    from sklearn.datasets import load_svmlight_file
    if not (shared_data / "a9a.bz2").exists():
        pytest.skip("../shared/data not found: real LIBSVM data sets live beside the checkout")
    Xv, yv = load_svmlight_file(str(shared_data / "a9a.t.bz2"), n_features=123)
    r = solve({"data": {"train": str(shared_data / "a9a.bz2"), "n_features": 123,
                        "validation": str(shared_data / "a9a.t.bz2")},
               "model": {"lambda": 1e-7}, "algorithm": {"name": "newton"},
               "run": {"early_stopping": 2, "max_rounds": 100}})
    best = check_early_stop(r.history, r.w, Xv, yv, patience=2)
    assert r.status == "converged" and f"iteration {best}'s" in r.message
    assert r.attrs["n_samples"] == 32561


@pytest.mark.slow
def test_resume_counts_patience_after_the_checkpoint(files, tmp_path):
    """A run stopped at iteration 2 (before its best validation loss) and resumed
    ends as the uninterrupted run, and numpy's checks hold on the resumed file."""
    folder, (X, y), _ = files
    cfg = {"data": {"train": str(folder / "train.svm"), "cache": False, "validation": 0.2},
           "model": {"lambda": 1e-6}, "algorithm": {"name": "gd"},
           "run": {"early_stopping": PATIENCE, "max_rounds": 600}}
    whole = solve(cfg)
    best = int(whole.message.split("iteration ")[1].split("'")[0])
    assert best > 2                                 # the checkpoint comes before the best
    part = solve(cfg, callback=lambda row: row["iteration"] >= 2, output=tmp_path / "a.h5")
    assert part.status == "stopped"
    p = cli("run", "--resume", tmp_path / "a.h5", "-q")
    assert p.returncode == 0, p.stderr
    h, w, status, message = read_result(tmp_path / "a.h5")
    _, held = hold_out(600, 0.2, 0)
    check_early_stop(h, w, X[held], y[held])
    np.testing.assert_array_equal(h["iteration"], whole.history["iteration"])
    np.testing.assert_allclose(w, whole.w, rtol=1e-12)
    assert status == "converged" and message == whole.message


def test_the_lines_show_the_validation_loss():
    """distnewton run's per-iteration lines gain a val_loss column (the history's)."""
    import io
    from distnewton.monitors import LinePrinter
    X, y = noisy(300, d=8)
    out = io.StringIO()
    r = solve({"model": {"lambda": 1e-2}, "algorithm": {"name": "newton"},
               "data": {"validation": 0.2}, "run": {"progress": "never"}}, data=(X, y),
              monitors=[LinePrinter(1, stream=out)])
    lines = out.getvalue().splitlines()
    assert lines[0].split()[-1] == "val_loss"
    shown = [float(line.split()[-1]) for line in lines[1:len(r.history["iteration"]) + 1]]
    np.testing.assert_allclose(shown, r.history["validation_loss"], rtol=1e-6)
