"""Shared fixtures. Data made here is tiny and generated once per test session."""
import os

import matplotlib
import pytest

matplotlib.use("Agg")
os.environ.setdefault("OMP_NUM_THREADS", "2")


@pytest.fixture(scope="session")
def smoke_data(tmp_path_factory):
    """The synthetic dataset's "smoke" preset (all classes, a few clips each), generated once."""
    from vidlab.data import make_synthetic
    return make_synthetic(tmp_path_factory.mktemp("data") / "synthetic", preset="smoke", seed=0)
