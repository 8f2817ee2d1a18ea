"""slurm/run.sbatch and slurm/sweep.sbatch submitted with ``sbatch`` to a real
one-node SLURM cluster (tests/support/slurm_cluster.py): the launcher choice (probed
srun plugins, then mpiexec), a job array, the time-limit signal and a resumed run,
``scancel --signal=USR1 --batch``, and the srun singleton trap.  Also, without
SLURM: sweep --count/--show and the progress output (bar on a terminal, lines
otherwise, the summary line).

Every job gets the environment of the tests' Python (its bin dir first in PATH, so
``distnewton`` and ``mpiexec`` are this installation's; PYTHONPATH to the
checkout) and ``DISTNEWTON_MPIEXEC`` = tests/support/launch.py's ``mpiexec()``, so the
same tests run under the mpich wheel or Open MPI.
"""

import os
import pty
import shlex
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from support.launch import ROOT, cli, env, mpiexec, read_result, synth, write_config
from support.references import logistic_objective
from support.slurm_cluster import FOREIGN, find

RUN, SWEEP = ROOT / "slurm" / "run.sbatch", ROOT / "slurm" / "sweep.sbatch"
PLUGINS = ("pmix", "pmi2")                     # the scripts' default order, then mpiexec
LAM = 1e-3
#: distnewton.runtime.mpi.check_world's message for the singleton trap
SINGLETONS = "the launcher started 3 tasks but MPI sees 1"
#: a tiny-step gradient descent that runs until a signal stops it
LONG = dict(algorithm={"name": "gd", "step_size": 1e-4},
            run={"max_rounds": 10**8, "grad_rtol": None})


def job_env(cluster, **extra):
    """The environment a job is submitted with (sbatch exports it: --export=ALL)."""
    e = cluster.env(DISTNEWTON_MPIEXEC=mpiexec())
    for var in ("DISTNEWTON", "DISTNEWTON_LAUNCHER", "DISTNEWTON_SRUN_MPI",
                "DISTNEWTON_PROBE_TIMEOUT"):
        e.pop(var, None)                     # the scripts' defaults unless a test sets them
    e.update({k: str(v) for k, v in extra.items()})
    return e


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
def problem(tmp_path_factory):
    """Synthetic logistic data (distnewton data synth) and sklearn's optimum on it."""
    from sklearn.datasets import load_svmlight_file
    from sklearn.linear_model import LogisticRegression
    path = synth(tmp_path_factory.mktemp("data") / "s.svm", 600, 10, density=0.5)
    X, y = load_svmlight_file(str(path), n_features=10)
    ref = LogisticRegression(C=1.0 / (LAM * X.shape[0]), fit_intercept=False,
                             solver="newton-cholesky", tol=1e-14, max_iter=200).fit(X, y)
    w = ref.coef_.ravel()
    return path, X, y, w, logistic_objective(X, y, w, LAM)


def newton_config(path, problem, **algorithm):
    return write_config(path, data={"train": str(problem[0]), "n_features": 10},
                        model={"loss": "logistic", "lambda": LAM},
                        algorithm={"name": "newton", **algorithm},
                        run={"max_rounds": 40, "grad_rtol": 1e-12})


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


@pytest.fixture(scope="module")
def timelimit_job(slurm, problem, tmp_path_factory):
    """A 1-minute job (--time=1) asking for SIGUSR1 15 s before its end, submitted
    as soon as the first SLURM test runs and checked by the last one, so that its
    minute overlaps the other tests.  SLURM checks time limits every 30 s and sends
    the signal at the first check within 15 + 30 s of the end: 15-45 s after start."""
    d = tmp_path_factory.mktemp("timelimit")
    cfg = write_config(d / "long.yaml", data={"train": str(problem[0]), "n_features": 10},
                       model={"loss": "logistic", "lambda": LAM}, **LONG)
    job = slurm.sbatch("--ntasks=3", "--time=1", "--signal=B:USR1@15", RUN, cfg, "-q",
                       cwd=d, env=job_env(slurm))
    return job, d, cfg


