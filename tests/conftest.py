"""Shared pytest fixtures, and the MPI implementation in the report header.

The helpers behind them live in tests/support/ (test modules never import one
another); ``slurm``, the one-node SLURM cluster, is a fixture of
support/slurm_cluster.py, and ``slurm_problem`` and ``timelimit_job``, which the
tests/test_slurm_*.py modules share, of support/slurm_jobs.py: both registered
here as plugins.
"""

from pathlib import Path

import pytest

import support.launch as launch
from support.launch import synth
from support.plugin_fixture import D, LAM, N, sklearn_optimum, write_plugins
from support.references import logistic_reference

pytest_plugins = ["support.slurm_cluster", "support.slurm_jobs", "support.suites"]


def pytest_report_header(config):
    try:
        return f"mpi: {launch.mpi_implementation()} ({launch._mpiexec()})"
    except Exception as exc:                    # noqa: BLE001 - only a header
        return f"mpi: not available ({exc})"


def pytest_collection_modifyitems(config, items):
    """``slow`` also covers every test marked ``mpi``, ``slurm`` or ``data``: they
    start MPI jobs, a cluster, or read the real sets, so ``-m "not slow"`` is the
    in-process inner loop (docs/tests.md).  The session's suite
    (support/suites.py: ``fast`` by default) then deselects what it leaves out."""
    for item in items:
        if any(item.get_closest_marker(m) for m in ("mpi", "slurm", "data")):
            item.add_marker(pytest.mark.slow)


def pytest_runtest_setup(item):
    """A test marked ``data`` skips, one by one and saying why, without ../shared/data.

    ``@pytest.mark.data(reason="...")`` names what the test needs from the real
    sets (their scale, a published optimum); the skip line repeats it, so the
    census of a plain clone (``pytest -rs``) says what is not covered and why.
    """
    mark = item.get_closest_marker("data")
    if mark is not None and not launch.SHARED.is_dir():
        why = mark.kwargs.get("reason") or (mark.args[0] if mark.args else "")
        pytest.skip(f"{launch.NO_DATA}; needs {why}" if why else launch.NO_DATA)


@pytest.fixture(autouse=True)
def _markers(request):
    """Let tests/support/launch.py check that a test launching MPI is marked ``mpi``."""
    launch.CURRENT_MARKERS = {m.name for m in request.node.iter_markers()}
    yield
    launch.CURRENT_MARKERS = None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Directory of the real LIBSVM data sets, beside the checkout.

    May not exist: tests that need it call
    ``pytest.skip("../shared/data not found: real LIBSVM data sets live beside the checkout")``.
    """
    return Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="module")
def plugin_data(tmp_path_factory):
    """The plugin tests' synthetic set and its scikit-learn optimum: (path, w*)."""
    path = tmp_path_factory.mktemp("data") / "s.svm"
    synth(path, N, D, density=0.5, seed=3)
    return path, sklearn_optimum(path, D, LAM)


@pytest.fixture
def plugins(tmp_path):
    """The test plugin's modules in a folder (support/plugin_fixture.py), for PYTHONPATH."""
    return write_plugins(tmp_path / "plugins")


@pytest.fixture(scope="module")
def slsgd_small(tmp_path_factory):
    """4000 x 40 synthetic logistic set: (data keys, X, y, lam, f*)."""
    path = synth(tmp_path_factory.mktemp("slsgd") / "s.svm", 4000, 40, density=0.25)
    X, y, lam, _, f_ref = logistic_reference(path)
    return {"train": str(path)}, X, y, lam, f_ref
