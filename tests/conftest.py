"""Shared pytest fixtures, and the MPI implementation in the report header."""

from pathlib import Path

import pytest

import launch


def pytest_report_header(config):
    try:
        return f"mpi: {launch.mpi_implementation()} ({launch._mpiexec()})"
    except Exception as exc:                    # noqa: BLE001 - only a header
        return f"mpi: not available ({exc})"


@pytest.fixture(autouse=True)
def _markers(request):
    """Let tests/launch.py check that a test launching MPI is marked ``mpi``."""
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
