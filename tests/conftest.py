"""Shared pytest fixtures."""

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Directory of the real LIBSVM data sets, beside the checkout.

    May not exist: tests that need it call
    ``pytest.skip("../shared/data not found: real LIBSVM data sets live beside the checkout")``.
    """
    return Path(__file__).resolve().parents[1].parent / "shared" / "data"
