"""Checkpoint and resume: a run stopped by SIGTERM (as SLURM sends before its
time limit; mpiexec forwards it to every rank) and resumed with
``distnewton run --resume`` ends with the same model as an uninterrupted run
(to 1e-12) and a continuous history."""

import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from launch import (NO_DATA, SHARED, cli, env, mpi_implementation, mpiexec, read_result,
                    write_config)

pytestmark = pytest.mark.skipif(not SHARED.exists(), reason=NO_DATA)
EXIT_STOPPED = 3

CASES = {
    "giant": ({}, 45),
    "adaptive_localnewton": ({"L0": 3}, 40),
    "lbfgs": ({}, 120),
    "ranl": ({"capacities": "uniform(0.3, 1.0)", "regions": 8}, 120),
    "localsgd": ({"local_steps": 200, "batch": 8}, 30),
}


def config(tmp_path, name):
    params, rounds = CASES[name]
    return write_config(tmp_path / f"{name}.yaml",
                        data={"train": str(SHARED / "a9a.bz2"), "n_features": 123},
                        algorithm={"name": name, **params},
                        run={"max_rounds": rounds, "grad_rtol": 1e-14})


def stop_signal(cmd):
    """The signal a user sends the launcher to stop a run with a checkpoint.

    MPICH's mpiexec (hydra) forwards SIGTERM and SIGUSR1 to every rank.  Open
    MPI's mpirun forwards SIGUSR1 but treats SIGTERM as an abort (it kills the
    ranks at once, no checkpoint), so the tests send it SIGUSR1.
    """
    if cmd[0] == mpiexec() and mpi_implementation() == "openmpi":
        return signal.SIGUSR1
    return signal.SIGTERM


