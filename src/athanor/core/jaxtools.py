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

Data parallelism (one job over several devices). A system opts in with a ``devices`` config field; nothing here
knows a system, so any JAX step with a batch axis (StampCA's batch of NCA worlds too) opts in the same way:

- ``mesh_for(devices, **sizes)``: None for ``devices = 1`` (the single-device path, untouched, so results stay
  bit-identical to a system without the option), else ``data_mesh(devices)`` after checking that every named
  size (config key -> value, e.g. ``batch_size=64``) is a multiple of ``devices``.
- ``data_mesh(devices)``: a 1-D ``jax.sharding.Mesh`` with the axis ``"data"`` over the first ``devices``
  devices.
- ``shard_batch(tree, mesh)``: every leaf's leading axis split along ``"data"``; ``replicate(tree, mesh)``:
  every leaf whole on every device. Both are no-ops for ``mesh=None``, ``jax.device_put`` on concrete arrays
  and ``lax.with_sharding_constraint`` inside a jitted function (where a system draws its batches).
- ``scan_updates(..., mesh=mesh)``: the scanned update with the parameters and optimiser state replicated.
- ``sharded_map(fn, mesh)``: ``fn`` applied to each device's slice of the leading axis (``shard_map``), for
  per-example work whose implementation cannot be partitioned by XLA (Oceanworld's size-sorted, ``lax.switch``ed
  population evaluation: each device sorts and tiers its own slice).

The choice: training steps use ``jit`` with sharded values, not ``shard_map``. Parameters are replicated and
the batch drawn inside the step is constrained to be split along ``"data"``; XLA's SPMD partitioner then runs
the forward and backward pass on each device's slice and inserts the all-reduce of the gradients (and any
all-gather a batch statistic needs) itself. The loss is written exactly as on one device, so a statistic that
couples the examples of a batch (GAN minibatch discrimination, a batch KL) stays a statistic of the whole batch:
the semantics of a jitted function never depend on how its values are placed, only the order of floating-point
reductions does. ``shard_map`` is used where the per-device program must differ from the global one on purpose
(``sharded_map``). On CPU, ``XLA_FLAGS=--xla_force_host_platform_device_count=N`` (set before JAX starts) gives
N host devices that share the same cores: good for checking correctness, not for speed.
"""

from __future__ import annotations

from typing import Any

__all__ = ["key", "raw_key", "scan_updates", "save_state", "load_state", "block", "runtime_info", "DATA_AXIS",
           "data_mesh", "mesh_for", "shard_batch", "replicate", "sharded_map"]

KEY_FOLD = 0x1A17
DATA_AXIS = "data"  # the mesh axis a batch (or a population) is split along


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


def scan_updates(state, cfg, tx, batch_loss, mesh=None, ema: float | None = None,
                 target: float | None = None) -> tuple[Any, dict]:
    """``cfg.inner_steps`` updates of the optax transformation ``tx`` in one ``lax.scan``.

    ``batch_loss(params, key) -> (loss, info)`` draws its own batch from ``key``. ``state`` must carry
    ``params``, ``opt_state`` and ``key`` (a ``flax.struct`` node); returns the advanced state and the mean over
    the updates of ``{"loss", **info}``. With a ``mesh`` (``mesh_for``) the parameters and optimiser state are
    kept replicated on it; ``batch_loss`` should then ``shard_batch`` the batch it draws. With ``ema`` (a decay
    in [0, 1]) ``state`` also carries ``ema``, an exponential moving average of the parameters moved after every
    update: ema <- decay * ema + (1 - decay) * params. With ``target`` (a Polyak rate tau in [0, 1]) ``state``
    also carries ``target``, a copy of the parameters that the loss reads, ``batch_loss(params, target, key)``, and
    that follows them after every update: target <- tau * params + (1 - tau) * target (target networks of TD).
    """
    import jax
    import jax.numpy as jnp
    import optax

    k, sub = jax.random.split(state.key)

    def update(carry, kk):
        params, opt_state, avg, tgt = carry
        args = (params, kk) if target is None else (params, tgt, kk)
        (loss, info), grads = jax.value_and_grad(batch_loss, has_aux=True)(*args)
        updates, opt_state = tx.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        avg = None if ema is None else optax.incremental_update(params, avg, 1.0 - ema)
        tgt = None if target is None else optax.incremental_update(params, tgt, target)
        return replicate((params, opt_state, avg, tgt), mesh), {"loss": loss, **info}

    start = (state.params, state.opt_state, None if ema is None else state.ema,
             None if target is None else state.target)
    (params, opt_state, avg, tgt), infos = jax.lax.scan(
        update, replicate(start, mesh), jax.random.split(sub, cfg.inner_steps)
    )
    new = state.replace(params=params, opt_state=opt_state, key=k)
    if ema is not None:
        new = new.replace(ema=avg)
    if target is not None:
        new = new.replace(target=tgt)
    return new, jax.tree_util.tree_map(jnp.mean, infos)


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


# ------------------------------------------------------------------------------------------ data parallelism


def _host_fix(devices: int) -> str:
    return (f"lower devices, or on CPU start Python with XLA_FLAGS=--xla_force_host_platform_device_count={devices} "
            f"(set before JAX initialises)")


def data_mesh(devices: int):
    """A 1-D mesh with the axis ``"data"`` over the first ``devices`` of ``jax.devices()``.

    A ConfigError names the fix when fewer devices exist.
    """
    import jax
    import numpy as np
    from jax.sharding import AxisType, Mesh

    from athanor.core.errors import ConfigError

    if not isinstance(devices, int) or isinstance(devices, bool) or devices < 1:
        raise ConfigError(f"config key 'devices' must be a positive integer, got {devices!r}")
    have = jax.devices()
    if devices > len(have):
        raise ConfigError(f"config key 'devices' = {devices} but JAX sees {len(have)} {jax.default_backend()} "
                          f"device(s); {_host_fix(devices)}")
    return Mesh(np.asarray(have[:devices]), (DATA_AXIS,), axis_types=(AxisType.Auto,))


def mesh_for(devices: int, **sizes: int):
    """The data mesh of a system's ``devices`` setting: None for 1 (the single-device path), else
    ``data_mesh(devices)``.

    ``sizes`` maps config keys to the sizes that are split across the devices (``batch_size=64``); a ConfigError
    names the key and a divisible value when one is not a multiple of ``devices``.
    """
    from athanor.core.errors import ConfigError

    if devices == 1:
        return None
    mesh = data_mesh(devices)
    for name, size in sizes.items():
        if size % devices:
            up = -(-size // devices) * devices
            raise ConfigError(f"config key '{name}' = {size} is not divisible by devices = {devices}: each device "
                              f"takes an equal slice; set a multiple of {devices}, e.g. --set {name}={up}, or "
                              f"change devices")
    return mesh


def _check_leading(tree, n: int) -> None:
    import jax

    from athanor.core.errors import ConfigError

    for x in jax.tree.leaves(tree):
        if not getattr(x, "ndim", 0) or x.shape[0] % n:
            raise ConfigError(f"cannot split an array of shape {tuple(getattr(x, 'shape', ()))} along its leading "
                              f"axis over {n} devices: use a batch (or population) size that is a multiple of {n}, "
                              f"or change devices")


def _place(tree, mesh, spec, check_leading: bool):
    import jax
    from jax.sharding import NamedSharding

    if mesh is None:
        return tree
    if check_leading:
        _check_leading(tree, mesh.devices.size)
    sharding = NamedSharding(mesh, spec)

    def one(x):
        if isinstance(x, jax.core.Tracer):
            return jax.lax.with_sharding_constraint(x, sharding)
        return jax.device_put(x, sharding)

    return jax.tree.map(one, tree)


def shard_batch(tree, mesh):
    """Every leaf of ``tree`` split along its leading axis over the mesh's ``"data"`` axis (``tree`` itself when
    ``mesh`` is None). Inside ``jit`` a sharding constraint, outside a ``device_put``; a ConfigError when a leading
    axis is not a multiple of the device count."""
    from jax.sharding import PartitionSpec

    return _place(tree, mesh, PartitionSpec(DATA_AXIS), True)


def replicate(tree, mesh):
    """Every leaf of ``tree`` whole on every device of ``mesh`` (``tree`` itself when ``mesh`` is None)."""
    from jax.sharding import PartitionSpec

    return _place(tree, mesh, PartitionSpec(), False)


def sharded_map(fn, mesh):
    """``fn`` run on each device's slice of the leading axis of its arguments, outputs concatenated in order.

    ``fn`` must treat the examples of its batch independently (its result for one example may not depend on the
    others); each device then runs ``fn``'s own program on its slice (``jax.shard_map``), so a function that
    sorts or branches on its batch does so per slice. Returns ``fn`` itself when ``mesh`` is None.
    """
    import jax
    from jax.sharding import PartitionSpec

    if mesh is None:
        return fn
    mapped = jax.shard_map(fn, mesh=mesh, in_specs=PartitionSpec(DATA_AXIS), out_specs=PartitionSpec(DATA_AXIS),
                           check_vma=False)

    def run(*args):
        _check_leading(args, mesh.devices.size)
        return mapped(*args)

    return run
