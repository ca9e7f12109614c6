"""What JAX systems share: keys from integer seeds, the scanned update loop, and the state hooks of the contract.

The core itself never imports JAX (it runs PyTorch systems too); these helpers are the defaults the contract
(``systems/contract.py``) gives a system that does not define its own hooks, and the building blocks a JAX
system's ``step`` is made of.

- ``key(seed)``: the PRNG key of an integer seed (``fold_in(PRNGKey(seed), 0x1A17)``; the fold keeps it apart
  from a bare ``PRNGKey(seed)`` made elsewhere, and makes every run train exactly as runs did when the core
  still handed systems this key itself).
- ``raw_key``: a typed key as its uint32 data, so a state holding it serialises with Flax.
- ``scan_updates``: ``cfg.inner_steps`` optimiser updates in one ``lax.scan``.
- ``save_state`` / ``load_state``: Flax msgpack bytes of a pytree, restored into a template of the same
  structure (shapes and dtypes checked); never pickle.
- ``block``: wait for asynchronous dispatch (timing); ``runtime_info``: JAX's version, backend and devices.
"""

from __future__ import annotations

from typing import Any

__all__ = ["key", "raw_key", "scan_updates", "save_state", "load_state", "block", "runtime_info"]

KEY_FOLD = 0x1A17


def key(seed: int):
    """The uint32 PRNG key (2,) of an integer seed in [0, 2^31)."""
    import jax

    from athanor.core.seeds import check_seed

    return jax.random.fold_in(jax.random.PRNGKey(check_seed(seed)), KEY_FOLD)


def raw_key(k):
    """A uint32 key array, so states holding it serialise with flax.serialization."""
    import jax
    import jax.numpy as jnp

    if jnp.issubdtype(k.dtype, jax.dtypes.prng_key):
        return jax.random.key_data(k)
    return k


def scan_updates(state, cfg, tx, batch_loss) -> tuple[Any, dict]:
    """``cfg.inner_steps`` updates of the optax transformation ``tx`` in one ``lax.scan``.

    ``batch_loss(params, key) -> (loss, info)`` draws its own batch from ``key``. ``state`` must carry
    ``params``, ``opt_state`` and ``key`` (a ``flax.struct`` node); returns the advanced state and the mean over
    the updates of ``{"loss", **info}``.
    """
    import jax
    import jax.numpy as jnp
    import optax

    k, sub = jax.random.split(state.key)

    def update(carry, kk):
        params, opt_state = carry
        (loss, info), grads = jax.value_and_grad(batch_loss, has_aux=True)(params, kk)
        updates, opt_state = tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), {"loss": loss, **info}

    (params, opt_state), infos = jax.lax.scan(
        update, (state.params, state.opt_state), jax.random.split(sub, cfg.inner_steps)
    )
    return state.replace(params=params, opt_state=opt_state, key=k), jax.tree_util.tree_map(jnp.mean, infos)


def save_state(state) -> bytes:
    """Flax msgpack bytes of a pytree state."""
    from flax import serialization

    return serialization.to_bytes(state)


def load_state(template, payload: bytes):
    """The state in ``payload`` restored into the structure of ``template`` (from ``init``, or its
    ``jax.eval_shape``); a ValueError names the first leaf whose shape or dtype differs from the template's."""
    import jax
    import numpy as np
    from flax import serialization

    state = serialization.from_bytes(template, payload)
    for (path, want), got in zip(jax.tree_util.tree_leaves_with_path(template), jax.tree.leaves(state), strict=True):
        if hasattr(want, "shape") and (np.shape(got) != tuple(want.shape) or np.asarray(got).dtype != want.dtype):
            name = jax.tree_util.keystr(path)
            raise ValueError(f"state{name} has shape {np.shape(got)} {np.asarray(got).dtype}, the template "
                             f"{tuple(want.shape)} {np.dtype(want.dtype)}")
    return state


def block(tree) -> None:
    """Wait until every array in ``tree`` is computed (JAX dispatches asynchronously)."""
    import jax

    jax.block_until_ready(tree)


def runtime_info() -> dict:
    import jax

    return {"framework": "jax", "version": jax.__version__, "backend": jax.default_backend(),
            "devices": [str(d) for d in jax.devices()]}
