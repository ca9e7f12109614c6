"""The Box2D model of the original Oceanworld: hand-checked motions of tiny creatures, the genome layout, errors."""

import math
import sys

import numpy as np
import pytest

pytest.importorskip("Box2D")

from athanor.core.errors import ConfigError  # noqa: E402
from athanor.envs import oceanworld as W  # noqa: E402
from athanor.envs import oceanworld_box2d as B  # noqa: E402

G = W.G
CFG = B.Box2DConfig()
DT = CFG.dt


def length(frames, a, b):
    return np.linalg.norm(frames[:, b[0], b[1]] - frames[:, a[0], a[1]], axis=-1)


def test_a_plain_bond_never_moves():
    """No muscle, no drag, no gravity, nothing touching: every body stays exactly where it was put."""
    r = B.evaluate(W.make_genome([(6, 6), (6, 7)], [(6, 6, 0, False, False)]), record_every=50)
    assert r.valid and r.fitness == 0.0
    assert (r.displacement == 0).all() and (r.com_displacement == 0).all()
    assert (r.frames == r.frames[0]).all()


def test_a_muscle_opens_at_its_force_limit_and_keeps_the_centre_of_mass():
    """One muscle between two nodes. The motor (speed 100, force 500) is force-limited: each side is a square and
    a node, m = 1 + pi / 4, so the ends separate with a = 500 (2 / m) ~ 560 / s^2, and after n open steps
    (symplectic Euler) the bond is 5 + a dt^2 n (n + 1) / 2 long; it reaches the 5.1 limit (length 10.1) after
    ~8 steps, below the motor speed. Closing drives it to the lower limit, 5 - 0.1. No drag and no gravity: the
    centre of mass never moves, so node (6, 6), the left end, sits at -(length - 5) / 2."""
    r = B.evaluate(W.make_genome([(6, 6), (6, 7)], [(6, 6, 0, True, False)]), record_every=1)
    ln = length(r.frames, (6, 6), (6, 7))
    assert np.all(ln[:31] == 5.0)  # the heart rests for 30 steps
    a = CFG.muscle_force * 2.0 / (1.0 + math.pi / 4)
    n = np.arange(1, 8)
    np.testing.assert_allclose(ln[31:38] - 5.0, a * DT * DT * n * (n + 1) / 2, atol=1e-4)
    assert np.diff(ln).max() / DT < CFG.muscle_speed
    assert ln[60] == pytest.approx(5.0 + CFG.muscle_open, abs=0.01)  # open: the upper limit
    assert ln[90] == pytest.approx(5.0 - CFG.slack, abs=0.01)  # closed: the motor holds the lower limit
    assert ln[500] == pytest.approx(5.0 - CFG.slack, abs=0.01)  # step 500 falls in a closing half
    assert np.abs(r.com_displacement).max() < 1e-3
    assert np.all(r.frames[:, :, :, 1] == r.frames[0, :, :, 1])  # motion along the bond only
    middle = 0.5 * (r.frames[:, 6, 6, 0] + r.frames[:, 6, 7, 0])
    assert np.abs(middle - middle[0]).max() < 0.05  # the hinges give a little; the bodies' centre does not
    assert r.fitness == pytest.approx((5.0 - ln[500]) / 2, abs=0.05)


@pytest.mark.parametrize("at_first", [True, False])
def test_drag_on_a_square_is_100_over_the_square_distance_times_the_normal_speed(at_first):
    """Two free squares 3 apart on the x axis, both moving at unit speed along their normal (y): one step of
    F = -(100 / 3) v n changes v by -(100 / 3) dt. The original applies the second square's force at the first
    square's centre: torque (p_A - p_B) x F = (-3)(-100 / 3) = 100 on a unit square (inertia 1 / 6) spins it up
    by 100 dt * 6 = 10 rad/s; applied at its own centre there is no torque."""
    b2 = B.require_box2d()
    cfg = B.Box2DConfig(drag_at_first_square=at_first)
    world = b2.b2World(gravity=(0.0, 0.0), doSleep=False)
    box = b2.b2FixtureDef(shape=b2.b2PolygonShape(box=(0.5, 0.5)), density=1.0)
    sa = world.CreateDynamicBody(position=(1.0, 0.0), fixtures=box, linearVelocity=(0.0, 1.0))
    sb = world.CreateDynamicBody(position=(4.0, 0.0), fixtures=box, linearVelocity=(0.0, 1.0))
    B._apply_drag([(sa, sb)], cfg)
    world.Step(DT, 8, 3)
    for sq in (sa, sb):
        assert sq.linearVelocity[1] == pytest.approx(1.0 - 100.0 / 3.0 * DT, rel=1e-5)
        assert sq.linearVelocity[0] == pytest.approx(0.0, abs=1e-6)
    assert sa.angularVelocity == pytest.approx(0.0, abs=1e-6)
    assert sb.angularVelocity == pytest.approx(10.0 if at_first else 0.0, abs=1e-4)


