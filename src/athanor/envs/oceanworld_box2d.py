"""A Box2D model of the original Oceanworld release's creature physics, to validate ``envs.oceanworld`` against.

``envs.oceanworld`` replaces the original's rigid bodies and joints with position-based dynamics; this module
rebuilds the original's mechanism in Box2D (pybox2d 2.3.10) from its rules and constants, so that the fitness of
the same genome can be compared in both worlds (``benchmarks/validate_oceanworld.py``). Nothing here draws:
``evaluate(..., record_every=k)`` returns node positions in ``oceanworld.simulate``'s layout, which
``athanor.viz.creatures.creature_frames`` draws.

Genome layout. The original indexes its grid as nodes[x, y] and bonds[x, y, k, :] with x the first index, node
(x, y) at world (5 x, 5 y), bond k = 0 to (x + 1, y) and k = 1 to (x, y + 1). Ours is nodes[row, col] with bond 0
to (row, col + 1) (+x) and bond 1 to (row + 1, col) (+y), so ours is the original with the two grid axes swapped:
    original nodes[x, y] = nodes[r = y, c = x],   original bonds[x, y, k] = bonds[r = y, c = x, k]   (same k),
and our node (r, c) is placed where the original places its node (x = c, y = r): at world (5 c, 5 r). Node (6, 6)
is node (6, 6) in both layouts and starts at (30, 30); positions are reported shifted by (-30, -30), so node (r, c)
starts at ((c - 6) 5, (r - 6) 5) as in ``oceanworld.simulate``. The creature is ``oceanworld.phenotype``'s
connected component of node (6, 6), the same set of nodes and bonds the original builds.

Bodies (the original release's settings). Every node is a circle of radius 0.5 (density 1, so mass pi / 4, friction
0.2), free to rotate. Every bond from node A to node B, delta = B - A (length 5 at rest), is two 1 x 1 squares
(half-width 0.5, density 1: mass 1, friction 0.2) centred at A + 0.2 delta and B - 0.2 delta (3 units apart at
rest), turned by atan2(delta) + 90 deg. The squares are joined by a prismatic joint along delta (anchor at the
bond's middle, translation 0 at rest, limits [-0.1, 0.1], a motor of speed 0 and maximum force 500: a stiff bar
that can give 0.1 either way against friction), and each square is hinged to its node by a revolute joint at the
node's centre with limits +-0.33 pi (+-59.4 deg) and a motor of speed 0 and maximum torque 500 (joint friction).
The node itself rotates freely, so two bonds at one node can turn up to +-2 x 59.4 deg against each other. All
shapes collide with every shape of another body, except bodies joined by a joint (Box2D's default): the squares
of two bonds at one node touch corner to corner at rest, so their contact resists closing that angle below 90 deg
(softly: in 5x5 start creatures about a third of such angles spend time below 85 deg, a few below 40).

World: no gravity (the original creates its world with gravity (0, -10) and its creature builder sets it to zero),
sleeping allowed, warm starting and continuous physics on, no sub-stepping (Box2D's defaults), time step 1/60 s,
8 velocity and 3 position iterations, 500 steps. Bodies, then bonds (squares A and B, prismatic, hinge at A, hinge
at B), are created in the original's order, its x (our column) outer and y (our row) inner, bond k = 0 before
k = 1, since Box2D's solver order follows creation order.

One step (the original's order): ``world.Step``, clear forces, then the heartbeat, then drag for the next step.
  heartbeat   after every 30th step the heart toggles, starting closed: steps 1-30 rest, 31-60 open, 61-90 close,
              ... Opening sets every muscle's prismatic limits to [-0.1, 5.1] and its motor speed to +100;
              closing sets the limits back to [-0.1, 0.1] and the speed to -100 (force still at most 500). A muscle
              snaps open until the squares are 3 + 5.1 apart (nodes ~10.1: roughly double), then is pulled back by
              the limit and the motor and held at the lower limit (nodes ~4.9 apart). The motor is force-limited:
              each end carries at least a square and a node (m = 1 + pi / 4), so a lone muscle opens with relative
              acceleration 500 (2 / m) ~ 560 / s^2 and reaches its limit after ~8 steps at ~65 units/s, never at
              the motor speed (tested). Plain bonds keep [-0.1, 0.1] and speed 0.
  drag        while the heart is open, each square of a drag bond gets F = -(100 / S) (v . n) n, S the distance of
              the bond's two squares (3 at rest: ~33 per unit of normal speed, falling to ~12 fully open), v the
              square's velocity, n the unit normal of the line through the two squares. It is computed from the
              state after a step and integrated in the next one, so steps 31-60 (91-120, ...) feel drag.
At rest a single bond is an exact fixed point, but the squares of two bonds meeting at a node at right angles
touch corner to corner, inside Box2D's polygon skin (0.01 per shape), and the contact solver nudges them apart
(~1e-4 over the first 30 steps, tested).
Fitness: dx - |dy| of node (6, 6) after 500 steps (the original logs x_final - |dy| with x measured from the world
origin, i.e. dx - |dy| + 30; compare dx - |dy|).

Deliberate choices and deviations:
  - the original applies the drag force of a bond's second square at the FIRST square's centre, which adds a
    torque; kept (``Box2DConfig.drag_at_first_square``; False applies each square's force at its own centre);
  - a genome without node (6, 6) gives ``oceanworld.INVALID_FITNESS`` and ``valid`` False (the original has no
    body there and cannot evaluate it);
  - ``Box2DConfig.offset`` (not in the original, default 0) shifts the whole creature; the physics is translation
    invariant, so a small offset changes nothing but float32 rounding, and comparing fitness with and without one
    measures how far rounding alone moves a creature's fitness (chaos), a ceiling for any cross-engine agreement;
  - the drag arithmetic is in Python floats (float64, as the original's numpy), Box2D in float32.
Checked once by hand (not repeatable from this repository): with pybox2d 2.3.10 and the default config, the
original release's own code and this model gave the same fitness bit for bit on 22 genomes (start, mutated and
MAP-Elites archive genomes mapped as above), which also confirms the layout mapping.
"""

