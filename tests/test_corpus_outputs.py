"""Adversarial corpus, class *outputs*: a result file is claimed, never clobbered
or lost (tests/support/corpus.py runs each case; distnewton/io/claim.py is what
they test).

Live claims are held by a process that certainly runs (this test's parent, or a
first run stopped with SIGSTOP), dead ones by the pid of a process that ended.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import h5py
import numpy as np
import pytest

from support import launch
from support.corpus import DATA, RUN, Case, check, params

import distnewton
from distnewton.errors import UserError
from distnewton.io import load

ROOT_USER = hasattr(os, "geteuid") and os.geteuid() == 0
LONG = "r" * 251 + ".h5"         # valid (255 bytes at most), but .LONG.lock would not be


def run_args(out="{tmp}/out.h5", *extra):
    args = list(RUN)
    args[args.index("{tmp}/out.h5")] = out
    return args + list(extra)


def lock(tmp, name="out.h5", host=None, pid=None):
    """Write the lock file of ``name`` as a run with ``pid`` on ``host`` would."""
    (tmp / f".{name}.lock").write_text(json.dumps(
        {"host": host or socket.gethostname(), "pid": pid or os.getppid(),
         "path": str(tmp / name)}))


def dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def distnewton_proc(tmp, *args, env=None, mpi=False, **kw):
    e = launch.env()
    e["DISTNEWTON_CACHE"] = str(tmp.parent / f"{tmp.name}-cache")
    e.update(env or {})
    cmd = [sys.executable, "-m", "distnewton", *map(str, args)]
    if mpi:
        cmd = [launch.mpiexec(), "-n", "3", *cmd]
    return subprocess.Popen(cmd, cwd=tmp,
                            env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            **kw)


def killed_checkpoint(out="out.h5", mpi=False):
    """prepare: a first run SIGKILLed while writing its first checkpoint (``mpi``:
    rank 0 of ``mpiexec -n 3``, which then ends the job)."""
    def prepare(tmp):
        how = ["--backend", "mpi"] if mpi else ["--backend", "sim", "--workers", 2]
        proc = distnewton_proc(tmp, "run", "c.yaml", *how, "-o", out, "-q", "--set",
                               "run.checkpoint_every=1", mpi=mpi,
                               env={"DISTNEWTON_TEST_FAULT": "0:write:checkpoint=SIGKILL"})
        _, err = proc.communicate(timeout=120)
        if mpi:                                # the launcher reports it its own way
            assert proc.returncode != 0, err
        else:
            assert proc.returncode == -signal.SIGKILL, err
        names = os.listdir(tmp)
        assert any(n.startswith(".tmp-") and n.endswith(".h5") for n in names), names
        assert f".{out}.lock" in names and out not in names, names
    return prepare


def stopped_first_run(tmp):
    """prepare: a first run to out.h5, stopped (SIGSTOP) while it holds the claim;
    it is continued by :func:`first_run_finishes` (or after 60 s in any case)."""
    proc = distnewton_proc(tmp, "run", "c.yaml", "--backend", "sim", "--workers", 2, "-o",
                           "out.h5", "-q", "--set", "run.max_rounds=30")
    deadline = time.monotonic() + 60
    while not (tmp / ".out.h5.lock").exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.001)
    proc.send_signal(signal.SIGSTOP)
    assert not (tmp / "out.h5").exists(), "the first run finished before it was stopped"
    timer = threading.Timer(60, lambda: proc.poll() is None and proc.send_signal(signal.SIGCONT))
    timer.daemon = True
    timer.start()
    FIRST[str(tmp)] = proc, timer


FIRST = {}


def first_run_finishes(tmp, out):
    proc, timer = FIRST.pop(str(tmp))
    timer.cancel()
    proc.send_signal(signal.SIGCONT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert load(tmp / "out.h5").attrs["status"]        # the first run's file, complete
    assert not (tmp / ".out.h5.lock").exists()


def is_result(name):
    def check_(tmp, out):
        with h5py.File(tmp / name, "r") as f:
            assert "model" in f and "history" in f
        assert not [n for n in os.listdir(tmp) if n.endswith(".lock")], os.listdir(tmp)
    return check_


def says(text, *more):
    """check: distnewton printed ``text`` (a warning, or exit 4's line), then ``more``."""
    def check_(tmp, out):
        assert text.replace("{tmp}", str(tmp)) in out, out
        for c in more:
            c(tmp, out)
    return check_


def untouched(name, text):
    def check_(tmp, out):
        assert (tmp / name).read_text() == text
    return check_


#: a --plugin module that makes another writer take out.h5 just before this run's
#: publish number N (1: the final write; 2: the checkpoint after the first)
INTRUDER = '''
import os
from distnewton.io import claim
_publish, _calls = claim.Claim.publish, []
def publish(self, tmp):
    _calls.append(tmp)
    if len(_calls) == {n} and self.path.endswith("out.h5"):
        open("x.part", "w").write("intruder")
        os.replace("x.part", "out.h5")
    return _publish(self, tmp)
claim.Claim.publish = publish
'''
APPEARS = INTRUDER.format(n=1)
REPLACES = INTRUDER.format(n=2)


def fallback_file(tmp):
    """prepare: a fallback archive of a finished run whose write failed."""
    proc = distnewton_proc(tmp, "run", "c.yaml", "--backend", "sim", "--workers", 2, "-o",
                           "lost.h5", "-q", env={"DISTNEWTON_TEST_FAULT": "0:write:model"})
    proc.communicate(timeout=120)
    assert proc.returncode == 4 and (tmp / "lost.h5.fallback.npz").exists()


def stopped_run(tmp):
    """prepare: out.h5 of a run stopped by SIGTERM after iteration 1 (exit 3)."""
    proc = distnewton_proc(tmp, "run", "c.yaml", "--backend", "sim", "--workers", 2, "-o",
                           "out.h5", "-q", "--set", "run.max_rounds=30",
                           env={"DISTNEWTON_TEST_SIGNAL": "SIGTERM@1"})
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 3, err


def result_file(tmp):
    """prepare: a result file r.h5 to export."""
    distnewton.solve({"data": {"train": str(tmp / "data.svm")}, "algorithm": {"name": "giant"},
                      "run": {"max_rounds": 3}}, output=tmp / "r.h5")


MPI_RUN = ["run", "{tmp}/c.yaml", "--backend", "mpi", "-o", "{tmp}/out.h5", "-q"]
RECOVER = ["recover", "{tmp}/lost.h5.fallback.npz"]
EXPORT = ["export", "{tmp}/r.h5", "-o"]
NOT_ROOT = pytest.mark.skipif(ROOT_USER, reason="root writes in read-only folders")

CASES = [
    # -- validation at start ------------------------------------------------------
    Case("output exists without --overwrite", files={"out.h5": "precious"},
         message="{tmp}/out.h5: exists (use --overwrite"),
    Case("output is a folder", files={"out.h5/x": "x"},
         message="{tmp}/out.h5: output path is a directory"),
    Case("trailing slash on a new name", args=run_args("{tmp}/res/"),
         message="{tmp}/res/: output path ends in '/' (a folder): give a file name"),
    Case("trailing slash on an existing folder", args=run_args("{tmp}/"),
         message="output path ends in '/' (a folder)"),
    Case("300-byte file name", args=run_args("{tmp}/" + "x" * 297 + ".h5"),
         message="file name is 300 bytes long; this file system takes at most"),
    Case("path longer than PATH_MAX", args=run_args("{tmp}/" + "d/" * 2100 + "out.h5"),
         message="bytes long; this system takes at most"),
    Case("symlink to a folder", files={"real/x": "x",
                                       "out.h5": lambda p: p.symlink_to(p.parent / "real")},
         message="{tmp}/out.h5: output path is a directory (a symbolic link to one)"),
    Case("dangling symlink without --overwrite",
         files={"out.h5": lambda p: p.symlink_to(p.parent / "nowhere")},
         message="{tmp}/out.h5: exists (use --overwrite"),
    Case("folder under a regular file", files={"plain": "x"},
         args=run_args("{tmp}/plain/out.h5"), message="{tmp}/plain/out.h5: cannot create folder"),
    Case("folder where no file can be created", args=run_args("/proc/distnewton-out.h5"),
         message="/proc/distnewton-out.h5: cannot create a file in /proc"),
    Case("new folder is created", args=run_args("{tmp}/sub/deeper/out.h5"), code=0,
         lines=None, new=("sub", "sub/deeper", "sub/deeper/out.h5"),
         check=is_result("sub/deeper/out.h5")),
    Case("'..' as the output", args=run_args(".."), message="..: output path is a directory"),
    Case("bad data after the claim: no lock, no folder left", data="garbage\n",
         args=run_args("{tmp}/new/out.h5"), message="data.svm:1: label 'garbage'"),
    Case("default output folder not left by a user error", data="1 1:1\n-1 2:1\n",
         args=["run", "{tmp}/c.yaml", "--backend", "sim", "--workers", "4", "-q"],
         message="4 workers but only 2 samples"),
    Case("long valid name: lock and temporary names fit", args=run_args("{tmp}/" + LONG),
         code=0, lines=None, new=(LONG,), check=is_result(LONG)),
    Case("long valid name: the fallback name fits", args=run_args("{tmp}/" + LONG), code=4,
         env={"DISTNEWTON_TEST_FAULT": "0:write:rename"}, lines=None, new=("r*.npz",),
         check=says("model and history saved to {tmp}/rrrr")),
    # -- claims -----------------------------------------------------------------------
    Case("live claim, no --overwrite", prepare=lambda t: lock(t),
         message="{tmp}/out.h5: in use by another run (pid"),
    Case("live claim with --overwrite", files={"out.h5": "precious"},
         prepare=lambda t: lock(t), args=run_args("{tmp}/out.h5", "--overwrite"),
         message="{tmp}/out.h5: in use by another run", check=untouched("out.h5", "precious")),
    Case("claim of another host", prepare=lambda t: lock(t, host="node-elsewhere", pid=1),
         message="in use by a run on host node-elsewhere (pid 1, lock {tmp}/.out.h5.lock); "
                 "if it has ended, remove {tmp}/.out.h5.lock"),
    Case("unreadable lock file", files={".out.h5.lock": "garbage"},
         message="{tmp}/out.h5: locked by {tmp}/.out.h5.lock (unreadable)"),
    Case("stale claim of a dead process is taken over", prepare=lambda t: lock(t, pid=dead_pid()),
         code=0, lines=None, new=("out.h5",),
         check=says("took over the lock of pid", is_result("out.h5"))),
    Case("two runs to one path", prepare=stopped_first_run, launch="proc",
         message="{tmp}/out.h5: in use by another run (pid", new=("out.h5",),
         check=first_run_finishes),
    Case("two runs to one path with --overwrite", prepare=stopped_first_run, launch="proc",
         args=run_args("{tmp}/out.h5", "--overwrite"), new=("out.h5",),
         message="{tmp}/out.h5: in use by another run (pid", check=first_run_finishes),
    Case("--overwrite replaces an existing file", files={"out.h5": "old"},
         args=run_args("{tmp}/out.h5", "--overwrite"), code=0, lines=None,
         check=is_result("out.h5")),
    Case("a file appearing during the run is not replaced", launch="proc",
         files={"intruder.py": APPEARS}, args=run_args("{tmp}/out.h5", "--plugin", "intruder"),
         code=4, lines=None, new=("out.h5", "out.h5.fallback.npz", "__pycache__*"),
         check=says("appeared during the run (not written by it): not replaced; model and "
                    "history saved to {tmp}/out.h5.fallback.npz",
                    untouched("out.h5", "intruder"))),
    Case("a checkpoint replaced by another is not replaced", launch="proc",
         files={"intruder.py": REPLACES},
         args=run_args("{tmp}/out.h5", "--plugin", "intruder", "--set",
                       "run.checkpoint_every=1", "--set", "run.max_rounds=6"),
         code=4, lines=None, new=("out.h5", "out.h5.fallback.npz", "__pycache__*"),
         check=says("changed during the run (not written by it): not replaced",
                    untouched("out.h5", "intruder"))),
    Case("resume of a file another run holds", prepare=lambda t: (stopped_run(t), lock(t)),
         args=["run", "--resume", "{tmp}/out.h5", "-q"],
         message="{tmp}/out.h5: in use by another run (pid"),
    Case("resume after a killed resume",
         prepare=lambda t: (stopped_run(t), lock(t, pid=dead_pid())),
         args=["run", "--resume", "{tmp}/out.h5", "-q"], code=0, lines=None,
         check=says("took over the lock of pid", is_result("out.h5"))),
    # -- temporary files of a killed write -------------------------------------------
    Case("SIGKILL in a checkpoint write, next run to the same path",
         prepare=killed_checkpoint(), code=0, lines=None, new=("out.h5",),
         check=says("took over the lock of pid", is_result("out.h5"))),
    Case("SIGKILL in a checkpoint write, next run to another path",
         prepare=killed_checkpoint("other.h5"), code=0, lines=None, new=("out.h5",),
         check=is_result("out.h5")),
    Case("mpi: SIGKILL of rank 0 in a checkpoint write, next run to the same path",
         launch="mpi", n=3, timeout=120, args=MPI_RUN, prepare=killed_checkpoint(mpi=True),
         code=0, lines=None, new=("out.h5",),
         check=says("took over the lock of pid", is_result("out.h5"))),
    # -- one writer ----------------------------------------------------------------------
    Case("sim backend under mpiexec -n 3", launch="mpi", n=3, timeout=120,
         message="run.backend: sim runs in one process, but the launcher started 3 copies"),
    Case("mpi: a claimed path is refused on every rank", launch="mpi", n=3, timeout=120,
         args=MPI_RUN,
         prepare=lambda t: lock(t), message="{tmp}/out.h5: in use by another run"),
    Case("mpi: bad data after the claim leaves no lock", launch="mpi", n=3, timeout=120,
         data="1 1:1\n-1 2:x\n1 1:1\n-1 2:1\n",
         args=MPI_RUN,
         message="data.svm:2"),
    Case("mpi: published, lock released", launch="mpi", n=3, timeout=120, code=0, lines=None,
         args=MPI_RUN,
         new=("out.h5",), check=is_result("out.h5")),
    Case("mpi: failed final write, fallback and lock released", launch="mpi", n=3,
         timeout=120, code=4, lines=None, env={"DISTNEWTON_TEST_FAULT": "0:write:rename"},
         args=MPI_RUN,
         new=("out.h5.fallback.npz",),
         check=says("model and history saved to {tmp}/out.h5.fallback.npz",
                    lambda t, o: not (t / ".out.h5.lock").exists() or pytest.fail("lock"))),
    # -- recover and export --------------------------------------------------------
    Case("recover onto an existing file",
         prepare=lambda t: (fallback_file(t), (t / "lost.h5").write_text("precious")),
         args=RECOVER,
         message="{tmp}/lost.h5: exists (use --overwrite"),
    Case("recover to a trailing slash", prepare=fallback_file,
         args=RECOVER + ["-o", "{tmp}/res/"], message="{tmp}/res/: output path ends in '/'"),
    Case("recover to a claimed path", prepare=fallback_file,
         args=RECOVER + ["-o", "{tmp}/out.h5"], files={".out.h5.lock": ""},
         message="{tmp}/out.h5: locked by"),
    Case("recover writes the file", prepare=fallback_file, args=RECOVER, code=0, lines=None,
         new=("lost.h5",), check=is_result("lost.h5")),
    Case("export onto an existing file", prepare=result_file, files={"m.model": "mine"},
         args=EXPORT + ["{tmp}/m.model"], message="{tmp}/m.model: exists (use --overwrite",
         check=untouched("m.model", "mine")),
    Case("export --overwrite", prepare=result_file, files={"m.model": "mine"},
         args=EXPORT + ["{tmp}/m.model", "--overwrite"], code=0, lines=None,
         check=lambda tmp, out: (tmp / "m.model").read_text().startswith("solver_type")),
    Case("export to a 300-byte name", prepare=result_file,
         args=EXPORT + ["{tmp}/" + "m" * 300], message="file name is 300 bytes long"),
    Case("export to a claimed path", prepare=lambda t: (result_file(t), lock(t, "m.json")),
         args=EXPORT + ["{tmp}/m.json", "--format", "json"],
         message="{tmp}/m.json: in use by another run"),
]


@pytest.mark.parametrize("case", params(CASES, "outputs"))
def test_outputs(case, tmp_path):
    check(case, tmp_path)


@NOT_ROOT
@pytest.mark.corpus
def test_folder_not_writable(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        check(Case("folder not writable", args=run_args("{tmp}/ro/out.h5"),
                   message="{tmp}/ro/out.h5: folder is not writable"), tmp_path)
    finally:
        folder.chmod(0o755)


# -- the Python API --------------------------------------------------------------
def api_config(tmp):
    (tmp / "data.svm").write_text(DATA)
    return {"data": {"train": str(tmp / "data.svm")}, "algorithm": {"name": "giant"},
            "run": {"max_rounds": 3}}


def test_solve_refuses_a_claimed_path_before_the_run(tmp_path):
    lock(tmp_path)
    with pytest.raises(UserError, match="in use by another run"):
        distnewton.solve(api_config(tmp_path), output=tmp_path / "out.h5", overwrite=True)
    assert sorted(os.listdir(tmp_path)) == [".out.h5.lock", "data.svm"]


def test_solve_releases_its_claim(tmp_path):
    cfg = api_config(tmp_path)
    first = distnewton.solve(cfg, output=tmp_path / "out.h5")
    again = distnewton.solve(cfg, output=tmp_path / "out.h5", overwrite=True)
    assert first.path == again.path == str(tmp_path / "out.h5")
    assert sorted(os.listdir(tmp_path)) == ["data.svm", "out.h5"]


def test_solve_does_not_replace_a_file_that_appeared(tmp_path):
    out = tmp_path / "out.h5"

    def intrude(row):
        if row["iteration"] == 1:
            out.write_text("intruder")
    with pytest.warns(RuntimeWarning, match="appeared during the run"):
        res = distnewton.solve(api_config(tmp_path), output=out, callback=intrude)
    assert res.path is None and out.read_text() == "intruder"
    assert sorted(os.listdir(tmp_path)) == ["data.svm", "out.h5"]


def test_result_save_claims_its_path(tmp_path):
    res = distnewton.solve(api_config(tmp_path))
    (tmp_path / "taken.h5").write_text("mine")
    with pytest.raises(UserError, match="exists"):
        res.save(tmp_path / "taken.h5")
    lock(tmp_path, "held.h5")
    with pytest.raises(UserError, match="in use by another run"):
        res.save(tmp_path / "held.h5", overwrite=True)
    with pytest.raises(UserError, match="ends in '/'"):
        res.save(str(tmp_path) + "/new/")
    assert res.save(tmp_path / "taken.h5", overwrite=True) == str(tmp_path / "taken.h5")
    np.testing.assert_array_equal(load(tmp_path / "taken.h5").w, res.w)
    assert sorted(os.listdir(tmp_path)) == [".held.h5.lock", "data.svm", "taken.h5"]


def test_live_writers_temporary_files_are_kept(tmp_path):
    """The sweep removes only what a dead process or this path's last run left."""
    from distnewton.io import claim
    live = claim.temp_prefix(tmp_path / "other.h5", pid=os.getppid()) + "abc.h5"
    dead = claim.temp_prefix(tmp_path / "other.h5", pid=dead_pid()) + "abc.h5"
    mine = claim.temp_prefix(tmp_path / "out.h5", pid=os.getppid()) + "abc.h5"
    for name in (live, dead, mine):
        (tmp_path / name).write_text("partial")
    with claim.claim(tmp_path / "out.h5"):
        assert sorted(os.listdir(tmp_path)) == sorted([".out.h5.lock", live])
    assert os.listdir(tmp_path) == [live]
