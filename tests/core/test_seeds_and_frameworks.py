"""Integer seeds, and the JAX and PyTorch helpers that turn them into keys and states into bytes."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch
from flax import struct

from athanor.core import jaxtools, seeds, torchtools
from athanor.core.errors import ConfigError


def test_derived_seeds_are_valid_deterministic_and_distinct():
    got = [seeds.derive(7, seeds.EVAL, step) for step in range(0, 5000, 100)]
    assert got == [seeds.derive(7, seeds.EVAL, step) for step in range(0, 5000, 100)]
    assert all(0 <= s <= seeds.MAX_SEED for s in got)
    assert len(set(got)) == len(got)
    assert seeds.derive(7, seeds.EVAL, 100) != seeds.derive(8, seeds.EVAL, 100)
    assert seeds.derive(7, 1) != seeds.derive(7, 2)


@pytest.mark.parametrize("bad", [-1, 2**31, 1.5, True, "3", None])
def test_seeds_outside_the_range_are_config_errors(bad):
    with pytest.raises(ConfigError, match=r"seed must be an integer in \[0, 2147483647\]"):
        seeds.check_seed(bad)


def test_key_of_a_seed_is_a_plain_uint32_key_distinct_per_seed():
    keys = [np.asarray(jaxtools.key(s)) for s in (0, 1, seeds.MAX_SEED)]
    assert all(k.dtype == np.uint32 and k.shape == (2,) for k in keys)
    assert len({k.tobytes() for k in keys}) == 3
    np.testing.assert_array_equal(keys[0], np.asarray(jax.random.fold_in(jax.random.PRNGKey(0), jaxtools.KEY_FOLD)))
    with pytest.raises(ConfigError, match="seed must be an integer"):
        jaxtools.key(2**31)


def test_raw_key_makes_serialisable_uint32():
    typed = jax.random.key(3)
    raw = jaxtools.raw_key(typed)
    assert raw.dtype == jnp.uint32 and np.array_equal(raw, jax.random.PRNGKey(3))
    assert jaxtools.raw_key(raw) is raw


class _State(struct.PyTreeNode):
    params: jax.Array
    opt_state: object
    key: jax.Array


def test_scan_updates_is_plain_sgd_on_a_quadratic_and_averages_the_info():
    """Loss (w - 3)^2 / 2 by SGD with rate r: w_k - 3 = (1 - r)^k (w_0 - 3), independent of the keys."""
    cfg = type("Cfg", (), {"inner_steps": 5})()
    tx = optax.sgd(0.1)
    w0 = jnp.asarray(0.0)
    state = _State(params=w0, opt_state=tx.init(w0), key=jaxtools.key(0))

    def batch_loss(w, key):
        return 0.5 * (w - 3.0) ** 2, {"w": w}

    new, info = jaxtools.scan_updates(state, cfg, tx, batch_loss)
    ws = 3.0 - 3.0 * 0.9 ** np.arange(5)  # the parameter before each of the five updates
    np.testing.assert_allclose(float(new.params), 3.0 - 3.0 * 0.9**5, rtol=1e-6)
    np.testing.assert_allclose(float(info["w"]), ws.mean(), rtol=1e-6)
    np.testing.assert_allclose(float(info["loss"]), np.mean(0.5 * (ws - 3.0) ** 2), rtol=1e-5)
    assert not np.array_equal(np.asarray(new.key), np.asarray(state.key))  # the key advanced


def test_flax_state_round_trip_and_shape_check():
    state = {"w": jnp.arange(6.0).reshape(2, 3), "k": jaxtools.key(1)}
    back = jaxtools.load_state(jax.tree.map(jnp.zeros_like, state), jaxtools.save_state(state))
    jax.tree.map(np.testing.assert_array_equal, back, state)
    with pytest.raises(ValueError, match=r"state\['w'\] has shape \(2, 3\) float32, the template \(3, 3\)"):
        jaxtools.load_state({"w": jnp.zeros((3, 3)), "k": state["k"]}, jaxtools.save_state(state))
    with pytest.raises(ValueError, match="float32, the template .* int32"):
        jaxtools.load_state({"w": jnp.zeros((2, 3), jnp.int32), "k": state["k"]}, jaxtools.save_state(state))
    shapes = jax.eval_shape(lambda: state)  # a template of shapes only, as load_run can use
    jax.tree.map(np.testing.assert_array_equal, jaxtools.load_state(shapes, jaxtools.save_state(state)), state)


def test_torch_tensors_and_optimizer_state_round_trip():
    gen = torchtools.generator(5)
    first = torch.rand(3, generator=gen)
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    model(first).sum().backward()
    opt.step()
    tensors = {**{f"model.{k}": v for k, v in model.state_dict().items()}, **torchtools.optimizer_tensors(opt),
               "rng": gen.get_state()}
    back = torchtools.tensors_from_bytes(torchtools.tensors_to_bytes(tensors))
    assert set(back) == set(tensors)
    for k, v in tensors.items():
        torch.testing.assert_close(back[k], v)
    model2 = torch.nn.Linear(3, 2)
    opt2 = torch.optim.Adam(model2.parameters(), lr=0.1)
    model2.load_state_dict({k[len("model."):]: v for k, v in back.items() if k.startswith("model.")})
    torchtools.load_optimizer_tensors(opt2, back)
    gen2 = torch.Generator().manual_seed(0)
    gen2.set_state(back["rng"])
    assert torch.equal(torch.rand(4, generator=gen2), torch.rand(4, generator=gen))  # the stream continues
    for m, o in ((model, opt), (model2, opt2)):  # one more identical step from identical states
        o.zero_grad()
        m(first).sum().backward()
        o.step()
    for a, b in zip(model.parameters(), model2.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert torchtools.runtime_info()["framework"] == "torch"
