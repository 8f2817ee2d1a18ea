"""Adversarial corpus, class *hangs*: every wait can be interrupted (issue 28).

- inputs that are not regular files (a FIFO, ``/dev/zero``, a directory, a
  socket) as config, data, test set, weights, warm start, ``--resume`` file or
  a command's result/data: one line ``PATH: not a regular file``, exit 2,
  before any read (under ``mpiexec`` too: no rank hangs);
- YAML: nested aliases ("billion laughs"), an oversized file, duplicate keys
  (top level, nested, in ``--set``), bytes that are not UTF-8; a 1 MB legitimate
  config loads quickly (libyaml);
- signals: SIGTERM/SIGINT during a long local phase stop with a checkpoint
  (exit 3) that ``--resume`` continues; during data loading, exit 128 + signum
  with nothing left behind (cache ``.tmp-`` folders included).

Timing: the local-phase cases signal one second after the rank first reached a
round (``DISTNEWTON_TEST_MARK``: no fixed sleep over a start-up that takes 2-8 s
on a loaded 2-core machine), inside a phase that would take minutes (``L``
10^7); the loading cases signal when the cache's pieces appear, or after a fixed
start-up for the one path that writes nothing while it parses, a ~60 MB file
(several seconds here).
"""

import os
from pathlib import Path
import socket
import sys

import h5py
import numpy as np
import pytest

from support import launch
from support.corpus import RUN, Case, check, in_rounds, params, run_proc

NOT_REGULAR = "not a regular file"
FIFO = lambda p: os.mkfifo(p)          # noqa: E731


def sock(path):
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(path))
    s.close()


