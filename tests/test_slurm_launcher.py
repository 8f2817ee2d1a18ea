"""slurm/run.sbatch's launcher choice, on a real one-node SLURM cluster
(tests/support/slurm_cluster.py): the probed srun plugins, then mpiexec, forced
either way, the fallback past dead plugins and the error when nothing works, the
srun singleton trap; and ``distnewton launcher choose`` outside a job.

Every job gets the environment of the tests' Python (its bin dir first in PATH, so
``distnewton`` and ``mpiexec`` are this installation's; PYTHONPATH to the
checkout) and ``DISTNEWTON_MPIEXEC`` = tests/support/launch.py's ``mpiexec()``, so the
same tests run under the mpich wheel or Open MPI (tests/support/slurm_jobs.py:
``job_env``).  The job arrays are in tests/test_slurm_sweep.py, the signals and the
time limit in tests/test_slurm_signals.py.
"""

import os
import shlex
import subprocess
import sys
import time

import numpy as np
import pytest

from support.launch import cli, env, mpiexec, read_result
from support.references import logistic_objective
from support.slurm_cluster import FOREIGN
from support.slurm_jobs import LAM, RUN, job_env, newton_config

PLUGINS = ("pmix", "pmi2")                     # the scripts' default order, then mpiexec
#: distnewton.runtime.mpi.check_world's message for the singleton trap
SINGLETONS = "the launcher started 3 tasks but MPI sees 1"


def launcher_lines(text):
    return [ln for ln in text.splitlines() if ln.startswith("distnewton launcher:")]


def chosen(text):
    lines = [ln for ln in launcher_lines(text) if ln.startswith("distnewton launcher: chose ")]
    assert len(lines) == 1, text
    return lines[0]


def verdict(text, label):
    """The probe line of launcher ``label`` ("srun --mpi=pmi2", or the mpiexec path)."""
    lines = [ln for ln in launcher_lines(text) if ln.startswith(f"distnewton launcher: {label}: ")]
    assert len(lines) == 1, f"no single probe line for {label}:\n{text}"
    return lines[0]


@pytest.fixture(scope="module")
def srun_plugins(slurm):
    """{plugin: (works, srun's stderr)}, found without distnewton: does
    ``srun --mpi=P -n 3 python`` give 3 tasks in one mpi4py world of 3?"""
    found = {}
    code = "from mpi4py import MPI; c = MPI.COMM_WORLD; print(c.Get_size(), c.allreduce(1))"
    for plugin in PLUGINS:
        res = slurm.run("srun", f"--mpi={plugin}", "-n", 3, sys.executable, "-c", code,
                        check=False, timeout=120)
        found[plugin] = (res.returncode == 0 and res.stdout.split() == ["3", "3"] * 3,
                         res.stderr)
    return found


