"""What a user at a terminal meets: Ctrl-C, the progress bar.

Each job runs on a pseudo-terminal as a shell's foreground job
(:class:`support.terminal.PtyJob`): Ctrl-C is b"\\x03" written to the terminal, so
the line discipline signals the foreground group as the keyboard does, and under
MPICH's ``mpiexec`` (hydra) the launcher gets it (it forwards SIGINT to every rank
once: "Sending Ctrl-C to processes as requested"; a second Ctrl-C makes it kill
the job).  The runs are long (gd with 10^8 rounds) and stopped when their output
shows them iterating; nothing waits for a fixed time.
"""

import json
import os
import re
import subprocess
import sys
import time

import pytest

from support.launch import cli, env, mpi_implementation, mpiexec, read_result, synth, \
    write_config
from support.terminal import PtyJob

pytestmark = pytest.mark.slow

EXIT_STOPPED = 3
BAR = re.compile(r"\r\[[#.]{20}\] +\d+%[^\r]*? (\d+)/\d+ rounds")
NOISE = ("Aborted!", "Traceback", "pending", "references", "KeyboardInterrupt")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return synth(tmp_path_factory.mktemp("term") / "t.svm", 600, 12, density=0.5, seed=2)


@pytest.fixture
def long_run(tmp_path, data):
    """A config that iterates until stopped (gd, 10^8 rounds, no tolerance)."""
    return write_config(tmp_path / "long.yaml", data={"train": str(data)},
                        algorithm={"name": "gd", "step_size": 1e-4},
                        run={"max_rounds": 10**8, "grad_rtol": None})


def run_argv(backend, *args):
    """``distnewton run ARGS`` as typed: under ``mpiexec -n 3``, or with the sim backend."""
    cmd = [sys.executable, "-m", "distnewton", "run", *map(str, args)]
    if backend == "mpi":
        return [mpiexec(), "-n", "3", *cmd]
    return [*cmd, "--backend", "sim", "--workers", "2"]


def wait_gone(pid, timeout=60):
    """Until process ``pid`` is reaped (mpiexec may exit before its killed ranks are)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    raise AssertionError(f"pid {pid} still there after {timeout} s")


def mpich_only(backend):
    if backend == "mpi" and mpi_implementation() == "openmpi":
        pytest.skip("Open MPI's mpirun aborts the job on Ctrl-C (documented: send SIGUSR1)")


BACKENDS = [pytest.param("mpi", marks=pytest.mark.mpi), "sim"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_ctrl_c_stops_with_a_checkpoint_and_resume_completes_it(tmp_path, long_run, backend):
    mpich_only(backend)
    out = tmp_path / "r.h5"
    job = PtyJob(run_argv(backend, long_run, "-o", out), env=env(), cwd=tmp_path)
    job.wait_for(BAR.pattern)                  # the bar shows rounds: it is iterating
    job.ctrl_c()
    code, text = job.finish()
    assert code == EXIT_STOPPED, text
    assert text.count("--resume") == 1, text   # the summary line, once (not per rank)
    assert not any(word in text for word in NOISE), text
    summary = [ln for ln in text.replace("\r\n", "\n").split("\n") if "--resume" in ln][0]
    assert summary.startswith("stopped: SIGINT received") and str(out) in summary
    attrs, hist, _ = read_result(out)
    assert attrs["status"] == "stopped" and "SIGINT" in attrs["message"]
    import h5py
    with h5py.File(out, "r") as f:
        assert "checkpoint" in f
    stop = int(hist["comm_rounds"][-1])
    res = cli("run", "--resume", out, "--set", f"run.max_rounds={stop + 5}", "-q",
              n=3 if backend == "mpi" else None, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    attrs, resumed, _ = read_result(out)
    assert attrs["status"] == "max_rounds" and resumed["comm_rounds"][-1] == stop + 5
    assert list(resumed["iteration"][:len(hist["iteration"])]) == list(hist["iteration"])


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_second_ctrl_c_aborts_at_once_and_leaves_no_result(tmp_path, long_run, backend):
    """The second Ctrl-C comes while the stopped run writes its file (held there by
    the test fault STALL): the job ends at once, and no file takes the result's name
    (its temporary file and lock are cleaned up by the next run to that path)."""
    mpich_only(backend)
    out = tmp_path / "r.h5"
    job = PtyJob(run_argv(backend, long_run, "-o", out), cwd=tmp_path,
                 env={**env(), "DISTNEWTON_TEST_FAULT": "0:write:history=STALL"})
    job.wait_for(BAR.pattern)
    job.ctrl_c()
    job.wait_for("stalled at write:history")
    job.ctrl_c()
    code, text = job.finish(timeout=60)
    assert code != 0 and code != EXIT_STOPPED, text
    assert not out.exists()                    # a temporary file and the lock may stay
    wait_gone(json.loads((tmp_path / ".r.h5.lock").read_text())["pid"])
    res = cli("run", long_run, "-o", out, "-q", "--set", "run.max_rounds=3",
              "--backend", "sim", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert sorted(os.listdir(tmp_path)) == ["long.yaml", "r.h5"]   # lock, temp file gone


@pytest.mark.mpi
def test_the_bar_shows_under_mpiexec_in_a_terminal(tmp_path, long_run):
    """hydra's ranks have no terminal; rank 0 finds mpiexec's (see distnewton.terminal);
    Open MPI's ranks are children of prterun, found the same way."""
    job = PtyJob(run_argv("mpi", long_run, "-o", tmp_path / "r.h5", "--set",
                          "run.max_rounds=400"), env=env(), cwd=tmp_path)
    code, text = job.finish()
    assert code == 0, text
    redraws = [int(m.group(1)) for m in BAR.finditer(text)]
    assert redraws and redraws[-1] == 400 and redraws == sorted(redraws), text
    assert not re.search(r"^ *\d+ +\d+ +\d\.\d+e[-+]\d+", text, re.M), text   # no lines
    assert re.search(r"\n?max_rounds: 400 communication rounds", text), text
    job = PtyJob(run_argv("mpi", long_run, "-o", tmp_path / "r2.h5", "--set",
                          "run.max_rounds=5", "--no-progress"), env=env(), cwd=tmp_path)
    code, text = job.finish()
    assert code == 0 and "\r[" not in text and text.count("e-01") >= 6, text


@pytest.mark.mpi
def test_no_bar_without_a_terminal_unless_asked(tmp_path, long_run):
    """Pipes and no controlling terminal (a new session): plain lines; ``--progress``
    forces the bar (on stdout: the one pipe keeps it before the summary line)."""
    base = run_argv("mpi", long_run, "--set", "run.max_rounds=5")
    res = subprocess.run([*base, "-o", tmp_path / "a.h5"], capture_output=True, text=True,
                         env=env(), cwd=tmp_path, timeout=240, start_new_session=True)
    assert res.returncode == 0, res.stderr
    assert "\r" not in res.stdout + res.stderr and len(res.stdout.splitlines()) == 1 + 6 + 1
    res = subprocess.run([*base, "-o", tmp_path / "b.h5", "--progress"], capture_output=True,
                         env=env(), cwd=tmp_path, timeout=240, start_new_session=True)
    stdout = res.stdout.decode()               # bytes: text mode would turn \r into \n
    assert res.returncode == 0, res.stderr
    assert BAR.search(stdout) and "5/5 rounds" in stdout and b"\r" not in res.stderr
    assert stdout.endswith("\n") and stdout.split("\n")[-2].startswith("max_rounds: ")
