"""Creature frames: the camera follows the centre node, bonds take their type's colour, nothing else does."""

import jax
import numpy as np

from athanor.envs import oceanworld as W
from athanor.viz.creatures import BOND_COLOURS, CENTRE_NODE, creature_frames


def test_frames_follow_the_centre_node_and_colour_every_bond_type_present():
    g = W.start_genome(jax.random.PRNGKey(15))
    cfg = W.WorldConfig(steps=60)
    _, traj = W.simulate(g, cfg, record_every=15)
    alive, bond_on, _ = (np.asarray(a) for a in W.phenotype(g))
    frames = creature_frames(np.asarray(traj), alive, bond_on, np.asarray(g.bonds), centre=W.CENTRE,
                             spacing=cfg.spacing, size=96)
    assert frames.shape == (5, 96, 96, 3) and frames.dtype == np.uint8
    for f in frames:  # the camera follows node (6, 6): its dark-red disk covers the middle pixel
        np.testing.assert_array_equal(f[48, 48], CENTRE_NODE)
    bits = np.asarray(g.bonds)
    colours = {tuple(c) for c in frames[0].reshape(-1, 3).tolist()}
    for (m, f), rgb in BOND_COLOURS.items():
        present = (bits[..., 0] & (bits[..., 1] == m) & (bits[..., 2] == f)).any()
        assert (tuple(rgb) in colours) == bool(present)


def test_an_empty_creature_draws_water_and_grid_lines_only():
    g = W.G
    traj = np.zeros((2, g, g, 2), np.float32)
    none = np.zeros((g, g), bool)
    frames = creature_frames(traj, none, np.zeros((g, g, 2), bool), np.zeros((g, g, 2, 3), bool), centre=(6, 6),
                             spacing=5.0, size=64)
    assert {tuple(c) for c in frames.reshape(-1, 3).tolist()} <= {(228, 240, 250), (200, 218, 235)}