from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple

import numpy as np

from athanor.core.errors import ConfigError
from athanor.envs.oceanworld import CENTRE, INVALID_FITNESS, G, Genome, phenotype

__all__ = ["Box2DConfig", "Creature", "Box2DResult", "require_box2d", "creature", "rollout", "evaluate"]

INSTALL_HINT = "pip install -e '.[validate]'"


@dataclasses.dataclass(frozen=True)
class Box2DConfig:
    """The original release's settings (module docstring); hashable and picklable for worker processes."""

    steps: int = 500  # fitness horizon
    dt: float = 1.0 / 60.0  # Box2D time step
    velocity_iterations: int = 8
    position_iterations: int = 3
    beat_period: int = 30  # steps between heartbeat toggles; the heart starts closed
    spacing: float = 5.0  # rest distance of grid neighbours
    node_radius: float = 0.5  # circle of each node
    square_half: float = 0.5  # half-width of a bond's squares
    square_inset: float = 0.2  # squares at 0.2 and 0.8 of a bond: 1 unit from each node, 3 apart
    density: float = 1.0  # every shape
    friction: float = 0.2  # every shape
    slack: float = 0.1  # prismatic limits [-slack, slack] of plain bonds and closed muscles
    muscle_open: float = 5.1  # upper prismatic limit of an open muscle
    muscle_speed: float = 100.0  # motor speed of a muscle: +speed while opening, -speed while closing
    muscle_force: float = 500.0  # maximum motor force of every prismatic joint (plain bonds: friction)
    hinge_limit: float = 0.33 * math.pi  # revolute limits +-hinge_limit between a square and its node
    hinge_torque: float = 500.0  # maximum torque of the zero-speed hinge motors (joint friction)
    drag: float = 100.0  # F = -(drag / S) (v . n) n per square of a drag bond while the heart opens
    drag_at_first_square: bool = True  # the original applies both squares' drag at the first square's centre
    sleep: bool = True  # the original allows bodies to sleep
    offset: tuple[float, float] = (0.0, 0.0)  # shift of the whole creature: changes float32 rounding alone

    def __post_init__(self):
        checks = {"steps": self.steps >= 1, "dt": self.dt > 0, "velocity_iterations": self.velocity_iterations >= 1,
                  "position_iterations": self.position_iterations >= 1, "beat_period": self.beat_period >= 1,
                  "spacing": self.spacing > 0, "node_radius": self.node_radius > 0, "square_half": self.square_half > 0,
                  "square_inset": 0 < self.square_inset < 0.5, "density": self.density > 0,
                  "friction": self.friction >= 0, "slack": self.slack >= 0, "muscle_open": self.muscle_open >= 0,
                  "muscle_speed": self.muscle_speed >= 0, "muscle_force": self.muscle_force >= 0,
                  "hinge_limit": 0 < self.hinge_limit <= math.pi, "hinge_torque": self.hinge_torque >= 0,
                  "drag": self.drag >= 0, "offset": len(self.offset) == 2 and all(map(math.isfinite, self.offset))}
        for name, ok in checks.items():
            if not ok:
                raise ConfigError(f"Box2DConfig.{name}={getattr(self, name)!r} is out of range; see the field's "
                                  "comment in athanor/envs/oceanworld_box2d.py")