def interrupted(cmd, out, after_lines=4, timeout=120):
    """Start cmd, send the stop signal once it has printed ``after_lines`` history rows."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env())
    rows, t0 = 0, time.monotonic()
    for line in proc.stdout:
        if line.split() and line.split()[0].isdigit():
            rows += 1
            if rows == after_lines:
                proc.send_signal(stop_signal(cmd))
                break
    stdout, stderr = proc.communicate(timeout=timeout)
    assert time.monotonic() - t0 < timeout
    return proc.returncode, stderr


@pytest.mark.mpi
@pytest.mark.parametrize("name,backend", [(name, "mpi") for name in CASES]
                         + [("giant", "sim"), ("ranl", "sim")])
def test_sigterm_then_resume_equals_an_uninterrupted_run(tmp_path, name, backend):
    cfg = config(tmp_path, name)
    base = [sys.executable, "-m", "distnewton", "run"]
    launch = ([mpiexec(), "-n", "3"] if backend == "mpi" else [])
    opts = ["--backend", "sim", "--workers", "2"] if backend == "sim" else []
    full, stopped = tmp_path / "full.h5", tmp_path / "stopped.h5"
    res = cli("run", cfg, *opts, "-o", full, "-q", n=3 if backend == "mpi" else None)
    assert res.returncode == 0, res.stderr
    code, stderr = interrupted(launch + base + [str(cfg), *opts, "-o", str(stopped)], stopped)
    assert code == EXIT_STOPPED, stderr
    attrs, hist_stop, _ = read_result(stopped)
    assert attrs["status"] == "stopped"
    res = cli("run", "--resume", stopped, *opts, "-q", n=3 if backend == "mpi" else None)
    assert res.returncode == 0, res.stderr
    _, hf, wf = read_result(full)
    attrs, hr, wr = read_result(stopped)
    assert attrs["status"] in ("converged", "max_rounds")
    # continuous history: the stopped prefix is kept, then the run goes on
    k = len(hist_stop["iteration"])
    assert 1 < k < len(hr["iteration"])
    np.testing.assert_array_equal(hr["iteration"][:k], hist_stop["iteration"])
    for col in ("iteration", "comm_rounds", "bytes_up", "bytes_down"):
        np.testing.assert_array_equal(hr[col], hf[col], err_msg=col)
    np.testing.assert_allclose(hr["loss"], hf["loss"], rtol=1e-12)
    np.testing.assert_allclose(wr, wf, rtol=0, atol=1e-12 * np.abs(wf).max())
    assert np.all(np.diff(hr["wall_time"]) >= 0)


@pytest.mark.mpi
def test_resume_with_another_worker_count(tmp_path):
    """giant keeps no worker state: K may change on resume (the partition changes)."""
    cfg = config(tmp_path, "giant")
    stopped = tmp_path / "s.h5"
    code, stderr = interrupted([mpiexec(), "-n", "3", sys.executable, "-m", "distnewton", "run",
                                str(cfg), "-o", str(stopped)], stopped)
    assert code == EXIT_STOPPED, stderr
    res = cli("run", "--resume", stopped, "-q", n=4)
    assert res.returncode == 0, res.stderr
    attrs, hist, _ = read_result(stopped)
    assert attrs["n_workers"] == 3 and attrs["status"] in ("converged", "max_rounds")
    # one history, GIANT all along: 3 rounds per iteration, +1 per extra line-search
    # round (ls_steps 2: alpha < 1/2, which happens at rounding-noise level near f*)
    steps = np.diff(hist["comm_rounds"])
    assert np.all(steps >= 3) and np.median(steps) == 3
    assert hist["grad_norm"][-1] <= 1e-8 * hist["grad_norm"][0]   # and it converged


@pytest.mark.mpi
def test_resume_refuses_a_worker_count_change_with_worker_state(tmp_path):
    cfg = config(tmp_path, "localsgd")
    stopped = tmp_path / "s.h5"
    code, stderr = interrupted([mpiexec(), "-n", "3", sys.executable, "-m", "distnewton", "run",
                                str(cfg), "-o", str(stopped)], stopped, after_lines=2)
    assert code == EXIT_STOPPED, stderr
    res = cli("run", "--resume", stopped, "-q", n=4)
    assert res.returncode == 2
    assert "keeps per-worker state" in res.stderr


def test_periodic_checkpoint_is_written_and_resumable(tmp_path):
    cfg = config(tmp_path, "giant")
    out = tmp_path / "p.h5"
    res = cli("run", cfg, "--backend", "sim", "--workers", 2, "-o", out, "-q",
              "--set", "run.checkpoint_every=6", "--set", "run.max_rounds=12")
    assert res.returncode == 0, res.stderr
    import h5py
    with h5py.File(out) as f:
        assert "checkpoint" in f and f.attrs["status"] == "max_rounds"
        assert f["checkpoint"].attrs["comm_rounds"] == 12
    res = cli("run", "--resume", out, "--backend", "sim", "--workers", 2, "-q",
              "--set", "run.max_rounds=45")
    assert res.returncode == 0, res.stderr
    full = tmp_path / "f.h5"
    res = cli("run", cfg, "--backend", "sim", "--workers", 2, "-o", full, "-q")
    _, hf, wf = read_result(full)
    _, hr, wr = read_result(out)
    np.testing.assert_array_equal(hr["comm_rounds"], hf["comm_rounds"])
    np.testing.assert_allclose(wr, wf, rtol=0, atol=1e-12 * np.abs(wf).max())


def test_resume_of_a_foreign_or_truncated_file_is_a_user_error(tmp_path):
    foreign = tmp_path / "foreign.h5"
    import h5py
    with h5py.File(foreign, "w") as f:
        f["x"] = 1
    res = cli("run", "--resume", foreign)
    assert res.returncode == 2 and "no /checkpoint to resume from" in res.stderr
    truncated = tmp_path / "t.h5"
    truncated.write_bytes(foreign.read_bytes()[:100])
    res = cli("run", "--resume", truncated)
    assert res.returncode == 2 and "not a readable HDF5 file" in res.stderr
