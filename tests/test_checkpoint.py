"""Checkpoint and resume: a run stopped by SIGTERM or SIGUSR1 (as SLURM sends before
its time limit) and resumed with ``distnewton run --resume`` ends with the same model
as an uninterrupted run (to 1e-12) and a continuous history.

The stop comes at a known iteration: the fault ``DISTNEWTON_TEST_SIGNAL=SIG@N`` makes
the master raise the real signal in its own process after iteration N (the signal
handler and the whole stop path run; only the timing of a ``kill`` is taken out).
One test signals the launcher itself (mpiexec/mpirun forwarding).  Synthetic data:
these run on every clone."""

import signal
import subprocess
import sys

import numpy as np
import pytest

from support.checkpoints import EXIT_STOPPED, STOP_AT, assert_resumed_equals_full, stopped_run
from support.launch import cli, env, mpi_implementation, mpiexec, read_result, synth, write_config

#: whole runs (processes, MPI or files): outside the `-m "not slow"` inner loop
pytestmark = pytest.mark.slow


#: every algorithm that keeps state across iterations: params, rounds of the full run
CASES = {
    "giant": ({}, 30),
    "adaptive_localnewton": ({"L0": 3}, 30),
    "lbfgs": ({}, 60),
    "ranl": ({"capacities": "uniform(0.3, 1.0)", "regions": 8}, 60),
    "localsgd": ({"local_steps": 50, "batch": 8}, 20),
    "scaled_localsgd": ({"scaling": "oasis", "local_steps": 20, "batch": 8}, 20),
    "ist": ({"local_steps": 5}, 20),
    "fednl": ({"compressor": "randk", "line_search": True}, 30),  # H_i, rng, LS ahead
    "disco": ({}, 150),                                 # L of the PCG stopping rule
    "dane": ({"local_steps": 2}, 30),
    "owlqn": ({}, 40, {"l1": 0.01}),                              # memory, an L1 term
}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return synth(tmp_path_factory.mktemp("ckpt") / "c.svm", 1200, 16, density=0.4, seed=11)


def config(tmp_path, data, name):
    params, rounds, *model = CASES[name]
    return write_config(tmp_path / f"{name}.yaml", data={"train": str(data)},
                        model=model[0] if model else {},
                        algorithm={"name": name, **params},
                        run={"max_rounds": rounds, "grad_rtol": 1e-14})


def stop_signal():
    """The signal a user sends the launcher to stop a run with a checkpoint.

    MPICH's mpiexec (hydra) forwards SIGTERM and SIGUSR1 to every rank.  Open
    MPI's mpirun forwards SIGUSR1 but treats SIGTERM as an abort (it kills the
    ranks at once, no checkpoint), so the tests send it SIGUSR1.
    """
    return signal.SIGUSR1 if mpi_implementation() == "openmpi" else signal.SIGTERM


@pytest.mark.parametrize("name,backend",
                         [pytest.param(name, "mpi", marks=pytest.mark.mpi) for name in CASES]
                         + [(name, "sim") for name in CASES])
def test_stop_then_resume_equals_an_uninterrupted_run(tmp_path, data, name, backend):
    cfg = config(tmp_path, data, name)
    opts = ["--backend", "sim", "--workers", "2"] if backend == "sim" else []
    n = 3 if backend == "mpi" else None
    full, stopped = tmp_path / "full.h5", tmp_path / "stopped.h5"
    res = cli("run", cfg, *opts, "-o", full, "-q", n=n)
    assert res.returncode == 0, res.stderr
    sig = "SIGUSR1" if name in ("lbfgs", "ist") else "SIGTERM"     # both signals stop
    res = stopped_run(cfg, stopped, backend, sig=sig, opts=opts)
    assert res.returncode == EXIT_STOPPED, res.stderr
    attrs, hist_stop, _ = read_result(stopped)
    assert attrs["status"] == "stopped" and sig in attrs["message"]
    assert len(hist_stop["iteration"]) == STOP_AT + 1      # w0 and the known steps
    res = cli("run", "--resume", stopped, *opts, "-q", n=n)
    assert res.returncode == 0, res.stderr
    assert_resumed_equals_full(stopped, full, hist_stop)


@pytest.mark.mpi
def test_the_launcher_forwards_the_stop_signal(tmp_path, data):
    """A real signal to mpiexec/mpirun (not to a rank) stops every rank cleanly."""
    cfg = write_config(tmp_path / "long.yaml", data={"train": str(data)},
                       algorithm={"name": "gd", "step_size": 1e-4},
                       run={"max_rounds": 10**8, "grad_rtol": None})
    out = tmp_path / "s.h5"
    proc = subprocess.Popen([mpiexec(), "-n", "3", sys.executable, "-m", "distnewton", "run",
                             str(cfg), "-o", str(out)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env())
    for line in proc.stdout:                  # rounds are running: the ranks are set up
        if line.split() and line.split()[0] == "2":
            break
    proc.send_signal(stop_signal())
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == EXIT_STOPPED, stderr
    attrs, hist, _ = read_result(out)
    assert attrs["status"] == "stopped" and stop_signal().name in attrs["message"]
    assert 2 <= hist["iteration"][-1] < 10**8


@pytest.mark.mpi
def test_resume_with_another_worker_count(tmp_path, data):
    """giant keeps no worker state: K may change on resume (the partition changes)."""
    cfg = config(tmp_path, data, "giant")
    stopped = tmp_path / "s.h5"
    res = stopped_run(cfg, stopped, "mpi")
    assert res.returncode == EXIT_STOPPED, res.stderr
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
def test_resume_refuses_a_worker_count_change_with_worker_state(tmp_path, data):
    cfg = config(tmp_path, data, "localsgd")
    stopped = tmp_path / "s.h5"
    res = stopped_run(cfg, stopped, "mpi", at=2)
    assert res.returncode == EXIT_STOPPED, res.stderr
    res = cli("run", "--resume", stopped, "-q", n=4)
    assert res.returncode == 2
    assert "keeps per-worker state" in res.stderr


def test_periodic_checkpoint_is_written_and_resumable(tmp_path, data):
    cfg = config(tmp_path, data, "giant")
    out = tmp_path / "p.h5"
    res = cli("run", cfg, "--backend", "sim", "--workers", 2, "-o", out, "-q",
              "--set", "run.checkpoint_every=6", "--set", "run.max_rounds=12")
    assert res.returncode == 0, res.stderr
    import h5py
    with h5py.File(out) as f:
        assert "checkpoint" in f and f.attrs["status"] == "max_rounds"
        assert f["checkpoint"].attrs["comm_rounds"] == 12
    res = cli("run", "--resume", out, "--backend", "sim", "--workers", 2, "-q",
              "--set", f"run.max_rounds={CASES['giant'][1]}")
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