class Creature(NamedTuple):
    """A phenotype as plain arrays (picklable, for worker processes); our genome layout."""

    alive: np.ndarray  # bool [16, 16]: the nodes of the creature
    bond_on: np.ndarray  # bool [16, 16, 2]: its bonds to the right (+x) and down (+y) of each node
    bits: np.ndarray  # bool [16, 16, 2, 3]: [exists, muscle, drag] of every bond
    valid: bool  # node (6, 6) exists


class Box2DResult(NamedTuple):
    displacement: np.ndarray  # f64 [2]: (dx, dy) of node (6, 6) after cfg.steps steps
    fitness: float  # dx - |dy|; INVALID_FITNESS for an invalid genome
    valid: bool
    com_displacement: np.ndarray  # f64 [2]: displacement of the centre of mass of every body of the creature
    frames: np.ndarray | None  # f32 [T, 16, 16, 2] node positions, oceanworld.simulate's layout, or None


def require_box2d():
    """The Box2D module, or a ConfigError naming the fix."""
    try:
        import Box2D
    except ImportError:
        raise ConfigError(f"the Box2D model of Oceanworld needs Box2D; install it with {INSTALL_HINT}") from None
    return Box2D


def creature(genome: Genome) -> Creature:
    """One genome (no batch axis) -> its phenotype as numpy arrays."""
    alive, bond_on, valid = phenotype(genome)
    return Creature(np.asarray(alive, bool), np.asarray(bond_on, bool), np.asarray(genome.bonds, bool),
                    bool(valid))


class _Built(NamedTuple):
    nodes: dict  # (r, c) -> node body
    muscles: list  # prismatic joints of muscle bonds
    drag_pairs: list  # (square A, square B) of drag bonds
    bodies: list  # every body, for the centre of mass


def _build(b2, world, cr: Creature, cfg: Box2DConfig) -> _Built:
    """Create the creature's bodies and joints in the original's order (grid x = our column outer, y = row inner)."""
    L, (ox, oy) = cfg.spacing, cfg.offset
    circle = b2.b2FixtureDef(shape=b2.b2CircleShape(radius=cfg.node_radius), density=cfg.density,
                             friction=cfg.friction)
    square = b2.b2FixtureDef(shape=b2.b2PolygonShape(box=(cfg.square_half, cfg.square_half)), density=cfg.density,
                             friction=cfg.friction)
    nodes, bodies, muscles, drag_pairs = {}, [], [], []
    for c in range(G):
        for r in range(G):
            if cr.alive[r, c]:
                nodes[r, c] = world.CreateDynamicBody(position=(c * L + ox, r * L + oy), fixtures=circle)
                bodies.append(nodes[r, c])
    for c in range(G):
        for r in range(G):
            for k, (dr, dc) in enumerate(((0, 1), (1, 0))):
                if not cr.bond_on[r, c, k]:
                    continue
                a, b = nodes[r, c], nodes[r + dr, c + dc]
                pa, pb = a.position, b.position
                delta = (pb[0] - pa[0], pb[1] - pa[1])
                angle = math.atan2(delta[1], delta[0]) + 0.5 * math.pi
                f = cfg.square_inset
                sa = world.CreateDynamicBody(position=(pa[0] + f * delta[0], pa[1] + f * delta[1]), angle=angle,
                                             fixtures=square)
                sb = world.CreateDynamicBody(position=(pb[0] - f * delta[0], pb[1] - f * delta[1]), angle=angle,
                                             fixtures=square)
                bodies += [sa, sb]
                bar = world.CreateJoint(b2.b2PrismaticJointDef(
                    bodyA=sa, bodyB=sb, anchor=(0.5 * (pa[0] + pb[0]), 0.5 * (pa[1] + pb[1])), axis=delta,
                    lowerTranslation=-cfg.slack, upperTranslation=cfg.slack, enableLimit=True, enableMotor=True,
                    motorSpeed=0.0, maxMotorForce=cfg.muscle_force))
                for body_a, body_b, at in ((a, sa, pa), (sb, b, pb)):
                    world.CreateJoint(b2.b2RevoluteJointDef(
                        bodyA=body_a, bodyB=body_b, anchor=at, lowerAngle=-cfg.hinge_limit,
                        upperAngle=cfg.hinge_limit, enableLimit=True, enableMotor=True, motorSpeed=0.0,
                        maxMotorTorque=cfg.hinge_torque))
                if cr.bits[r, c, k, 1]:
                    muscles.append(bar)
                if cr.bits[r, c, k, 2]:
                    drag_pairs.append((sa, sb))
    return _Built(nodes, muscles, drag_pairs, bodies)


