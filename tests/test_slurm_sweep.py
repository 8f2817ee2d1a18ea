"""slurm/sweep.sbatch: a grid as a SLURM job array (tests/support/slurm_cluster.py's
cluster), every task's result and ``report`` over them; without SLURM, the
script's ``--count``/``--show`` and its errors, and the progress output a job's
log shows (a bar on a terminal, plain lines otherwise, the summary line).
"""

import os
import pty
import subprocess
import sys

import pytest

from support.launch import ROOT, cli, env, read_result
from support.slurm_jobs import SWEEP, job_env, newton_config


@pytest.mark.slurm
@pytest.mark.mpi
def test_sweep_as_a_job_array_writes_every_task_and_report_lists_them(
        slurm, tmp_path, slurm_problem):
    cfg = newton_config(tmp_path / "base.yaml", slurm_problem)
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


def bash(*args, cwd, **extra):
    e = env()
    e.update({k: str(v) for k, v in extra.items()})
    return subprocess.run(["bash", *map(str, args)], capture_output=True, text=True,
                          timeout=120, cwd=cwd, env=e)


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
