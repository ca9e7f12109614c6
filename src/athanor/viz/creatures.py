"""Frames of a soft-bodied grid creature swimming (Oceanworld): a NumPy rasteriser of nodes and bonds.

The creature is given as plain arrays on its genome grid, as ``envs/oceanworld.py`` produces them: node
positions over time, which nodes are alive, which bonds exist, and each bond's muscle and drag bits. Nodes are
red disks (the centre node, whose motion is the fitness, dark red), bonds are lines coloured by type
(``BOND_COLOURS``: plain grey, muscle blue, drag green, muscle + drag orange). The camera follows the centre
node over faint world-fixed grid lines, so the swimming shows as the lines sliding past.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["BOND_COLOURS", "creature_frames"]

BOND_COLOURS = {  # (muscle, drag) -> RGB
    (False, False): (120, 120, 120),  # plain: grey
    (True, False): (40, 90, 225),  # muscle: blue
    (False, True): (30, 155, 60),  # drag: green
    (True, True): (225, 130, 20),  # muscle + drag: orange
}
WATER = np.array([228, 240, 250], np.uint8)
GRID_LINE = np.array([200, 218, 235], np.uint8)
NODE = np.array([215, 40, 40], np.uint8)
CENTRE_NODE = np.array([120, 0, 0], np.uint8)


def _disk(radius: float) -> np.ndarray:
    r = int(math.ceil(radius))
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    keep = yy * yy + xx * xx <= radius * radius + 1e-9
    return np.stack([yy[keep], xx[keep]], -1)


def _stamp(img: np.ndarray, pts: np.ndarray, brush: np.ndarray, colours: np.ndarray) -> None:
    """Paint brush offsets around integer points pts [M, 2] (row, col) with per-point colours [M, 3]."""
    size = img.shape[0]
    p = pts[:, None, :] + brush[None, :, :]
    c = np.broadcast_to(colours[:, None, :], p.shape[:2] + (3,))
    ok = (p[..., 0] >= 0) & (p[..., 0] < size) & (p[..., 1] >= 0) & (p[..., 1] < size)
    img[p[..., 0][ok], p[..., 1][ok]] = c[ok]


def creature_frames(trajectory, alive, bond_on, bond_bits, *, centre: tuple[int, int], spacing: float,
                    size: int = 192, view: float | None = None) -> np.ndarray:
    """Frames of a rollout -> uint8 [T, size, size, 3].

    ``trajectory`` [T, G, G, 2] holds each grid node's world (x, y) per frame; ``alive`` [G, G] bool the nodes of
    the creature; ``bond_on`` [G, G, 2] bool its bonds to the right and down from each node; ``bond_bits``
    [G, G, 2, 3] bool each bond's [exists, muscle, drag] (muscle and drag pick the colour); ``centre`` the
    (row, column) of the node the camera follows; ``spacing`` the rest distance of neighbouring nodes (the
    line widths and the grid lines, every two spacings, scale with it). ``view`` is the world width of a frame
    (default: fit the creature's largest excursion from the centre node over the rollout, at least 8 spacings),
    so a grid of videos can share one scale.
    """
    traj = np.asarray(trajectory, np.float32)  # [T, G, G, 2]
    alive, bond_on, bits = (np.asarray(a, bool) for a in (alive, bond_on, bond_bits))
    T = traj.shape[0]
    middle = traj[:, centre[0], centre[1]]  # [T, 2]
    if view is None:
        rel = traj[:, alive] - middle[:, None]
        reach = float(np.abs(rel).max()) if rel.size else 0.0
        view = max(2.3 * reach + 2.0 * spacing, 8.0 * spacing)
    scale = size / view
    rr, cc = np.nonzero(alive)
    ends = []
    for d, (dr, dc) in enumerate(((0, 1), (1, 0))):
        br, bc = np.nonzero(bond_on[..., d])
        ends.append((br, bc, br + dr, bc + dc, bits[br, bc, d, 1], bits[br, bc, d, 2]))
    r0, c0, r1, c1, mus, drg = (np.concatenate(x) for x in zip(*ends, strict=True))
    colours = np.array([BOND_COLOURS[(bool(m), bool(f))] for m, f in zip(mus, drg, strict=True)], np.uint8)
    colours = colours.reshape(-1, 3)
    line = _disk(max(0.8, 0.07 * spacing * scale))
    dot = _disk(max(1.5, 0.16 * spacing * scale))
    is_centre = (rr == centre[0]) & (cc == centre[1])
    node_colours = np.where(is_centre[:, None], CENTRE_NODE, NODE).astype(np.uint8)
    step = 2.0 * spacing
    frames = np.empty((T, size, size, 3), np.uint8)
    for t in range(T):
        img = frames[t]
        img[:] = WATER
        lo = middle[t] - view / 2  # world coordinates of the frame's top-left corner
        for axis in (0, 1):  # world-fixed grid lines; axis 0 = x (columns), 1 = y (rows)
            first = math.ceil(lo[axis] / step) * step
            for w in np.arange(first, lo[axis] + view, step):
                pix = int(round((w - lo[axis]) * scale))
                if 0 <= pix < size:
                    if axis == 0:
                        img[:, pix] = GRID_LINE
                    else:
                        img[pix, :] = GRID_LINE
        pix = (traj[t] - lo) * scale  # [G, G, 2] as (x, y) pixels
        if r0.size:
            a, b = pix[r0, c0], pix[r1, c1]
            n = int(np.ceil(np.abs(b - a).max())) + 2
            u = np.linspace(0.0, 1.0, n)[None, :, None]
            pts = a[:, None] + (b - a)[:, None] * u  # [M, n, 2]
            pts = np.round(pts[..., ::-1]).astype(np.int64).reshape(-1, 2)
            _stamp(img, pts, line, np.repeat(colours, n, axis=0))
        if rr.size:  # the centre node last, so it stays visible where nodes overlap
            order = np.argsort(is_centre, kind="stable")
            pts = np.round(pix[rr[order], cc[order]][:, ::-1]).astype(np.int64)
            _stamp(img, pts, dot, node_colours[order])
    return frames
