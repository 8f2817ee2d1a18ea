"""Files for a shared cluster folder (issue 29, part 6): everything distnewton
writes gets the mode ``open()`` and ``os.makedirs`` would give it, 0666 & ~umask
for files and 0777 & ~umask for folders (0644/0755 under umask 022, 0640/0750
under 027, 0600/0700 under 077), never tempfile's 0600 whatever the umask.

The reference is the umask arithmetic itself; the CLI runs in a child process
with the umask set (``preexec_fn``), under ``mpiexec -n 3`` too, where several
ranks write the pieces of the parsed-data cache.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import tempfile

import pytest

from support.launch import env, mpiexec, write_config

from distnewton import filemode
from distnewton.io import claim


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def expected(path, umask):
    return (0o777 if os.path.isdir(path) else 0o666) & ~umask


def modes(paths, umask):
    """{path: (found, expected)} of ``paths`` as octal strings (an unequal pair fails)."""
    return {os.fspath(p): (oct(mode(p)), oct(expected(p, umask))) for p in paths}


def assert_modes(paths, umask):
    found = modes(paths, umask)
    assert paths and all(a == b for a, b in found.values()), found


class umask_set:
    """This process's umask set to ``value`` inside the block."""

    def __init__(self, value):
        self.value = value

    def __enter__(self):
        self.old = os.umask(self.value)

    def __exit__(self, *exc):
        os.umask(self.old)


# -- in this process ---------------------------------------------------------------
@pytest.mark.parametrize("umask", [0o022, 0o027, 0o077, 0o002])
def test_the_umask_is_read_without_being_changed(umask, monkeypatch):
    with umask_set(umask):
        assert filemode.current_umask() == umask
        monkeypatch.setattr(filemode, "_proc_umask", lambda: None)   # no /proc
        assert filemode.current_umask() == umask
        assert os.umask(umask) == umask            # left as it was
    assert filemode.file_mode() == 0o666 & ~os.umask(os.umask(0o022))


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o077])
def test_temporary_files_and_lock_files_get_opens_mode(tmp_path, umask):
    with umask_set(umask):
        tmp = claim.temp_file(tmp_path / "r.h5", ".h5")
        with claim.claim(tmp_path / "r.h5") as held:
            lock = held.lock
            assert_modes([tmp, lock], umask)
        fd, made = tempfile.mkstemp(dir=tmp_path)
        os.close(fd)
        folder = tempfile.mkdtemp(dir=tmp_path)
        assert mode(made) == 0o600 and mode(folder) == 0o700      # what tempfile does
        filemode.fix_mode(made)
        filemode.fix_mode(folder)
        assert_modes([made, folder], umask)


# -- the command line under a umask -------------------------------------------------
def run(args, umask, cwd, n=None, extra_env=None):
    """``distnewton ARGS`` (under ``mpiexec -n n``) in a child whose umask is ``umask``."""
    cmd = [sys.executable, "-m", "distnewton", *map(str, args)]
    if n is not None:
        cmd = [mpiexec(), "-n", str(n), *cmd]
    proc = subprocess.run(cmd, cwd=cwd, env={**env(), **(extra_env or {})},
                          capture_output=True, text=True, timeout=300,
                          preexec_fn=lambda: os.umask(umask))
    return proc


def synth_config(tmp, cache):
    """A synthetic training file (``data synth``) and its config, cached in ``cache``."""
    return write_config(tmp / "c.yaml", data={"train": str(tmp / "train.svm"),
                                              "cache": str(cache)},
                        algorithm={"name": "giant"}, run={"max_rounds": 6})


def cache_files(cache):
    """The cache folder, its entry folder and every file in it."""
    entries = [p for p in cache.iterdir() if p.is_dir()]
    assert len(entries) == 1 and not entries[0].name.startswith(".tmp-"), entries
    return [cache, entries[0], *entries[0].iterdir()]


@pytest.mark.slow
@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_a_runs_result_file_follows_the_umask(tmp_path, umask):
    assert run(["data", "synth", tmp_path / "train.svm", "--samples", 200, "--features", 8],
               umask, tmp_path).returncode == 0
    cfg = synth_config(tmp_path, tmp_path / "cache")
    done = run(["run", cfg, "--backend", "sim", "--workers", 2, "-o", tmp_path / "r.h5",
                "-q"], umask, tmp_path)
    assert done.returncode == 0, done.stderr
    assert_modes([tmp_path / "train.svm", tmp_path / "r.h5"], umask)


@pytest.mark.slow
def test_every_file_a_command_writes_follows_umask_027(tmp_path):
    umask = 0o027
    ok = dict(umask=umask, cwd=tmp_path)
    assert run(["data", "synth", tmp_path / "train.svm", "--samples", 300, "--features", 8],
               **ok).returncode == 0
    cfg = synth_config(tmp_path, tmp_path / "cache")
    out = tmp_path / "results" / "deep" / "r.h5"               # folders made for it
    done = run(["run", cfg, "--backend", "sim", "--workers", 2, "-o", out, "-q",
                "--set", "run.checkpoint_every=1"], **ok)  # the checkpoint: the same file
    assert done.returncode == 0, done.stderr
    for args in (["export", out, "-o", tmp_path / "model.txt", "--format", "liblinear"],
                 ["export", out, "-o", tmp_path / "model.npz", "--format", "npz"],
                 ["predict", out, tmp_path / "train.svm", "-o", tmp_path / "pred.txt"],
                 ["data", "split", tmp_path / "train.svm", "--parts", 2, "--out",
                  tmp_path / "parts"]):
        done = run(args, **ok)
        assert done.returncode == 0, (args, done.stderr)
    lost = run(["run", cfg, "--backend", "sim", "--workers", 2, "-o", tmp_path / "lost.h5",
                "-q"], **ok, extra_env={"DISTNEWTON_TEST_FAULT": "0:write:model"})
    assert lost.returncode == 4, lost.stderr
    files = [tmp_path / name for name in ("train.svm", "model.txt", "model.npz", "pred.txt",
                                          "lost.h5.fallback.npz", "parts")]
    files += [out, out.parent, out.parent.parent, *(tmp_path / "parts").iterdir()]
    assert_modes(files + cache_files(tmp_path / "cache"), umask)
    assert not [p for p in tmp_path.rglob(".*") if p.is_file()]    # no temporary, no lock


@pytest.mark.slow
@pytest.mark.mpi
def test_cache_pieces_of_several_ranks_and_the_result_follow_the_umask(tmp_path):
    umask = 0o027
    assert run(["data", "synth", tmp_path / "train.svm", "--samples", 600, "--features", 8],
               umask, tmp_path).returncode == 0
    cfg = synth_config(tmp_path, tmp_path / "cache")
    done = run(["run", cfg, "--backend", "mpi", "-o", tmp_path / "r.h5", "-q"], umask,
               tmp_path, n=3)
    assert done.returncode == 0, done.stderr
    files = cache_files(tmp_path / "cache")
    assert len([p for p in files if p.name.startswith("piece-")]) == 2   # one per worker rank
    assert_modes(files + [tmp_path / "r.h5"], umask)