@pytest.mark.slurm
@pytest.mark.mpi
def test_run_sbatch_picks_a_working_launcher_and_reaches_the_sklearn_optimum(
        slurm, tmp_path, problem, timelimit_job, srun_plugins):
    # (timelimit_job: submitted here, first, so that its minute overlaps these tests)
    _, X, y, w_ref, f_ref = problem
    cfg = newton_config(tmp_path / "newton.yaml", problem)
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
def test_forced_srun_uses_the_first_working_plugin(slurm, tmp_path, problem, srun_plugins):
    cfg = newton_config(tmp_path / "newton.yaml", problem)
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
def test_forced_mpiexec_inside_a_job(slurm, tmp_path, problem):
    """DISTNEWTON_LAUNCHER=mpiexec inside a SLURM job: the probe, then the run.

    MPICH's hydra starts its ranks through a one-task srun step, so they see
    SLURM_NTASKS=1 next to PMI_SIZE=3: the start-up check must trust PMI_SIZE
    (and OMPI_COMM_WORLD_SIZE under Open MPI's mpirun)."""
    cfg = newton_config(tmp_path / "newton.yaml", problem)
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
        slurm, tmp_path, problem, srun_plugins):
    cfg = newton_config(tmp_path / "newton.yaml", problem)
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
def test_sweep_as_a_job_array_writes_every_task_and_report_lists_them(slurm, tmp_path, problem):
    cfg = newton_config(tmp_path / "base.yaml", problem)
    grid = ["--grid", f"config={cfg}", "algorithm.name=giant,newton", "run.seed=0,1"]
    res = subprocess.run(["bash", str(SWEEP), "--count", *grid], capture_output=True,
                         text=True, timeout=60, cwd=tmp_path)
    assert res.stdout.strip() == "4", res.stderr
    job = slurm.sbatch("--array=0-3", "--ntasks=2", SWEEP, *grid, "--", "-q", cwd=tmp_path,
                       env=job_env(slurm))
    tasks = slurm.wait(job, timeout=240, tasks=4)
    assert len(tasks) == 4
    for t in tasks:
        assert (t.state, t.exit_code) == ("COMPLETED", 0), t.text
        assert "distnewton launcher: chose " in t.text
    folder = tmp_path / "results" / f"sweep-{job}"
    expected = {f"task-{i}.h5": (name, seed) for i, (name, seed) in
                enumerate([("giant", 0), ("giant", 1), ("newton", 0), ("newton", 1)])}
    assert sorted(p.name for p in folder.iterdir()) == sorted(expected)
    for fname, (name, seed) in expected.items():
        attrs, _, _ = read_result(folder / fname)
        assert (attrs["algorithm"], int(attrs["seed"]), attrs["n_workers"]) == (name, seed, 1)
        assert attrs["status"] == "converged"
    res = cli("report", folder, "--format", "json", "--no-compute", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    import json
    rows = {os.path.basename(r["file"]): r for r in json.loads(res.stdout)}
    assert sorted(rows) == sorted(expected)
    for fname, (name, _) in expected.items():
        assert (rows[fname]["algorithm"], rows[fname]["status"]) == (name, "converged")
        assert rows[fname]["workers"] == 1 and rows[fname]["backend"] == "mpi"


@pytest.mark.slurm
@pytest.mark.mpi
def test_scancel_usr1_batch_stops_the_run_with_a_checkpoint(slurm, tmp_path, problem):
    cfg = write_config(tmp_path / "long.yaml", data={"train": str(problem[0]), "n_features": 10},
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
def test_usr1_while_the_launcher_is_chosen_does_not_start_the_run(slurm, tmp_path, problem):
    """A SIGUSR1 that arrives before the run is started (here: while the launcher is
    probed, slowed down by an `srun` on PATH that waits 5 s before running the real
    one) neither kills the batch shell nor starts a run that would be cut short."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "srun").write_text(f"#!/bin/bash\ntouch {tmp_path}/probing\nsleep 5\n"
                                 f'exec {find("srun")} "$@"\n')
    (bindir / "srun").chmod(0o755)
    cfg = newton_config(tmp_path / "newton.yaml", problem)
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
def test_srun_without_pmi_is_stopped_not_run_three_times(slurm, tmp_path, problem):
    """`srun --mpi=none -n 3 distnewton run`: each task is rank 0 of 1 (the singleton
    trap); distnewton compares SLURM_NTASKS with the world size and stops."""
    cfg = newton_config(tmp_path / "newton.yaml", problem)
    out = tmp_path / "trap.h5"
    res = slurm.run("srun", "--mpi=none", "-n", 3, "distnewton", "run", cfg, "-o", out,
                    check=False, timeout=180, cwd=tmp_path, env=job_env(slurm))
    text = res.stdout + res.stderr
    assert res.returncode == 2, text
    assert text.count(SINGLETONS) >= 1, text          # printed by rank 0 (SLURM_PROCID)
    assert "Exited with exit code 2" in res.stderr         # srun: every task stopped
    assert "iter" not in res.stdout and "converged" not in text      # no run started
    assert not out.exists()


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


# -- without SLURM -------------------------------------------------------------------

def bash(*args, cwd, **extra):
    e = env()
    e.update({k: str(v) for k, v in extra.items()})
    return subprocess.run(["bash", *map(str, args)], capture_output=True, text=True,
                          timeout=120, cwd=cwd, env=e)


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


def test_sweep_count_show_and_errors(tmp_path):
    grid = ["--grid", f"config={ROOT / 'configs' / 'quickstart.yaml'}",
            "algorithm.name=giant,newton", "run.seed=0,1"]
    res = bash(SWEEP, "--count", *grid, cwd=tmp_path)
    assert res.returncode == 0 and res.stdout.strip() == "4"
    res = bash(SWEEP, "--show", *grid, "--", "-q", cwd=tmp_path)
    assert res.stdout.splitlines()[3] == (
        f"task 3: distnewton run {ROOT / 'configs' / 'quickstart.yaml'} --set "
        "algorithm.name=newton --set run.seed=1 -o task-3.h5 -q")
    res = bash(SWEEP, *grid, cwd=tmp_path, SLURM_ARRAY_TASK_ID=4, SLURM_NTASKS=3)
    assert res.returncode == 2 and "the sweep has 4 tasks" in res.stderr
    res = bash(SWEEP, *grid, cwd=tmp_path)
    assert res.returncode == 2 and "SLURM_ARRAY_TASK_ID is not set" in res.stderr
    (tmp_path / "runs.txt").write_text("# sweep\na.yaml --set run.seed=1\n\nb.yaml\n")
    res = bash(SWEEP, "--show", "--list", tmp_path / "runs.txt", "--", "-q", cwd=tmp_path)
    assert res.stdout.splitlines() == [
        "task 0: distnewton run a.yaml --set run.seed=1 -o task-0.h5 -q",
        "task 1: distnewton run b.yaml -o task-1.h5 -q"]
    res = bash(SWEEP, "--grid", "run.seed=1", cwd=tmp_path, SLURM_ARRAY_TASK_ID=0)
    assert res.returncode == 2 and "config=" in res.stderr
    assert not (tmp_path / "results").exists()


def test_progress_bar_on_a_terminal_lines_otherwise(tmp_path):
    cfg = ROOT / "configs" / "quickstart.yaml"
    args = [sys.executable, "-m", "distnewton", "run", str(cfg), "--backend", "sim",
            "-o", str(tmp_path / "q.h5")]
    # stderr a terminal, stdout a pipe: the bar on stderr, the lines still on stdout
    master, slave = pty.openpty()
    proc = subprocess.run(args, stdout=subprocess.PIPE, stderr=slave, cwd=tmp_path, env=env(),
                          timeout=120, text=True)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    bar = b"".join(chunks).decode()
    assert proc.returncode == 0
    attrs, hist, _ = read_result(tmp_path / "q.h5")
    redraws = [s for s in bar.split("\r") if s.strip()]
    assert redraws[0].startswith("[") and bar.endswith("\n")            # one line, ended
    assert f"{hist['comm_rounds'][-1]}/60 rounds" in redraws[-1]           # final state
    lines = proc.stdout.splitlines()
    assert lines[0].split()[:3] == ["iter", "rounds", "loss"]
    summary = lines[-1]
    assert summary.startswith("converged:")
    assert f"{hist['comm_rounds'][-1]} rounds" in summary and str(tmp_path / "q.h5") in summary
    assert f"loss {hist['loss'][-1]:.15e}" in summary and " s -> " in summary
    # neither a terminal: plain lines, no carriage returns
    res = cli("run", cfg, "--backend", "sim", "-o", tmp_path / "q2.h5", cwd=tmp_path)
    assert res.returncode == 0 and "\r" not in res.stdout + res.stderr
    assert len(res.stdout.splitlines()) == len(hist["iteration"]) + 2    # header + summary
