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
