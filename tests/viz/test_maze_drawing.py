"""Maze pictures: the layout, episode frames and trajectories land where the world coordinates say, on a real
point-maze task (geometry from envs/pointmaze.py) and on a hand-made scene."""

from __future__ import annotations

import numpy as np
import pytest

from athanor.viz import maze as V

pytest.importorskip("mujoco")
pytest.importorskip("ogbench")

from athanor.envs import pointmaze as M  # noqa: E402


def scene(task):
    return V.MazeScene(**M.scene(task))


def px(sc, xy, size):
    return np.floor(V.world_to_pixel(sc, xy, size)).astype(int)


def test_hand_made_scene_geometry():
    """A 2 x 3 map of unit-2 cells with its corner at (10, 20): cell (i, j) spans x in [10 + 2j, 12 + 2j] and
    y in [20 + 2i, 22 + 2i]; the map (6 wide, 4 high) is centred in a 60-pixel square at 10 pixels per unit."""
    sc = V.MazeScene(grid=np.array([[1, 0, 0], [0, 0, 1]]), unit=2.0, corner=(10.0, 20.0))
    np.testing.assert_allclose(V.world_to_pixel(sc, (10.0, 20.0), 60), [10.0, 0.0])  # 10 rows of letterbox
    np.testing.assert_allclose(V.world_to_pixel(sc, (16.0, 24.0), 60), [50.0, 60.0])
    img = V.maze_image(sc, 60)
    for (i, j), wall in np.ndenumerate(sc.grid):
        r, c = px(sc, (11.0 + 2 * j, 21.0 + 2 * i), 60)
        np.testing.assert_array_equal(img[r, c], V.WALL if wall else V.FLOOR)
    assert (img[:10] == V.WALL).all() and (img[50:] == V.WALL).all()  # outside the map counts as wall


def test_rollout_frames_and_maze_image():
    task = M.make_task("medium", 1)
    sc = scene(task)
    out = M.rollout(lambda obs: np.zeros_like(obs), task, 1, seed=0, record=1)
    frames = V.rollout_frames(sc, out["xy"][0], int(out["lengths"][0]), size=96)
    assert frames.dtype == np.uint8 and frames.ndim == 4 and frames.shape[1:] == (96, 96, 3)
    assert 100 <= len(frames) <= V.MAX_FRAMES  # 1001 positions subsampled
    r, c = V.world_to_pixel(sc, out["xy"][0, 0], 96).astype(int)
    np.testing.assert_array_equal(frames[0, r, c], V.AGENT)  # the agent disk at its position
    short = V.rollout_frames(sc, out["xy"][0], 10)
    assert short.shape == (11, 160, 160, 3)

    img = V.maze_image(sc, size=128)
    assert img.shape == (128, 128, 3) and img.dtype == np.uint8
    np.testing.assert_array_equal(img[0, 0], V.WALL)  # the outer wall
    r, c = V.world_to_pixel(sc, M.ij_to_xy((3, 3)), 128).astype(int)
    np.testing.assert_array_equal(img[r, c], V.FLOOR)  # a free cell that holds neither start nor goal
    r, c = V.world_to_pixel(sc, task.goal_xy, 128).astype(int)
    assert img[r, c, 0] > 180 and img[r, c, 1] < 100  # the goal marker is red
    r, c = V.world_to_pixel(sc, task.init_xy, 128).astype(int)
    assert img[r, c, 1] > img[r, c, 0] and img[r, c, 1] > img[r, c, 2]  # the start region is green
    with pytest.raises(ValueError, match="rollout_frames"):
        V.rollout_frames(sc, out["xy"][0], 5000)


def test_world_to_pixel_puts_cell_centres_on_their_cells_in_a_non_square_maze():
    task = M.make_task("large", 1)  # a 9 x 12 map, letterboxed into the square image
    sc = scene(task)
    img = V.maze_image(sc, size=240)
    m = M.get_maze("large")
    marked = {tuple(M.xy_to_ij(task.init_xy)), task.goal_ij}  # cells under the start and goal markers
    cells = [(0, 0), (8, 11), (4, 2)] + [tuple(c) for c in m.free[::7] if tuple(c) not in marked]
    for i, j in cells:
        r, c = px(sc, M.ij_to_xy((i, j)), 240)
        np.testing.assert_array_equal(img[r, c], V.WALL if m.grid[i, j] else V.FLOOR)
    assert (img[:20] == V.WALL).all()  # the letterbox band above the 9-row map


def test_trajectories_image_marks_start_path_and_end():
    task = M.make_task("medium", 1)
    sc = scene(task)
    img = V.maze_image(sc, 320)
    r, c = px(sc, task.goal_xy, 320)
    assert np.abs(img[r, c].astype(float) - V.GOAL).max() < 60  # the goal disk (blended over the floor)
    wall_ij = np.argwhere(M.get_maze("medium").grid == 1)[0]
    r, c = px(sc, M.ij_to_xy(wall_ij), 320)
    np.testing.assert_array_equal(img[r, c], V.WALL.astype(np.uint8))
    art = V.trajectories_image(sc, [np.stack([task.init_xy, task.goal_xy])])
    assert art.shape == img.shape and art.dtype == np.uint8 and (art != img).any()
    r, c = px(sc, task.init_xy, 320)
    np.testing.assert_array_equal(art[r, c], V.TRAJ_COLOURS[0].astype(np.uint8))  # start: the path's colour
    assert (art[r - 3, c] == 255).all()  # ringed in white
    r, c = px(sc, task.goal_xy, 320)
    assert (art[r, c] == 0).all()  # end: black
