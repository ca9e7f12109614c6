"""Property tests of the command line: malformed input of every kind gets exit code 2 and a one-line error,
never a traceback, and never starts any work.

The CLI runs in this process (``athanor.cli.main``) with the run loop replaced by a trap, so an input that got
past validation would fail the test instead of training. Inputs are malformed by construction: text with no
``=``, unknown keys, values of the wrong type for the key, out-of-range values, unknown names and paths.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import typing
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from athanor.cli import main
from athanor.core import config as C
from athanor.experiments import EXPERIMENTS
from athanor.systems import SYSTEMS

SYSTEM = "vae"  # a real system whose config has int, float, bool-free and choice fields
FIELDS = {f.name: f for f in dataclasses.fields(SYSTEMS[SYSTEM].load().Config)}
HINTS = typing.get_type_hints(SYSTEMS[SYSTEM].load().Config)
BOOL_WORDS = {"1", "true", "yes", "on", "0", "false", "no", "off", "none", "null"}
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

letters = st.from_regex(r"[A-Za-z][A-Za-z_]{0,11}", fullmatch=True)
junk = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=20)


def _fields(kind: type) -> list[str]:
    return [n for n, tp in HINTS.items() if C._base_type(tp) is kind and FIELDS[n].metadata.get("choices") is None]


def _run_cli(argv: list[str]) -> tuple[int, str]:
    err = io.StringIO()

    def trap(*args, **kwargs):
        raise AssertionError(f"malformed input started a run: {argv}")

    with mock.patch("athanor.core.runloop.start", trap), mock.patch("athanor.core.runloop.resume", trap), \
            mock.patch("athanor.core.bench.run_isolated", trap), contextlib.redirect_stderr(err), \
            contextlib.redirect_stdout(io.StringIO()):
        code = main(argv)
    return code, err.getvalue()


def _assert_usage_error(argv: list[str]) -> None:
    code, err = _run_cli(argv)
    assert code == 2, (argv, code, err)
    assert "Traceback" not in err
    lines = err.strip().splitlines()  # argparse's own errors print the usage first
    assert lines and lines[-1].startswith("athanor: error: "), (argv, err)
    assert sum(line.startswith("athanor:") for line in lines) == 1, (argv, err)


@st.composite
def bad_set(draw) -> str:
    """One ``--set`` item that cannot be valid for SYSTEM's config."""
    kind = draw(st.sampled_from(["no_equals", "unknown_key", "int", "float", "choice", "below_min"]))
    if kind == "no_equals":
        return draw(junk.filter(lambda t: "=" not in t))
    if kind == "unknown_key":
        key = draw(letters.filter(lambda k: k.strip() not in FIELDS))
        return f"{key}={draw(junk)}"
    if kind == "int":  # letters never parse as an integer (inf and nan are floats, not integers)
        return f"{draw(st.sampled_from(_fields(int)))}={draw(letters)}"
    if kind == "float":  # letters parse as a float only as inf / nan, which are refused as non-finite
        return f"{draw(st.sampled_from(_fields(float)))}={draw(letters)}"
    if kind == "choice":
        name = draw(st.sampled_from([n for n, f in FIELDS.items() if f.metadata.get("choices")]))
        value = draw(letters.filter(lambda v: v not in FIELDS[name].metadata["choices"]))
        return f"{name}={value}"
    name = draw(st.sampled_from([n for n in _fields(int) if FIELDS[n].metadata.get("lo") is not None]))
    return f"{name}={int(FIELDS[name].metadata['lo']) - draw(st.integers(1, 10**6))}"


@SETTINGS
@given(item=bad_set(), command=st.sampled_from(["run", "bench"]))
def test_malformed_set_is_exit_2(item, command):
    _assert_usage_error([command, SYSTEM, "--preset", "tiny", "--set", item])


@SETTINGS
@given(name=letters.filter(lambda n: n not in SYSTEMS and n not in EXPERIMENTS
                           and n not in {s.family for s in SYSTEMS.values()}))
def test_unknown_names_are_exit_2(name):
    for argv in (["run", name], ["bench", name], ["experiment", name], [name]):
        _assert_usage_error(argv)


@SETTINGS
@given(path=st.from_regex(r"/nonexistent/[a-z0-9_]{1,10}", fullmatch=True))
def test_paths_that_are_not_run_or_experiment_directories_are_exit_2(path):
    for argv in (["claims", path], ["claims", path, "--reanalyse"], ["report", path], ["run", "--resume", path]):
        _assert_usage_error(argv)


@SETTINGS
@given(flag=letters, value=junk)
def test_unknown_flags_and_bad_numbers_are_exit_2(flag, value):
    _assert_usage_error(["run", SYSTEM, f"--{flag}x", value])  # no flag ends in x
    _assert_usage_error(["experiment", "vae-kl", "--scale", f"{flag}!"])
    if not value.strip().lstrip("+-").isdigit():
        _assert_usage_error(["run", SYSTEM, "--seed", value or "x"])


@pytest.mark.parametrize("argv", [["run", SYSTEM, "--seed", "2147483648"], ["run", SYSTEM, "--set", "lr=nan"],
                                  ["run", SYSTEM, "--set", "lr=inf"], ["experiment", "vae-kl", "--seeds", "0"]])
def test_edge_values_are_exit_2(argv):
    _assert_usage_error(argv)