@pytest.mark.parametrize("drag_side", ["left", "right"])
def test_a_loop_swims_away_from_its_drag_bar(drag_side):
    """A 2 x 2 loop whose two horizontal bonds are muscles: opening pushes the left bar to -x and the right one to
    +x. Drag on the left bar resists only while opening, so each beat adds momentum +x that closing (no drag)
    cannot take back: the creature swims +x; drag on the right bar mirrors it to -x."""
    left = drag_side == "left"
    g = W.make_genome([(6, 6), (6, 7), (7, 6), (7, 7)],
                      [(6, 6, 0, True, False), (7, 6, 0, True, False), (6, 6, 1, False, left),
                       (6, 7, 1, False, not left)])
    r = B.evaluate(g)
    sign = 1.0 if left else -1.0
    assert sign * r.displacement[0] > 10.0 and sign * r.com_displacement[0] > 10.0
    assert abs(r.displacement[0]) > abs(r.displacement[1])
    # before the heart first opens only contacts act: squares of two bonds at a corner touch at rest, within
    # Box2D's polygon skin (0.01 per shape), and the contact solver nudges them apart by ~1e-4
    assert np.abs(B.evaluate(g, B.Box2DConfig(steps=CFG.beat_period)).displacement).max() < 1e-3


def test_an_l_shape_swims_against_the_muscle_push_with_drag_at_each_square():
    """A muscle to the right of node (6, 6) pushes it to -x, dragging the drag bar hanging below it; with each
    square's drag applied at its own centre the reaction pushes the creature +x (and its mirror -x)."""
    cfg = B.Box2DConfig(drag_at_first_square=False)
    right = W.make_genome([(6, 6), (6, 7), (7, 6)], [(6, 6, 0, True, False), (6, 6, 1, False, True)])
    left = W.make_genome([(6, 5), (6, 6), (7, 6)], [(6, 5, 0, True, False), (6, 6, 1, False, True)])
    assert B.evaluate(right, cfg).com_displacement[0] > 5.0
    assert B.evaluate(left, cfg).com_displacement[0] < -5.0


def test_genome_maps_rows_to_y_and_columns_to_x():
    """Our node (r, c) is placed at ((c - 6) 5, (r - 6) 5) (the original's node x = c, y = r); a chain to the right
    of node (6, 6) lies along +x, one downwards along +y, and a muscle to a node's right pushes that node to -x."""
    right = W.make_genome([(6, 6), (6, 7), (6, 8)], [(6, 6, 0, True, False), (6, 7, 0, False, False)])
    down = W.make_genome([(6, 6), (7, 6), (8, 6)], [(6, 6, 1, True, False), (7, 6, 1, False, False)])
    for g, axis in ((right, 0), (down, 1)):
        r = B.evaluate(g, B.Box2DConfig(steps=60), record_every=30)
        rows, cols = np.meshgrid(np.arange(G), np.arange(G), indexing="ij")
        np.testing.assert_array_equal(r.frames[0], np.stack([(cols - 6) * 5.0, (rows - 6) * 5.0], -1))
        moved = r.frames[-1] - r.frames[0]  # step 60: the muscle is open
        m, M = 1 + math.pi / 4, 3 + math.pi / 2
        assert moved[6, 6, axis] == pytest.approx(-CFG.muscle_open * M / (m + M), abs=0.1)
        assert np.all(moved[..., 1 - axis] == 0.0)  # nothing leaves the chain's line
        alive = np.asarray(W.phenotype(g)[0])
        assert np.all(moved[~alive] == 0.0)


def test_creature_is_the_phenotype():
    """Only the component of node (6, 6) is built: a detached node and a bond to a missing node are left out."""
    g = W.make_genome([(6, 6), (6, 7), (9, 9)], [(6, 6, 0, True, True), (6, 7, 1, True, True), (9, 9, 0, False, False)])
    cr = B.creature(g)
    assert cr.valid and cr.alive.sum() == 2 and not cr.alive[9, 9]
    assert cr.bond_on.sum() == 1 and cr.bond_on[6, 6, 0]


def test_a_genome_without_the_centre_node_is_invalid():
    r = B.evaluate(W.make_genome([(6, 7), (6, 8)], [(6, 7, 0, True, True)]), record_every=100)
    assert not r.valid and r.fitness == W.INVALID_FITNESS
    assert r.frames.shape == (6, G, G, 2)


def test_missing_box2d_is_a_one_line_config_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "Box2D", None)  # makes `import Box2D` raise ImportError
    with pytest.raises(ConfigError, match=r"pip install -e '\.\[validate\]'") as err:
        B.evaluate(W.make_genome([(6, 6)]))
    assert "\n" not in str(err.value)


def test_config_is_checked():
    with pytest.raises(ConfigError, match="steps"):
        B.Box2DConfig(steps=0)


def test_an_offset_only_moves_the_world_not_the_creature():
    """Shifting the whole creature changes float32 rounding only: same layout in the frames, same motion."""
    g = W.make_genome([(6, 6), (6, 7)], [(6, 6, 0, True, False)])
    base = B.evaluate(g, record_every=100)
    shifted = B.evaluate(g, B.Box2DConfig(offset=(0.37, -1.2)), record_every=100)
    np.testing.assert_allclose(shifted.frames, base.frames, atol=1e-3)
    assert shifted.fitness == pytest.approx(base.fitness, abs=1e-3)
