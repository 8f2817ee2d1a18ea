"""Warm starts (``model.w0``), moved out of test_model.py: from a converged result the
run stops at once, from a half-converged one it reaches scikit-learn's optimum, from
zeros it is the cold run plus one evaluation round; bad warm starts are one-line errors
naming the key, and under ``mpiexec`` the warm start equals the sim backend's."""

import numpy as np
import pytest

import distnewton

from support.launch import cli, write_config
from support.models import D, invoke, labelled
from support.references import logistic_reference

def run_cfg(train, name="giant", **run):
    return {"data": {"train": str(train)}, "algorithm": {"name": name},
            "run": {"max_rounds": 200, "grad_rtol": 1e-10, **run}}


def test_warm_start_from_a_converged_result_stops_at_once(tmp_path):
    train = tmp_path / "t.svm"
    labelled(train, labels=(-1, 1))
    cold = distnewton.solve(run_cfg(train, "newton"), workers=3, output=tmp_path / "c.h5")
    assert cold.status == "converged" and cold.iterations > 3
    warm = distnewton.solve(run_cfg(train, "newton"), workers=3,
                            set={"model.w0": str(tmp_path / "c.h5")})
    assert warm.status == "converged" and warm.iterations <= 1, warm.message
    assert "||grad f(0)||" in warm.message
    np.testing.assert_allclose(warm.w, cold.w, rtol=1e-10, atol=1e-12)


def test_warm_start_near_the_optimum_stops_instead_of_chasing_its_own_gradient(tmp_path):
    """The trap of a tolerance relative to the start's own gradient: from w* + 1e-7,
    ||grad f(w0)|| is ~1e-9 ||grad f(0)||, and 1e-10 of that is below what double
    precision reaches, so such a run would go on to max_rounds."""
    train = tmp_path / "t.svm"
    labelled(train, labels=(-1, 1))
    cold = distnewton.solve(run_cfg(train, "newton", grad_rtol=1e-12), workers=2)
    np.save(tmp_path / "near.npy", cold.w + 1e-7)
    warm = distnewton.solve(run_cfg(train, "gd", grad_rtol=1e-8, max_rounds=500), workers=2,
                            set={"model.w0": str(tmp_path / "near.npy")})
    assert warm.status == "converged", warm.message
    assert warm.iterations <= 10 and warm.rounds <= 20
    g_w0, g_end = warm.history["grad_norm"][0], warm.history["grad_norm"][-1]
    assert 0 < g_w0 < 1e-6                          # the start's own gradient is tiny
    assert g_end > 1e-8 * g_w0                      # a rule relative to it would go on


