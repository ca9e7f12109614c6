import os
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))


@pytest.fixture
def toy_registry(monkeypatch):
    """Register the toy least-squares system (tests/toy_system.py) as 'toy' for the duration of a test."""
    from athanor import systems

    spec = systems.SystemSpec("toy", "test", "toy_system", "least squares by minibatch SGD")
    monkeypatch.setitem(systems.SYSTEMS, "toy", spec)
    return spec


@pytest.fixture(autouse=True, scope="session")
def _private_data_cache(tmp_path_factory):
    """Generated datasets (the point maze's) go to a per-session folder, never the user's cache."""
    if "ATHANOR_DATA_DIR" not in os.environ:
        os.environ["ATHANOR_DATA_DIR"] = str(tmp_path_factory.mktemp("data-cache"))
    yield