@pytest.mark.slurm
@pytest.mark.mpi
def test_run_sbatch_picks_a_working_launcher_and_reaches_the_sklearn_optimum(
        slurm, tmp_path, slurm_problem, timelimit_job, srun_plugins):
    # (timelimit_job: submitted here, first, so that its minute overlaps these tests)
    _, X, y, w_ref, f_ref = slurm_problem
    cfg = newton_config(tmp_path / "newton.yaml", slurm_problem)
    job = slurm.sbatch("--ntasks=3", RUN, cfg, "-q", cwd=tmp_path, env=job_env(slurm))
    # the same run outside SLURM, under the tests' mpiexec
    res = cli("run", cfg, "-o", tmp_path / "mpiexec.h5", "-q", n=3, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    (info,) = slurm.wait(job, timeout=180)
    text = info.text
    working = [p for p in PLUGINS if srun_plugins[p][0]]
    assert (info.state, info.exit_code) == ("COMPLETED", 0), text
    # the launcher: the first of srun --mpi=pmix, srun --mpi=pmi2 that works here
    # (found above without distnewton), else mpiexec; one line per candidate tried
    expected = f"srun --mpi={working[0]}" if working else mpiexec()
    assert chosen(text).startswith(f"distnewton launcher: chose {expected}, the first that "
                                   "starts 3 tasks in one MPI world of 3"), text
    for plugin in PLUGINS[:PLUGINS.index(working[0]) if working else None]:
        line = verdict(text, f"srun --mpi={plugin}")
        assert ": fails, " in line
        if "can not load PMIx library" in srun_plugins[plugin][1]:    # Debian without libpmix
            assert "can not load PMIx library" in line
    assert ": works, 3 tasks in one MPI world of 3" in verdict(
        text, f"srun --mpi={working[0]}" if working else mpiexec())
    assert f"distnewton job {job} on {slurm.node}: " in text and "exit code 0" in text

    out = tmp_path / "results" / f"newton-{job}.h5"
    attrs, hist, w = read_result(out)
    assert (attrs["status"], attrs["backend"], attrs["n_workers"]) == ("converged", "mpi", 2)
    # the optimum: sklearn's (C = 1/(lambda n)), and the mpiexec run's to rounding
    # (both solve to ||g|| ~ 1e-12 ||g0||: they agree to ~1e-16 here; sklearn with
    # tol=1e-10 would already be 6e-11 away)
    assert abs(logistic_objective(X, y, w, LAM) - f_ref) / f_ref <= 1e-13
    np.testing.assert_allclose(w, w_ref, rtol=0, atol=1e-10 * np.abs(w_ref).max())
    _, hist_mpiexec, w_mpiexec = read_result(tmp_path / "mpiexec.h5")
    np.testing.assert_allclose(w, w_mpiexec, rtol=0, atol=1e-12)
    assert list(hist["comm_rounds"]) == list(hist_mpiexec["comm_rounds"])


@pytest.mark.slurm
@pytest.mark.mpi
def test_forced_srun_uses_the_first_working_plugin(slurm, tmp_path, slurm_problem, srun_plugins):
    cfg = newton_config(tmp_path / "newton.yaml", slurm_problem)
    job = slurm.sbatch("--ntasks=3", RUN, cfg, "-q", cwd=tmp_path,
                       env=job_env(slurm, DISTNEWTON_LAUNCHER="srun",
                                   DISTNEWTON=f"{sys.executable} -m distnewton"))
    (info,) = slurm.wait(job, timeout=180)
    working = [p for p in PLUGINS if srun_plugins[p][0]]
    if not working:      # e.g. Open MPI 5 without PMIx: srun only, so nothing to choose
        assert info.exit_code == 2 and "nothing here starts one MPI world" in info.text
        return
    assert (info.state, info.exit_code) == ("COMPLETED", 0), info.text
    assert chosen(info.text).startswith(f"distnewton launcher: chose srun --mpi={working[0]}")
    assert mpiexec() not in "\n".join(launcher_lines(info.text))   # never tried
    assert f"srun --mpi={working[0]} -n 3 {sys.executable} -m distnewton run" in info.text
    attrs, _, _ = read_result(tmp_path / "results" / f"newton-{job}.h5")
    assert attrs["status"] == "converged"


@pytest.mark.slurm
@pytest.mark.mpi
def test_forced_mpiexec_inside_a_job(slurm, tmp_path, slurm_problem):
    """DISTNEWTON_LAUNCHER=mpiexec inside a SLURM job: the probe, then the run.

    MPICH's hydra starts its ranks through a one-task srun step, so they see
    SLURM_NTASKS=1 next to PMI_SIZE=3: the start-up check must trust PMI_SIZE
    (and OMPI_COMM_WORLD_SIZE under Open MPI's mpirun)."""
    cfg = newton_config(tmp_path / "newton.yaml", slurm_problem)
    job = slurm.sbatch("--ntasks=3", RUN, cfg, "-q", cwd=tmp_path,
                       env=job_env(slurm, DISTNEWTON_LAUNCHER="mpiexec"))
    (info,) = slurm.wait(job, timeout=180)
    assert (info.state, info.exit_code) == ("COMPLETED", 0), info.text
    assert chosen(info.text).startswith(f"distnewton launcher: chose {mpiexec()}")
    assert "srun --mpi" not in "\n".join(launcher_lines(info.text))
    attrs, _, _ = read_result(tmp_path / "results" / f"newton-{job}.h5")
    assert attrs["status"] == "converged"


@pytest.mark.slurm
@pytest.mark.mpi
def test_probe_falls_back_past_dead_plugins_and_fails_clearly_when_all_are_dead(
        slurm, tmp_path, slurm_problem, srun_plugins):
    cfg = newton_config(tmp_path / "newton.yaml", slurm_problem)
    dead = [p for p in PLUGINS if not srun_plugins[p][0]]      # pmix without libpmix here
    working = [p for p in PLUGINS if srun_plugins[p][0]]
    # listed-but-dead plugins, a bogus one, "none" (N singletons), then one that works
    order = dead + ["bogus", "none"] + working[:1]
    falls = slurm.sbatch("--ntasks=3", RUN, cfg, "-q", cwd=tmp_path,
                         env=job_env(slurm, DISTNEWTON_SRUN_MPI=",".join(order)))
    dead_all = slurm.sbatch("--ntasks=3", "--job-name=dead", RUN, cfg, "-q", cwd=tmp_path,
                            env=job_env(slurm, DISTNEWTON_SRUN_MPI="bogus",
                                        DISTNEWTON_MPIEXEC="/bin/false"))
    bad = slurm.sbatch("--ntasks=3", "--job-name=bad", RUN, cfg, "-q", cwd=tmp_path,
                       env=job_env(slurm, DISTNEWTON_LAUNCHER="bogus"))

    # the fallback: every plugin before the working one fails, and the job says why
    (info,) = slurm.wait(falls, timeout=180)
    text = info.text
    for plugin in dead + ["bogus", "none"]:
        assert ": fails, " in verdict(text, f"srun --mpi={plugin}"), text
    assert "mpi/bogus" in verdict(text, "srun --mpi=bogus")         # srun's own words
    line = verdict(text, "srun --mpi=none")
    assert "3 separate singletons (each rank 0 of 1)" in line or "exit code" in line
    target = f"srun --mpi={working[0]}" if working else mpiexec()
    assert chosen(text).startswith(f"distnewton launcher: chose {target}, the first")
    assert "srun --mpi=bogus, srun --mpi=none: no): " in chosen(text)
    assert chosen(text).endswith(f"--mpi={working[0]} -n 3" if working
                                 else f"{mpiexec()} -n 3")
    assert (info.state, info.exit_code) == ("COMPLETED", 0), text
    attrs, _, _ = read_result(tmp_path / "results" / f"newton-{falls}.h5")
    assert attrs["status"] == "converged"

    # nothing works: exit code 2 before anything runs, one line per launcher tried
    (info,) = slurm.wait(dead_all, timeout=120)
    assert (info.state, info.exit_code) == ("FAILED", 2), info.text
    assert ": fails, exit code 1" in verdict(info.text, "srun --mpi=bogus")
    assert ": fails, exit code 1, no output" in verdict(info.text, "/bin/false")
    assert ("distnewton: error: launcher: nothing here starts one MPI world of 3 ranks "
            "(tried srun --mpi=bogus, /bin/false; see the lines above)") in info.text
    assert "distnewton job" not in info.text and "chose" not in info.text   # nothing ran
    assert not (tmp_path / "results" / f"newton-{dead_all}.h5").exists()

    (info,) = slurm.wait(bad, timeout=120)
    assert info.exit_code == 2
    assert "DISTNEWTON_LAUNCHER: expected auto, srun or mpiexec, got 'bogus'" in info.text


@pytest.mark.slurm
@pytest.mark.mpi
def test_srun_without_pmi_is_stopped_not_run_three_times(slurm, tmp_path, slurm_problem):
    """`srun --mpi=none -n 3 distnewton run`: each task is rank 0 of 1 (the singleton
    trap); distnewton compares SLURM_NTASKS with the world size and stops."""
    cfg = newton_config(tmp_path / "newton.yaml", slurm_problem)
    out = tmp_path / "trap.h5"
    res = slurm.run("srun", "--mpi=none", "-n", 3, "distnewton", "run", cfg, "-o", out,
                    check=False, timeout=180, cwd=tmp_path, env=job_env(slurm))
    text = res.stdout + res.stderr
    assert res.returncode == 2, text
    assert text.count(SINGLETONS) >= 1, text          # printed by rank 0 (SLURM_PROCID)
    assert "Exited with exit code 2" in res.stderr         # srun: every task stopped
    assert "iter" not in res.stdout and "converged" not in text      # no run started
    assert not out.exists()


def outside_slurm_env(**extra):
    e = {k: v for k, v in env().items() if not FOREIGN.match(k) and k != "SLURM_CONF"}
    e.update({k: str(v) for k, v in extra.items()})
    return e


@pytest.mark.mpi
def test_launcher_choose_outside_a_job_probes_mpiexec_and_times_out_a_hung_one(tmp_path):
    """`distnewton launcher choose` (what both scripts call) without SLURM: srun is
    skipped, mpiexec probed; a launcher that never answers is killed after
    DISTNEWTON_PROBE_TIMEOUT, and with nothing left the exit code is 2."""
    cmd = [sys.executable, "-m", "distnewton", "launcher", "choose", "--ntasks", "2", "--",
           sys.executable, "-m", "distnewton"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=tmp_path,
                         env=outside_slurm_env(DISTNEWTON_MPIEXEC=mpiexec()))
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == [mpiexec(), "-n", "2"]
    assert ("distnewton launcher: srun --mpi=pmix: skipped, not inside a SLURM job "
            "(SLURM_JOB_ID unset)") in res.stderr
    assert f"distnewton launcher: {mpiexec()}: works, 2 tasks in one MPI world of 2" \
        in res.stderr
    # a launcher that hangs: `bash -c 'echo $$ >pid; exec sleep 300' x -n 2 python ...`
    hang = f"bash -c 'echo $$ >{tmp_path}/pid; exec sleep 300' x"
    t0 = time.monotonic()
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=tmp_path,
                         env=outside_slurm_env(DISTNEWTON_MPIEXEC=hang,
                                               DISTNEWTON_PROBE_TIMEOUT=1))
    assert time.monotonic() - t0 < 30
    assert res.returncode == 2 and res.stdout == ""
    assert (f"distnewton launcher: {shlex.join(shlex.split(hang))}: fails, no answer within "
            "1 s (DISTNEWTON_PROBE_TIMEOUT)") in res.stderr
    assert "nothing here starts one MPI world of 2 ranks" in res.stderr
    pid = int((tmp_path / "pid").read_text())
    assert not os.path.exists(f"/proc/{pid}") or \
        "zombie" in open(f"/proc/{pid}/status").read().lower()        # killed with it