def result(tmp):
    """A finished small run's result file ``{tmp}/res.h5`` (for predict/evaluate/report)."""
    import subprocess
    cfg = tmp / "r.yaml"
    cfg.write_text(f"data: {{train: {tmp}/data.svm}}\nalgorithm: {{name: giant}}\n"
                   "run: {max_rounds: 2}\n")
    res = subprocess.run([sys.executable, "-m", "distnewton", "run", str(cfg), "--backend",
                          "sim", "--workers", "2", "-o", str(tmp / "res.h5"), "-q"],
                         env=launch.env(), capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr


def run_args(*extra, config="{tmp}/c.yaml"):
    return ["run", config, *RUN[2:], *extra]


# -- not a regular file ----------------------------------------------------------
SPECIAL = [
    Case("config is a FIFO", args=run_args(config="{tmp}/fifo"), files={"fifo": FIFO},
         message=f"{{tmp}}/fifo: {NOT_REGULAR} (a named pipe)"),
    Case("config is /dev/zero", args=run_args(config="/dev/zero"),
         message=f"/dev/zero: {NOT_REGULAR} (a character device)"),
    Case("config is a directory", args=run_args(config="{tmp}/adir"), files={"adir/x": "x"},
         message=f"{{tmp}}/adir: {NOT_REGULAR} (a directory)"),
    Case("config is a socket", args=run_args(config="{tmp}/s"), files={"s": sock},
         message=f"{{tmp}}/s: {NOT_REGULAR} (a socket)"),
    Case("data.train is a FIFO", config={"data": {"train": "{tmp}/fifo"}}, files={"fifo": FIFO},
         message=f"data.train: {{tmp}}/fifo: {NOT_REGULAR}"),
    Case("data.train is /dev/zero", config={"data": {"train": "/dev/zero"}},
         message=f"data.train: /dev/zero: {NOT_REGULAR}"),
    Case("data.train is a directory", config={"data": {"train": "{tmp}/adir"}},
         files={"adir/x": "x"}, message=f"data.train: {{tmp}}/adir: {NOT_REGULAR}"),
    Case("data.train is a socket", config={"data": {"train": "{tmp}/s"}}, files={"s": sock},
         message=f"data.train: {{tmp}}/s: {NOT_REGULAR}"),
    Case("data.test is a FIFO", config={"data": {"test": "{tmp}/fifo"}}, files={"fifo": FIFO},
         message=f"data.test: {{tmp}}/fifo: {NOT_REGULAR}"),
    Case("data.weights is /dev/zero", config={"data": {"weights": "/dev/zero"}},
         message=f"data.weights: /dev/zero: {NOT_REGULAR}"),
    Case("model.w0 is a FIFO", config={"model": {"w0": "{tmp}/fifo"}}, files={"fifo": FIFO},
         message=f"model.w0: {{tmp}}/fifo: {NOT_REGULAR}"),
    Case("model.w0 is a directory", config={"model": {"w0": "{tmp}/adir"}},
         files={"adir/x": "x"}, message=f"model.w0: {{tmp}}/adir: {NOT_REGULAR}"),
    Case("data.shards part is a FIFO", config={"data": {"train": None, "shards": "{tmp}/sh"}},
         files={"sh/manifest.json": "{}", "sh/part-00000.h5": FIFO},
         message=f"data.shards: {{tmp}}/sh/part-00000.h5: {NOT_REGULAR}"),
    Case("--resume is a FIFO", args=["run", "--resume", "{tmp}/fifo", "-q"],
         files={"fifo": FIFO}, message=f"--resume: {{tmp}}/fifo: {NOT_REGULAR}"),
    Case("--resume is /dev/zero", args=["run", "--resume", "/dev/zero", "-q"],
         message=f"--resume: /dev/zero: {NOT_REGULAR}"),
    Case("--resume is a directory", args=["run", "--resume", "{tmp}/adir", "-q"],
         files={"adir/x": "x"}, message=f"--resume: {{tmp}}/adir: {NOT_REGULAR}"),
    Case("predict result is a FIFO", args=["predict", "{tmp}/fifo", "{tmp}/data.svm"],
         files={"fifo": FIFO}, message=f"{{tmp}}/fifo: {NOT_REGULAR}"),
    Case("predict data is /dev/zero", args=["predict", "{tmp}/res.h5", "/dev/zero"],
         prepare=result, message=f"/dev/zero: {NOT_REGULAR}"),
    Case("evaluate data is a FIFO", args=["evaluate", "{tmp}/res.h5", "{tmp}/fifo"],
         prepare=result, files={"fifo": FIFO}, message=f"{{tmp}}/fifo: {NOT_REGULAR}"),
    Case("report result is a FIFO", args=["report", "{tmp}/fifo"], files={"fifo": FIFO},
         message=f"{{tmp}}/fifo: {NOT_REGULAR}"),
    Case("data info of a FIFO", args=["data", "info", "{tmp}/fifo"], files={"fifo": FIFO},
         message=f"{{tmp}}/fifo: {NOT_REGULAR}"),
    # under mpiexec: every rank refuses before MPI starts, none waits
    Case("mpi: config is a FIFO", args=run_args(config="{tmp}/fifo"), files={"fifo": FIFO},
         message=f"{{tmp}}/fifo: {NOT_REGULAR}", launch="mpi", lines=None, timeout=90),
    Case("mpi: data.train is a FIFO", config={"data": {"train": "{tmp}/fifo"},
                                              "run": {"backend": "mpi"}},
         args=["run", "{tmp}/c.yaml", "-o", "{tmp}/out.h5", "-q"], files={"fifo": FIFO},
         message=f"data.train: {{tmp}}/fifo: {NOT_REGULAR}", launch="mpi", lines=None,
         timeout=90),
    Case("mpi: data.test is /dev/zero", config={"data": {"test": "/dev/zero"},
                                                "run": {"backend": "mpi"}},
         args=["run", "{tmp}/c.yaml", "-o", "{tmp}/out.h5", "-q"],
         message=f"data.test: /dev/zero: {NOT_REGULAR}", launch="mpi", lines=None, timeout=90),
]

# -- YAML ------------------------------------------------------------------------
LAUGHS = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8))
#: the same in flow style on one line (a --set value): 10^6 nodes
NESTED = "[&a [x, x, x, x, x, x, x, x, x, x], " + ", ".join(
    f"&{b} [{', '.join(['*' + a] * 10)}]" for a, b in zip("abcde", "bcdef")) + "]"
BASE = "data: {train: data.svm}\nalgorithm: {name: giant}\nrun: {max_rounds: 2}\n"
#: ~1 MB of legitimate content: a label list and comments (refused only past 4 MiB)
MEGABYTE = (BASE + "model: {class_weight: {1: 1.0, -1: 1.0}}\n"
            + "".join(f"# note {i}: {'x' * 60}\n" for i in range(12000)))