def test_warm_start_from_a_half_converged_result_reaches_the_cold_optimum(tmp_path):
    train = tmp_path / "t.svm"
    labelled(train, n=600, labels=(-1, 1))
    _, _, _, w_ref, _ = logistic_reference(train, n_features=D)
    cold = distnewton.solve(run_cfg(train, "giant"), workers=3)
    assert cold.status == "converged", cold.message
    half = distnewton.solve(run_cfg(train, "giant"), workers=3,
                            set={"run.max_iterations": cold.iterations // 2},
                            output=tmp_path / "half.h5")
    assert half.status == "max_iterations"
    warm = distnewton.solve(run_cfg(train, "giant"), workers=3,
                            set={"model.w0": str(tmp_path / "half.h5")})
    assert warm.status == "converged", warm.message
    assert warm.iterations < cold.iterations
    # the same stopping point as the cold run: ||g|| <= 1e-10 ||grad f(0)||, not of w0's
    assert warm.history["grad_norm"][-1] <= 1e-10 * cold.history["grad_norm"][0]
    np.testing.assert_allclose(warm.w, w_ref, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(cold.w, w_ref, rtol=1e-7, atol=1e-9)


def test_warm_start_from_zeros_is_the_cold_run_plus_one_evaluation_round(tmp_path):
    train = tmp_path / "t.svm"
    labelled(train)
    np.save(tmp_path / "z.npy", np.zeros(D + 1))
    cfg = run_cfg(train)
    cfg["model"] = {"fit_intercept": True}
    cold = distnewton.solve(cfg, workers=3)
    warm = distnewton.solve(cfg, workers=3, set={"model.w0": str(tmp_path / "z.npy")})
    np.testing.assert_array_equal(warm.w, cold.w)
    np.testing.assert_array_equal(warm.history["loss"], cold.history["loss"])
    assert warm.rounds == cold.rounds
    assert warm.eval_rounds == cold.eval_rounds + 1        # ||grad f(0)||, counted


@pytest.mark.parametrize("what, text", [
    ("missing", "model.w0: {tmp}/none.npy: no such file"),
    ("short", "model.w0: {tmp}/short.npy has 3 weights, the problem has 7"),
    ("matrix", "model.w0: {tmp}/m.npy: expected a 1-D numeric vector"),
    ("nan", "model.w0: {tmp}/nan.npy: weights must be finite"),
    ("result", "model.w0: {tmp}/r6.h5 has 6 weights, the problem has 7"),
    ("junk", "model.w0: {tmp}/junk.h5: not a readable HDF5 file"),
])
def test_bad_warm_starts_are_one_line_errors_naming_the_key(tmp_path, what, text):
    train = tmp_path / "t.svm"
    labelled(train)
    np.save(tmp_path / "short.npy", np.zeros(3))
    np.save(tmp_path / "m.npy", np.zeros((7, 1)))
    np.save(tmp_path / "nan.npy", np.full(7, np.nan))
    (tmp_path / "junk.h5").write_text("junk")
    distnewton.solve(run_cfg(train, "newton"), output=tmp_path / "r6.h5")
    w0 = {"missing": "none.npy", "short": "short.npy", "matrix": "m.npy", "nan": "nan.npy",
          "result": "r6.h5", "junk": "junk.h5"}[what]
    cfg = run_cfg(train, "newton")
    cfg["model"] = {"fit_intercept": True, "w0": str(tmp_path / w0)}
    write_config(tmp_path / "c.yaml", **cfg)
    out = invoke("run", tmp_path / "c.yaml", "--backend", "sim", "-o", tmp_path / "o.h5", "-q")
    assert out.exit_code == 2
    lines = out.output.strip().splitlines()
    assert len(lines) == 1 and text.format(tmp=tmp_path) in lines[0], out.output
    assert not (tmp_path / "o.h5").exists()


@pytest.mark.mpi
def test_warm_start_under_mpiexec_equals_the_sim_backend(tmp_path):
    train = tmp_path / "t.svm"
    labelled(train)
    half = distnewton.solve(run_cfg(train, "giant", max_iterations=3), workers=2,
                            output=tmp_path / "half.h5")
    cfg = run_cfg(train, "giant")
    cfg["model"] = {"w0": str(tmp_path / "half.h5")}
    write_config(tmp_path / "c.yaml", **cfg)
    res = cli("run", tmp_path / "c.yaml", "-o", tmp_path / "mpi.h5", "-q", n=3)
    assert res.returncode == 0, res.stderr
    sim = distnewton.solve(cfg, workers=2)
    from distnewton.io.read import load
    mpi = load(tmp_path / "mpi.h5")
    assert mpi.status == sim.status == "converged" and mpi.iterations == sim.iterations
    np.testing.assert_allclose(mpi.w, sim.w, rtol=1e-12, atol=1e-14)
    assert mpi.eval_rounds == sim.eval_rounds
    assert half.iterations == 3
    cfg["model"]["w0"] = str(tmp_path / "missing.h5")
    write_config(tmp_path / "bad.yaml", **cfg)
    res = cli("run", tmp_path / "bad.yaml", "-o", tmp_path / "bad.h5", "-q", n=3)
    assert res.returncode == 2 and "model.w0:" in res.stderr
    assert not (tmp_path / "bad.h5").exists()
