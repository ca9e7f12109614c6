"""Integer seeds: the one kind of randomness the core hands to a system, whatever its framework.

A run has one seed, a plain integer in [0, 2^31) (``--seed``). ``init`` and ``load_data`` receive it as it is;
every evaluation receives ``derive(seed, EVAL, step)``, so evaluating at step s draws the same numbers in a
resumed run as in an uninterrupted one and never touches the training state's own randomness. A system turns an
integer into its framework's generator itself (``core.jaxtools.key``, ``core.torchtools.generator``).

``derive`` hashes (seed, *path) with NumPy's ``SeedSequence``, whose output is fixed by its documentation, and
keeps 31 bits, so a derived seed is again a valid seed (JAX's ``PRNGKey`` truncates larger integers).
"""

from __future__ import annotations

import numpy as np

from athanor.core.errors import ConfigError

__all__ = ["MAX_SEED", "EVAL", "check_seed", "derive"]

MAX_SEED = 2**31 - 1
EVAL = 0x0E7A1  # the path element of evaluation seeds


def check_seed(seed: object) -> int:
    """``seed`` as an int, or a ConfigError naming the valid range."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= int(seed) <= MAX_SEED:
        raise ConfigError(f"seed must be an integer in [0, {MAX_SEED}], got {seed!r}")
    return int(seed)


def derive(seed: int, *path: int) -> int:
    """A seed in [0, 2^31) determined by ``seed`` and the non-negative integers ``path``; distinct paths give
    statistically independent seeds."""
    state = np.random.SeedSequence(entropy=check_seed(seed), spawn_key=tuple(int(p) for p in path))
    return int(state.generate_state(1, np.uint32)[0] & MAX_SEED)