YAML = [
    Case("billion laughs", raw_config=LAUGHS, timeout=20,
         message="{tmp}/c.yaml:6: aliases expand the document past 100000 nodes"),
    Case("billion laughs in --set", args=run_args("--set", "run.plugins=" + NESTED), timeout=20,
         message="value: aliases expand the document past 100000 nodes"),
    Case("config over 4 MiB", raw_config=BASE + "#" + "x" * (5 << 20) + "\n", timeout=20,
         message="{tmp}/c.yaml: larger than 4 MiB"),
    Case("1 MB config loads", raw_config=MEGABYTE,
         code=0, lines=None, new=("out.h5",), timeout=30),
    Case("duplicate section", raw_config=BASE + "data: {train: other.svm}\n",
         message="{tmp}/c.yaml:4: duplicate key 'data' (first at line 1)"),
    Case("duplicate nested key", raw_config=BASE + "model:\n  loss: logistic\n  lambda: 0.1\n"
         "  loss: ridge\n", message="{tmp}/c.yaml:7: duplicate key 'loss' (first at line 5)"),
    Case("duplicate key in --set", args=run_args("--set", "model.class_weight={1: 2, 1: 3}"),
         message="--set model.class_weight={1: 2, 1: 3}: value: duplicate key '1'"),
    Case("config not UTF-8", raw_config=BASE.encode() + b"# caf\xe9\n",
         message="{tmp}/c.yaml:4: not UTF-8 text (byte 0xe9"),
    Case("config with a control character", raw_config=BASE + "model: {loss: \x01}\n",
         message="{tmp}/c.yaml:4: characters YAML cannot read"),
    Case("config with a tab", raw_config=BASE + "model:\n\tloss: ridge\n",
         message="{tmp}/c.yaml:5: YAML syntax error"),
]


# -- signals -------------------------------------------------------------------------
def stopped_and_resumes(signame, workers=2):
    """The run stopped with a checkpoint; ``--resume`` continues it (stopped again
    by a SIGTERM while in its next long local phase: its history grows)."""
    def check(tmp, out):
        path = tmp / "out.h5"
        with h5py.File(path, "r") as f:
            status, message = f.attrs["status"], f.attrs["message"]
            rounds = int(f["history/comm_rounds"][-1])
            assert "checkpoint" in f
        assert status == "stopped", out
        assert f"{signame} received" in message, message
        again = tmp.parent / f"{tmp.name}-marks-resume"
        again.mkdir()
        env = {"DISTNEWTON_CACHE": str(tmp.parent / f"{tmp.name}-cache"),
               "DISTNEWTON_TEST_MARK": str(again)}
        resumed = in_rounds(0, folder=lambda _: again)
        code, _, text = run_proc([sys.executable, "-m", "distnewton", "run", "--resume",
                                  str(path), "--workers", str(workers), "-q"], 120, env, tmp,
                                 (lambda: resumed(tmp), "SIGTERM"))
        assert code == 3, text
        with h5py.File(path, "r") as f:
            assert f.attrs["status"] == "stopped"
            assert int(f["history/comm_rounds"][-1]) > rounds        # it went on
            assert np.all(np.isfinite(f["model/w"][()]))
    return check


LOCALNEWTON = {"algorithm": {"name": "localnewton", "L": 10 ** 7}, "run": {"max_rounds": 50}}
LOCALSGD = {"algorithm": {"name": "localsgd", "local_steps": 10 ** 8},
            "run": {"max_rounds": 50}}
#: MPICH's mpiexec forwards SIGTERM to every rank; Open MPI's mpirun treats it as
#: an abort (no checkpoint: see tests/test_checkpoint.py) but forwards SIGUSR1
MPI_STOP = "SIGUSR1" if launch.mpi_implementation() == "openmpi" else "SIGTERM"
#: seconds an MPI job takes to start here (load 7 on 2 cores: MPICH 4 s, Open MPI 7 s)
MPI_START = 8 if MPI_STOP == "SIGUSR1" else 4
MPI_CODE = 128 + getattr(__import__("signal"), MPI_STOP)
MPI_RUN = ["run", "{tmp}/c.yaml", "--backend", "mpi", "-o", "{tmp}/out.h5", "-q"]


