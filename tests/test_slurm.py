"""slurm/run.sbatch and slurm/sweep.sbatch: valid bash, and the very commands they run
(mpiexec with SLURM variables faked), including the SIGUSR1 clean stop; progress
output (bar on a terminal, lines otherwise, the summary line)."""

import os
import pty
import shutil
import signal
import subprocess
import sys
import time

import pytest

from launch import ROOT, cli, env, mpiexec, read_result, write_config

RUN, SWEEP = ROOT / "slurm" / "run.sbatch", ROOT / "slurm" / "sweep.sbatch"


def slurm_env(**extra):
    """A fake SLURM task environment that launches with the wheel's mpiexec."""
    e = env()
    e.update(DISTNEWTON_LAUNCHER="mpiexec", DISTNEWTON_MPIEXEC=mpiexec(),
             DISTNEWTON=f"{sys.executable} -m distnewton", SLURM_JOB_NAME="sweep")
    e.update({k: str(v) for k, v in extra.items()})
    return e


def bash(*args, cwd, **extra):
    return subprocess.run(["bash", *map(str, args)], capture_output=True, text=True,
                          timeout=120, cwd=cwd, env=slurm_env(**extra))


@pytest.mark.parametrize("script", [RUN, SWEEP])
def test_scripts_are_valid_bash_and_documented(script):
    assert shutil.which("bash")
    res = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    text = script.read_text()
    for needle in ("#SBATCH --signal=B:USR1@", "srun --mpi=", "OMP_NUM_THREADS=1",
                   "OPENBLAS_NUM_THREADS=1", "mpiexec", "RESULTS_DIR", "trap "):
        assert needle in text, needle


def test_run_sbatch_runs_the_quickstart_with_mpiexec(tmp_path):
    res = bash(RUN, ROOT / "configs" / "quickstart.yaml", cwd=tmp_path,
               SLURM_JOB_ID=4242, SLURM_NTASKS=3, RESULTS_DIR=tmp_path / "res")
    assert res.returncode == 0, res.stdout + res.stderr
    out = tmp_path / "res" / "quickstart-4242.h5"
    assert f"mpiexec -n 3 {sys.executable} -m distnewton run" in res.stdout
    assert "converged" in res.stdout and "exit code 0" in res.stdout
    attrs, hist, _ = read_result(out)
    assert attrs["n_workers"] == 2 and attrs["status"] == "converged"
    assert attrs["backend"] == "mpi"


def test_run_sbatch_forwards_usr1_and_the_run_stops_cleanly(tmp_path):
    data = tmp_path / "s.svm"
    assert cli("data", "synth", data, "--samples", 400, "--features", 8).returncode == 0
    cfg = write_config(tmp_path / "long.yaml", data={"train": str(data)},
                       algorithm={"name": "gd", "step_size": 1e-4},
                       run={"max_rounds": 10**8, "grad_rtol": None})
    log = open(tmp_path / "log", "w+")
    proc = subprocess.Popen(["bash", str(RUN), str(cfg)], stdout=log, stderr=subprocess.STDOUT,
                            cwd=tmp_path, env=slurm_env(SLURM_JOB_ID=7, SLURM_NTASKS=3,
                                                        RESULTS_DIR=tmp_path))
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:          # wait for iterations to be running
            time.sleep(0.5)
            lines = (tmp_path / "log").read_text().splitlines()
            if len(lines) > 8:
                break
        os.kill(proc.pid, signal.SIGUSR1)           # what SLURM does at --signal=B:USR1@T
        assert proc.wait(timeout=60) == 3             # stopped, checkpoint written
    finally:
        if proc.poll() is None:
            proc.kill()
    text = (tmp_path / "log").read_text()
    assert "asking the run to stop cleanly" in text
    assert "stopped: SIGUSR1 received" in text
    attrs, hist, _ = read_result(tmp_path / "long-7.h5")
    assert attrs["status"] == "stopped" and 0 < hist["comm_rounds"][-1] < 10**8
    import h5py
    with h5py.File(tmp_path / "long-7.h5") as f:      # resubmit with --resume FILE
        assert f["checkpoint"].attrs["comm_rounds"] == hist["comm_rounds"][-1]
    stop = int(hist["comm_rounds"][-1])
    res = subprocess.run(["bash", str(RUN), "--resume", str(tmp_path / "long-7.h5"), "-q",
                          "--set", f"run.max_rounds={stop + 5}"], capture_output=True, text=True,
                         cwd=tmp_path, env=slurm_env(SLURM_JOB_ID=8, SLURM_NTASKS=3,
                                                     RESULTS_DIR=tmp_path), timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    attrs, hist2, _ = read_result(tmp_path / "long-7.h5")
    assert attrs["status"] == "max_rounds" and hist2["comm_rounds"][-1] == stop + 5
    assert len(hist2["iteration"]) == len(hist["iteration"]) + 5


def test_sweep_grid_and_list(tmp_path):
    grid = ["--grid", f"config={ROOT / 'configs' / 'quickstart.yaml'}",
            "algorithm.name=giant,newton", "run.seed=0,1"]
    res = bash(SWEEP, "--count", *grid, cwd=tmp_path)
    assert res.returncode == 0 and res.stdout.strip() == "4"
    res = bash(SWEEP, *grid, "--", "-q", cwd=tmp_path,
               SLURM_ARRAY_JOB_ID=99, SLURM_ARRAY_TASK_ID=3, SLURM_NTASKS=3)
    assert res.returncode == 0, res.stdout + res.stderr
    attrs, _, _ = read_result(tmp_path / "results" / "sweep-99" / "task-3.h5")
    assert (attrs["algorithm"], attrs["seed"], attrs["n_workers"]) == ("newton", 1, 2)
    res = bash(SWEEP, *grid, cwd=tmp_path, SLURM_ARRAY_TASK_ID=4, SLURM_NTASKS=3)
    assert res.returncode == 2 and "the sweep has 4 tasks" in res.stderr
    (tmp_path / "runs.txt").write_text("# sweep\na.yaml --set run.seed=1\n\nb.yaml\n")
    res = bash(SWEEP, "--show", "--list", tmp_path / "runs.txt", "--", "-q", cwd=tmp_path)
    assert res.stdout.splitlines() == [
        "task 0: distnewton run a.yaml --set run.seed=1 -o task-0.h5 -q",
        "task 1: distnewton run b.yaml -o task-1.h5 -q"]
    res = bash(SWEEP, "--grid", "run.seed=1", cwd=tmp_path, SLURM_ARRAY_TASK_ID=0)
    assert res.returncode == 2 and "config=" in res.stderr


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
