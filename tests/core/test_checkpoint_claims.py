
import jax.numpy as jnp
import numpy as np
import pytest

from athanor.core import checkpoint, jaxtools
from athanor.core.errors import CheckpointError


def _state(v):
    return {"w": jnp.full((3,), v, jnp.float32), "n": jnp.int32(v)}


def _bytes(v):
    return jaxtools.save_state(_state(v))


def _restore(path, template):
    return checkpoint.restore(path, template, jaxtools.load_state)


def test_save_restore_round_trip_and_keep_last(tmp_path):
    for step in (10, 20, 30, 40):
        checkpoint.save(tmp_path, "toy", step, {"a": 1}, _bytes(step), keep=3)
    files = checkpoint.list_checkpoints(tmp_path)
    assert [p.name for p in files] == [f"ckpt_{s:09d}.msgpack" for s in (20, 30, 40)]
    state, record = _restore(files[-1], _state(0))
    np.testing.assert_array_equal(state["w"], np.full(3, 40.0))
    assert record["step"] == 40 and record["system"] == "toy"


def test_truncated_and_flipped_checkpoints_are_rejected(tmp_path):
    path = checkpoint.save(tmp_path, "toy", 5, {}, _bytes(5))
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        _restore(path, _state(0))
    flipped = bytearray(raw)
    flipped[-3] ^= 0xFF  # inside the payload: msgpack still parses, the hash does not match
    path.write_bytes(bytes(flipped))
    with pytest.raises(CheckpointError, match="sha256"):
        _restore(path, _state(0))


def test_latest_valid_skips_corrupt_newest(tmp_path):
    checkpoint.save(tmp_path, "toy", 1, {}, _bytes(1))
    newest = checkpoint.save(tmp_path, "toy", 2, {}, _bytes(2))
    newest.write_bytes(b"garbage")
    path, warnings = checkpoint.latest_valid(tmp_path)
    assert path.name == "ckpt_000000001.msgpack" and len(warnings) == 1


def test_restore_into_wrong_structure_is_a_clear_error(tmp_path):
    path = checkpoint.save(tmp_path, "toy", 1, {}, _bytes(1))
    with pytest.raises(CheckpointError, match="does not match this system's state"):
        _restore(path, {"other": jnp.zeros(2)})


def test_payload_must_be_bytes(tmp_path):
    with pytest.raises(TypeError, match="save_state"):
        checkpoint.save(tmp_path, "toy", 1, {}, _state(1))
    assert not list(tmp_path.iterdir())  # nothing written