def _apply_drag(pairs: list, cfg: Box2DConfig) -> None:
    """F = -(drag / S) (v . n) n on each square of each drag bond (n: unit normal of the squares' line)."""
    for sa, sb in pairs:
        (ax, ay), (bx, by) = sa.position, sb.position
        S = math.hypot(bx - ax, by - ay)
        nx, ny = (ay - by) / S, (bx - ax) / S
        for sq in (sa, sb):
            vx, vy = sq.linearVelocity
            k = -cfg.drag / S * (vx * nx + vy * ny)
            sq.ApplyForce((k * nx, k * ny), sa.position if cfg.drag_at_first_square else sq.position, True)


def _com(bodies: list) -> np.ndarray:
    m = np.array([b.mass for b in bodies])
    x = np.array([tuple(b.worldCenter) for b in bodies])
    return (m[:, None] * x).sum(0) / m.sum()


def rollout(cr: Creature, cfg: Box2DConfig = Box2DConfig(), record_every: int = 0) -> Box2DResult:
    """Simulate one creature for cfg.steps steps in Box2D. ``record_every`` > 0 also returns node positions at rest
    and after every record_every-th step ([T, 16, 16, 2], T = steps // record_every + 1; nodes outside the creature
    stay at their rest positions)."""
    b2 = require_box2d()
    L = cfg.spacing
    rest = np.stack(np.meshgrid(np.arange(G) * L, np.arange(G) * L, indexing="xy"), -1).astype(np.float32)
    origin = np.asarray([CENTRE[1] * L, CENTRE[0] * L])
    shift = np.asarray(cfg.offset, np.float32)
    if not cr.valid:
        frames = None
        if record_every:
            frames = np.broadcast_to(rest - origin, (cfg.steps // record_every + 1, G, G, 2)).astype(np.float32)
        return Box2DResult(np.zeros(2), float(INVALID_FITNESS), False, np.zeros(2), frames)

    world = b2.b2World(gravity=(0.0, 0.0), doSleep=cfg.sleep)
    world.warmStarting = True
    world.continuousPhysics = True
    world.subStepping = False
    built = _build(b2, world, cr, cfg)
    centre = built.nodes[CENTRE]
    start = np.asarray(tuple(centre.position), np.float64)
    com0 = _com(built.bodies)

    frames = []

    def record():
        pos = rest.copy()
        for (r, c), body in built.nodes.items():
            pos[r, c] = np.asarray(tuple(body.position), np.float32) - shift
        frames.append(pos - origin)

    if record_every:
        record()
    opening = False
    for step in range(1, cfg.steps + 1):
        world.Step(cfg.dt, cfg.velocity_iterations, cfg.position_iterations)
        world.ClearForces()
        if step % cfg.beat_period == 0:
            opening = not opening
            upper, speed = (cfg.muscle_open, cfg.muscle_speed) if opening else (cfg.slack, -cfg.muscle_speed)
            for joint in built.muscles:
                joint.SetLimits(-cfg.slack, upper)
                joint.motorSpeed = speed
        if opening:
            _apply_drag(built.drag_pairs, cfg)
        if record_every and step % record_every == 0:
            record()

    d = np.asarray(tuple(centre.position), np.float64) - start
    return Box2DResult(d, float(d[0] - abs(d[1])), True, _com(built.bodies) - com0,
                       np.stack(frames).astype(np.float32) if record_every else None)


def evaluate(genome: Genome, cfg: Box2DConfig = Box2DConfig(), record_every: int = 0) -> Box2DResult:
    """One of our genomes (no batch axis) -> its Box2D rollout (``rollout``)."""
    require_box2d()
    return rollout(creature(genome), cfg, record_every)
