"""Signals to a SLURM job of slurm/run.sbatch (tests/support/slurm_cluster.py's
cluster): ``scancel --signal=USR1 --batch`` stops the run with a checkpoint, a
SIGUSR1 while the launcher is being chosen starts no run, and the time-limit
signal (``--signal=B:USR1@15``) stops a run whose resubmitted job then equals an
unbroken one.  The time-limit job is submitted by the first SLURM test
(tests/support/slurm_jobs.py: ``timelimit_job``).
"""

import os
import time

import h5py
import numpy as np
import pytest

from support.launch import cli, read_result, write_config
from support.slurm_cluster import find
from support.slurm_jobs import LAM, LONG, RUN, job_env, newton_config


@pytest.mark.slurm
@pytest.mark.mpi
def test_scancel_usr1_batch_stops_the_run_with_a_checkpoint(slurm, tmp_path, slurm_problem):
    cfg = write_config(tmp_path / "long.yaml",
                       data={"train": str(slurm_problem[0]), "n_features": 10},
                       model={"loss": "logistic", "lambda": LAM}, **LONG)
    job = slurm.sbatch("--ntasks=3", "--time=3", RUN, cfg, cwd=tmp_path, env=job_env(slurm))
    deadline = time.monotonic() + 120
    while True:                                   # iterations are running
        (info,) = slurm.jobs(job)
        body = info.text.partition(f"distnewton job {job} on")[2]
        if len(body.splitlines()) > 10:
            break
        assert info.state in ("PENDING", "RUNNING"), info.text
        assert time.monotonic() < deadline, f"no iterations within 120 s:\n{info.text}"
        time.sleep(0.5)
    slurm.run("scancel", "--signal=USR1", "--batch", job)
    (info,) = slurm.wait(job, timeout=120)
    assert (info.state, info.exit_code) == ("FAILED", 3), info.text
    assert "distnewton: SIGUSR1: asking the run to stop cleanly" in info.text
    assert "stopped: SIGUSR1 received" in info.text and "exit code 3" in info.text
    out = tmp_path / "results" / f"long-{job}.h5"
    attrs, hist, _ = read_result(out)
    assert attrs["status"] == "stopped" and 0 < hist["comm_rounds"][-1] < 10**8
    with h5py.File(out) as f:
        assert f["checkpoint"].attrs["comm_rounds"] == hist["comm_rounds"][-1]


@pytest.mark.slurm
@pytest.mark.mpi
def test_usr1_while_the_launcher_is_chosen_does_not_start_the_run(
        slurm, tmp_path, slurm_problem):
    """A SIGUSR1 that arrives before the run is started (here: while the launcher is
    probed, slowed down by an `srun` on PATH that waits 5 s before running the real
    one) neither kills the batch shell nor starts a run that would be cut short."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "srun").write_text(f"#!/bin/bash\ntouch {tmp_path}/probing\nsleep 5\n"
                                 f'exec {find("srun")} "$@"\n')
    (bindir / "srun").chmod(0o755)
    cfg = newton_config(tmp_path / "newton.yaml", slurm_problem)
    e = job_env(slurm, DISTNEWTON_SRUN_MPI="pmi2")          # one slow probe is enough
    e["PATH"] = f"{bindir}{os.pathsep}{e['PATH']}"
    job = slurm.sbatch("--ntasks=3", RUN, cfg, cwd=tmp_path, env=e)
    deadline = time.monotonic() + 60
    while not (tmp_path / "probing").exists():
        assert time.monotonic() < deadline, "the launcher probe never started"
        time.sleep(0.2)
    slurm.run("scancel", "--signal=USR1", "--batch", job)
    (info,) = slurm.wait(job, timeout=120)
    assert (info.state, info.exit_code) == ("FAILED", 3), info.text
    assert "distnewton launcher: chose " in info.text        # the choice finished, then:
    assert (f"distnewton job {job}: SIGUSR1 before the run started: not starting it "
            "(nothing written; resubmit with more time)") in info.text
    assert f"distnewton job {job} on" not in info.text
    assert not (tmp_path / "results" / f"newton-{job}.h5").exists()


@pytest.mark.slurm
@pytest.mark.mpi
@pytest.mark.slow
def test_time_limit_signal_stops_the_run_and_the_resubmitted_job_matches_an_unbroken_run(
        slurm, timelimit_job):
    job, d, cfg = timelimit_job
    (info,) = slurm.wait(job, timeout=150)
    # stopped by the script (exit code 3) on SIGUSR1, not killed at the limit (TIMEOUT)
    assert (info.state, info.exit_code) == ("FAILED", 3), info.text
    assert "distnewton: SIGUSR1: asking the run to stop cleanly" in info.text
    assert f"distnewton job {job}: exit code 3" in info.text
    out = d / "results" / f"long-{job}.h5"
    attrs, hist, _ = read_result(out)
    stop = int(hist["comm_rounds"][-1])
    assert attrs["status"] == "stopped" and 0 < stop < 10**8
    with h5py.File(out) as f:
        assert f["checkpoint"].attrs["comm_rounds"] == stop

    resumed = slurm.sbatch("--ntasks=3", RUN, "--resume", out, "-q",
                           "--set", f"run.max_rounds={stop + 5}", cwd=d, env=job_env(slurm))
    ref = d / "unbroken.h5"              # meanwhile: the same config, never interrupted
    res = cli("run", cfg, "--set", f"run.max_rounds={stop + 5}", "-o", ref, "-q", n=3,
              cwd=d, timeout=300)
    assert res.returncode == 0, res.stderr
    (info,) = slurm.wait(resumed, timeout=180)
    assert (info.state, info.exit_code) == ("COMPLETED", 0), info.text
    attrs, hist2, w = read_result(out)
    assert attrs["status"] == "max_rounds" and hist2["comm_rounds"][-1] == stop + 5
    assert len(hist2["iteration"]) == len(hist["iteration"]) + 5
    _, hist_ref, w_ref = read_result(ref)
    assert list(hist_ref["comm_rounds"]) == list(hist2["comm_rounds"])
    np.testing.assert_allclose(w, w_ref, rtol=0, atol=1e-12)
