import os
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

# One XLA compilation cache for the whole suite: the xdist workers, and the `athanor` subprocesses of the CLI tests
# (they inherit the environment), reuse each other's compiled programs instead of compiling the same step again in
# every test that runs it. It is keyed on the program, the compiler options and the jax version, so a hit is the
# same executable; set here, before any test imports jax. Users' runs are not affected.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(TESTS.parent / ".pytest_cache" / "jax-compilation"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

# Systems that exist only for the tests (tests/*_system.py): not registered for users, registered per test.
TEST_SYSTEMS = {
    "toy": ("toy_system", "least squares by minibatch SGD (JAX)"),
    "torch-toy": ("torch_system", "least squares by minibatch SGD with momentum (PyTorch)"),
    "loop-toy": ("loop_system", "least squares by SGD in NumPy, with its own loop (run)"),
}


def register(monkeypatch, name: str):
    from athanor import systems

    module, summary = TEST_SYSTEMS[name]
    spec = systems.SystemSpec(name, "test", module, summary)
    monkeypatch.setitem(systems.SYSTEMS, name, spec)
    return spec


@pytest.fixture
def toy_registry(monkeypatch):
    """Register the test systems (tests/toy_system.py as 'toy', tests/torch_system.py as 'torch-toy',
    tests/loop_system.py as 'loop-toy') for the duration of a test."""
    return {name: register(monkeypatch, name) for name in TEST_SYSTEMS}


@pytest.fixture(autouse=True, scope="session")
def _private_data_cache(tmp_path_factory):
    """Generated datasets (the point maze's) go to a per-session folder, never the user's cache."""
    if "ATHANOR_DATA_DIR" not in os.environ:
        os.environ["ATHANOR_DATA_DIR"] = str(tmp_path_factory.mktemp("data-cache"))
    yield