def big_bz2(streams):
    """``streams`` bz2 streams of the same 2 MB of LIBSVM rows (bz2.open reads them
    as one file): 1.5 kB each on disk, 2 MB each to decompress and parse, so the
    loading lasts seconds (25 s for 100 streams on an idle core, no cache) however
    small the file is."""
    def make(path):
        import bz2
        line = " ".join(f"{j}:0.{j % 9 + 1}" for j in range(1, 61))
        block = bz2.compress("".join(f"{1 if k % 2 else -1} {line}\n"
                                     for k in range(5000)).encode())
        with open(path, "wb") as fh:
            for _ in range(streams):
                fh.write(block)
    return make


def parsing(tmp):
    """True once the ranks parse into the cache (its pieces' ``.tmp-`` folder)."""
    folder = Path(tmp) / "cache"
    return folder.is_dir() and any(p.name.startswith(".tmp-") and any(p.glob("piece-*"))
                                   for p in folder.iterdir())


def no_cache_tmp(tmp, out):
    cache = tmp.parent / f"{tmp.name}-cache"
    left = [p for p in cache.rglob("*") if ".tmp-" in p.name] if cache.exists() else []
    assert not left, left


#: the decompressed text goes to a cache folder in the case's folder (its .tmp- checked)
LOADING = {"data": {"train": "{tmp}/big.svm.bz2", "cache": "{tmp}/cache"}}
#: no cache: one process parses the decompressed stream (the slow path, under MPI too)
LOADING_SLOW = {"data": {"train": "{tmp}/big.svm.bz2", "cache": False}}
SIGNALS = [
    Case("SIGTERM in localnewton's local phase", config=LOCALNEWTON, launch="proc",
         signal=(in_rounds(0), "SIGTERM"), code=3, lines=None, new=("out.h5",), timeout=150,
         check=stopped_and_resumes("SIGTERM")),
    Case("SIGINT in localnewton's local phase", config=LOCALNEWTON, launch="proc",
         signal=(in_rounds(0), "SIGINT"), code=3, lines=None, new=("out.h5",), timeout=150,
         check=stopped_and_resumes("SIGINT")),
    Case("SIGTERM in localsgd's local steps", config=LOCALSGD, launch="proc",
         signal=(in_rounds(0), "SIGTERM"), code=3, lines=None, new=("out.h5",), timeout=150,
         check=stopped_and_resumes("SIGTERM")),
    Case("mpi: stop signal in localnewton's local phase", config=LOCALNEWTON, args=MPI_RUN,
         launch="mpi", signal=(in_rounds(1), MPI_STOP), code=3, lines=None, new=("out.h5",),
         timeout=180, check=stopped_and_resumes(MPI_STOP)),
    Case("mpi: stop signal in localsgd's local steps", config=LOCALSGD, args=MPI_RUN,
         launch="mpi", signal=(in_rounds(1), MPI_STOP), code=3, lines=None, new=("out.h5",),
         timeout=180, check=stopped_and_resumes(MPI_STOP)),
    Case("SIGTERM while loading the data", config=LOADING, files={"big.svm.bz2": big_bz2(100)},
         launch="proc", signal=(5, "SIGTERM"), code=143, lines=None, timeout=90,
         new=("cache",), message="SIGTERM received while loading the input: stopped, "
         "nothing written"),
    Case("SIGINT while loading the data", config=LOADING_SLOW,
         files={"big.svm.bz2": big_bz2(100)}, launch="proc", signal=(5, "SIGINT"), code=130,
         lines=None, timeout=90, check=no_cache_tmp,
         message="SIGINT received while loading the input"),
    Case("mpi: stop signal while loading the data", config=LOADING, args=MPI_RUN,
         files={"big.svm.bz2": big_bz2(100)}, launch="mpi", signal=(parsing, MPI_STOP),
         code=MPI_CODE, lines=None, timeout=120,
         new=("cache", "cache/*", "cache/*/*"),   # an entry committed before the signal
         message=f"{MPI_STOP} received while loading the input"),
    Case("mpi: stop signal while rank 0 parses alone", config=LOADING_SLOW, args=MPI_RUN,
         files={"big.svm.bz2": big_bz2(100)}, launch="mpi", signal=(MPI_START + 3, MPI_STOP),
         code=MPI_CODE, lines=None, timeout=120, check=no_cache_tmp,
         message=f"{MPI_STOP} received while loading the input"),
]

CASES = SPECIAL + YAML + SIGNALS


@pytest.mark.parametrize("case", params(CASES, "hangs"))
def test_hangs(case, tmp_path):
    check(case, tmp_path)
