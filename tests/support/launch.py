"""Launching real jobs from tests: ``mpiexec -n N python -m distnewton ...``.

The launcher is the ``mpiexec`` beside the interpreter running the tests (the
``mpich`` wheel's in the default install, Open MPI's ``mpirun`` in the second
environment ``.ci/run`` builds), or ``$DISTNEWTON_TEST_MPIEXEC``.  Both
implementations get the environment a small machine needs (see :func:`env`).
"""

import functools
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import h5py

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "data"
NO_DATA = "../shared/data not found: real LIBSVM data sets live beside the checkout"


#: What Open MPI needs on a 2-core test machine, as root (ignored by MPICH):
#: run as root, and more ranks than cores (Open MPI 5 reads the PRTE variable,
#: 4.x the OMPI one).
OPEN_MPI_ENV = {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
                "PRTE_MCA_rmaps_default_mapping_policy": ":oversubscribe",
                "OMPI_MCA_rmaps_base_oversubscribe": "1"}


def env():
    e = dict(os.environ)
    e.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    e.update(OPEN_MPI_ENV)
    e["PYTHONPATH"] = str(ROOT) + os.pathsep + e.get("PYTHONPATH", "")
    bindir = os.path.dirname(sys.executable)       # this environment's mpiexec/distnewton
    e["PATH"] = bindir + os.pathsep + e.get("PATH", "")
    return e


#: Marker names of the running test (set by conftest.py): a test that launches
#: MPI must carry ``@pytest.mark.mpi``, so that ``-m mpi`` (the Open MPI pass of
#: .ci/run) runs every one of them.
CURRENT_MARKERS = None


def mpiexec():
    """The launcher; only for tests marked ``mpi``."""
    assert CURRENT_MARKERS is None or "mpi" in CURRENT_MARKERS, \
        "a test that launches MPI jobs needs @pytest.mark.mpi"
    return _mpiexec()


@functools.lru_cache(maxsize=None)
def _mpiexec():
    exe = os.environ.get("DISTNEWTON_TEST_MPIEXEC") or shutil.which(
        "mpiexec", path=os.path.dirname(sys.executable) + os.pathsep
        + os.environ.get("PATH", ""))
    assert exe, "mpiexec not found: `pip install -e .` brings it (the mpich wheel)"
    return exe


@functools.lru_cache(maxsize=None)
def mpi_implementation():
    """``"openmpi"`` or ``"mpich"``: which MPI the tests' mpiexec launches."""
    out = subprocess.run([_mpiexec(), "--version"], capture_output=True, text=True,
                         timeout=60, env=env())
    return "openmpi" if "Open MPI" in out.stdout + out.stderr else "mpich"


def cli(*args, n=None, timeout=240, cwd=None, extra_env=None):
    """Run ``distnewton ARGS`` (under ``mpiexec -n n`` when n is given)."""
    cmd = [sys.executable, "-m", "distnewton", *map(str, args)]
    if n is not None:
        cmd = [mpiexec(), "-n", str(n), *cmd]
    e = env()
    e.update(extra_env or {})
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          cwd=cwd or ROOT, env=e)


#: Open MPI's PMIx server (inside prterun), not distnewton: ``[vm:30165] PMIX ERROR: ...``.
LAUNCHER_PMIX = re.compile(r"^\[[^\]\s]+:\d+\] PMIX ERROR: ")


def own_lines(stderr):
    """The non-blank lines distnewton printed, without the launcher's notices.

    Open MPI's mpirun adds a notice framed by lines of dashes after any rank
    exits non-zero ("prterun detected that one or more processes exited with
    non-zero status"), and its event library may print ``[warn] Epoll MOD(1) on fd
    N failed ...`` while the job is torn down, and its PMIx server may print
    ``[host:pid] PMIX ERROR: ...`` when it kills a job after ``MPI_Abort``;
    MPICH's mpiexec adds nothing.
    """
    out, framed = [], False
    for line in stderr.splitlines():
        if set(line.strip()) == {"-"} and len(line.strip()) > 20:
            framed = not framed
        elif not framed and line.strip() and not line.startswith("[warn] Epoll ") \
                and not LAUNCHER_PMIX.match(line):
            out.append(line)
    return out


def write_config(path, **sections):
    import yaml
    Path(path).write_text(yaml.safe_dump(sections, sort_keys=False))
    return path


def read_result(path):
    with h5py.File(path, "r") as f:
        attrs = dict(f.attrs)
        hist = {k: f["history"][k][()] for k in f["history"]}
        w = f["model/w"][()]
    return attrs, hist, w


def synth(path, samples, features, density=0.5, seed=3):
    """Write a small synthetic logistic problem with `distnewton data synth` (the CLI)."""
    res = cli("data", "synth", path, "--samples", samples, "--features", features,
              "--density", density, "--seed", seed)
    assert res.returncode == 0, res.stderr
    return path
