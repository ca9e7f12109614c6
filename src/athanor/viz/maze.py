"""Top-down pictures of a grid maze (the point maze): the layout, an episode as frames, trajectories.

Everything is drawn by a small NumPy rasteriser from a :class:`MazeScene`, plain arrays and numbers that an
environment can describe without knowing how it is drawn (``envs/pointmaze.py`` builds one with ``scene``):
walls and floor from the maze map, the goal as a red disk of the success radius, an optional start region as a
green square, the agent as a blue disk with a fading orange trail. Image rows follow the maze map's rows (world
y grows downwards in the picture), and the maze is centred in a ``size`` x ``size`` square. MuJoCo's own OpenGL
renderer is not used: headless machines lack it.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

__all__ = ["MazeScene", "world_to_pixel", "maze_image", "rollout_frames", "trajectories_image", "MAX_FRAMES"]

WALL = np.array([46, 52, 64], np.float64)
FLOOR = np.array([236, 233, 222], np.float64)
GOAL = np.array([214, 48, 64], np.float64)
START = np.array([52, 160, 88], np.float64)
AGENT = np.array([32, 100, 200], np.float64)
TRAIL = np.array([240, 140, 30], np.float64)
TRAIL_FADE = 120.0  # steps over which a trail point fades towards its floor
MAX_FRAMES = 200  # an episode is subsampled to at most this many frames
TRAJ_COLOURS = np.array([[31, 119, 180], [255, 127, 14], [44, 160, 44], [148, 103, 189], [140, 86, 75],
                         [227, 119, 194], [127, 127, 127], [188, 189, 34], [23, 190, 207]], np.float64)


@dataclasses.dataclass(frozen=True, eq=False)
class MazeScene:
    """What a maze picture shows, in world units.

    Cell (i, j) of ``grid`` (row i, column j; 1 = wall) spans [x0 + j unit, x0 + (j + 1) unit] x
    [y0 + i unit, y0 + (i + 1) unit] with (x0, y0) = ``corner``; everything outside the map is drawn as wall.
    """

    grid: np.ndarray  # (H, W) int, 1 = wall
    unit: float  # side of a cell
    corner: tuple[float, float]  # world (x, y) of the map's outer corner at row 0, column 0
    goal: np.ndarray | None = None  # (2,) world xy of the goal
    goal_radius: float = 0.0  # success radius, drawn as the goal disk
    start: np.ndarray | None = None  # (2,) centre of the start region (a square), or None
    start_halfwidth: float = 0.0
    agent_radius: float = 0.5


def _geometry(scene: MazeScene, size: int) -> tuple[float, float, float]:
    """Pixels per world unit and the pixel offsets that centre the maze in a size x size square."""
    h, w = np.asarray(scene.grid).shape
    scale = size / (scene.unit * max(h, w))
    return scale, (size - scale * scene.unit * w) / 2, (size - scale * scene.unit * h) / 2


def _to_px(scene: MazeScene, xy, geometry) -> np.ndarray:
    scale, ox, oy = geometry
    xy = np.asarray(xy, dtype=np.float64)
    return np.stack([oy + (xy[..., 1] - scene.corner[1]) * scale, ox + (xy[..., 0] - scene.corner[0]) * scale],
                    axis=-1)


def world_to_pixel(scene: MazeScene, xy, size: int) -> np.ndarray:
    """World xy [..., 2] -> continuous pixel (row, col) [..., 2] in every picture of ``size``; ``floor`` of it
    is the pixel index."""
    return _to_px(scene, xy, _geometry(scene, size))


def _floor_plan(scene: MazeScene, size: int) -> np.ndarray:
    """Walls and floor as a float [size, size, 3] image; everything outside the map counts as wall."""
    grid = np.asarray(scene.grid)
    scale, ox, oy = _geometry(scene, size)
    centres = np.arange(size) + 0.5
    j = np.floor((centres - ox) / (scale * scene.unit)).astype(np.int64)
    i = np.floor((centres - oy) / (scale * scene.unit)).astype(np.int64)
    h, w = grid.shape
    inside = (i[:, None] >= 0) & (i[:, None] < h) & (j[None, :] >= 0) & (j[None, :] < w)
    wall = np.ones((size, size), bool)
    wall[inside] = grid[np.clip(i, 0, h - 1)[:, None], np.clip(j, 0, w - 1)[None, :]][inside] == 1
    return np.where(wall[..., None], WALL, FLOOR)


def _disk(img: np.ndarray, centre_px, radius_px: float, colour: np.ndarray, alpha: float) -> None:
    """Blend an anti-aliased disk into ``img`` (float [S, S, 3]) in place."""
    size = img.shape[0]
    r0, c0 = float(centre_px[0]), float(centre_px[1])
    lo_r, hi_r = max(0, int(r0 - radius_px - 1)), min(size, int(r0 + radius_px + 2))
    lo_c, hi_c = max(0, int(c0 - radius_px - 1)), min(size, int(c0 + radius_px + 2))
    if lo_r >= hi_r or lo_c >= hi_c:
        return
    rr = np.arange(lo_r, hi_r)[:, None] + 0.5
    cc = np.arange(lo_c, hi_c)[None, :] + 0.5
    cover = np.clip(radius_px - np.hypot(rr - r0, cc - c0) + 0.5, 0.0, 1.0)[..., None] * alpha
    patch = img[lo_r:hi_r, lo_c:hi_c]
    img[lo_r:hi_r, lo_c:hi_c] = patch * (1.0 - cover) + colour * cover


def _base(scene: MazeScene, size: int) -> tuple[np.ndarray, tuple[float, float, float]]:
    geometry = _geometry(scene, size)
    img = _floor_plan(scene, size)
    if scene.goal is not None:
        _disk(img, _to_px(scene, scene.goal, geometry), scene.goal_radius * geometry[0], GOAL, 0.85)
    return img, geometry


def _layout(scene: MazeScene, size: int) -> np.ndarray:
    """Float picture of walls, goal and start region."""
    img, geometry = _base(scene, size)
    if scene.start is not None:
        start = np.asarray(scene.start, np.float64)
        lo = _to_px(scene, start - scene.start_halfwidth, geometry)
        hi = _to_px(scene, start + scene.start_halfwidth, geometry)
        r0, r1 = int(round(lo[0])), int(round(hi[0]))
        c0, c1 = int(round(lo[1])), int(round(hi[1]))
        img[r0:r1, c0:c1] = 0.45 * img[r0:r1, c0:c1] + 0.55 * START
    return img


def maze_image(scene: MazeScene, size: int = 320) -> np.ndarray:
    """The maze layout with the goal (red disk) and, if the scene has one, the start region (green square):
    uint8 [size, size, 3]."""
    return np.round(_layout(scene, size)).astype(np.uint8)


def rollout_frames(scene: MazeScene, xy, length: int, size: int = 160) -> np.ndarray:
    """Frames [T, size, size, 3] uint8 of one recorded episode: positions ``xy[:length + 1]``.

    At most ``MAX_FRAMES`` frames: every ``ceil((length + 1) / MAX_FRAMES)``-th step plus the last one. Each frame
    shows the goal, the agent disk and its trail so far, older trail points fading towards the floor over
    ~TRAIL_FADE steps (the start region is left out: the trail shows where the episode began).
    """
    xy = np.asarray(xy, dtype=np.float64)
    length = int(length)
    if xy.ndim != 2 or xy.shape[1] != 2 or not 0 <= length < xy.shape[0]:
        raise ValueError(f"rollout_frames takes xy [T, 2] with 0 <= length < T, got {xy.shape} and {length}")
    base, geometry = _base(scene, size)
    px = _to_px(scene, xy[:length + 1], geometry)  # [L + 1, 2]
    stride = math.ceil((length + 1) / MAX_FRAMES)
    times = list(range(0, length + 1, stride))
    if times[-1] != length:
        times[-1] = length
    dot = max(1, int(round(geometry[0] * 0.15)))
    offsets = np.array([(dr, dc) for dr in range(-dot + 1, dot) for dc in range(-dot + 1, dot)] or [(0, 0)])
    cells = np.floor(px).astype(np.int64)  # [L + 1, 2] pixel of each trail point
    frames = np.empty((len(times), size, size, 3), np.uint8)
    for f, t in enumerate(times):
        img = base.copy()
        age = t - np.arange(t + 1)  # oldest first, so newer points overwrite older ones below
        alpha = 0.2 + 0.8 * np.exp(-age / TRAIL_FADE)
        pts = (cells[:t + 1, None, :] + offsets[None]).reshape(-1, 2)
        a = np.repeat(alpha, len(offsets))[:, None]
        keep = (pts >= 0).all(1) & (pts < size).all(1)
        r, c, a = pts[keep, 0], pts[keep, 1], a[keep]
        img[r, c] = img[r, c] * (1.0 - a) + TRAIL * a
        _disk(img, px[t], scene.agent_radius * geometry[0], AGENT, 1.0)
        frames[f] = np.round(img).astype(np.uint8)
    return frames


def trajectories_image(scene: MazeScene, paths, size: int = 320) -> np.ndarray:
    """The maze picture with each path (T_i, 2) drawn as a 3-pixel-wide line of its own colour; its start is a
    white-ringed square of that colour, its end a black square. uint8 [size, size, 3]."""
    img = _layout(scene, size)
    for k, path in enumerate(paths):
        colour = TRAJ_COLOURS[k % len(TRAJ_COLOURS)]
        px = world_to_pixel(scene, path, size)
        # sample each segment at sub-pixel spacing so the line has no gaps at any speed
        seg = np.diff(px, axis=0)
        n = np.maximum(np.ceil(np.abs(seg).max(axis=-1) * 2).astype(int), 1) if len(px) > 1 else np.zeros(0, int)
        pts = [px[:1]] + [px[i] + seg[i] * (np.arange(1, m + 1)[:, None] / m) for i, m in enumerate(n)]
        cells = np.floor(np.concatenate(pts)).astype(np.int64)
        for dr in (-1, 0, 1):
            for dc in (-1, 0, 1):
                rc = np.clip(cells + np.array([dr, dc]), 0, size - 1)
                img[rc[:, 0], rc[:, 1]] = 0.25 * img[rc[:, 0], rc[:, 1]] + 0.75 * colour
        r0, c0 = np.clip(np.floor(px[0]).astype(np.int64), 3, size - 4)
        img[r0 - 3:r0 + 4, c0 - 3:c0 + 4] = 255.0
        img[r0 - 2:r0 + 3, c0 - 2:c0 + 3] = colour
        end = np.clip(np.floor(px[-1]).astype(np.int64), 2, size - 3)
        img[end[0] - 2:end[0] + 3, end[1] - 2:end[1] + 3] = 0.0
    return np.round(img).astype(np.uint8)
