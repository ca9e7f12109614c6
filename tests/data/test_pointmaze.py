"""Point-maze datasets: expert actions (unit BFS directions plus the configured noise), goals that get reached,
determinism, and a cache that detects and rebuilds every kind of damage."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

pytest.importorskip("mujoco")
pytest.importorskip("ogbench")

from athanor.core.errors import ConfigError  # noqa: E402
from athanor.data import pointmaze as P  # noqa: E402
from athanor.envs import pointmaze as M  # noqa: E402

TINY = P.MazeDataSpec(maze="medium", episodes=3, episode_len=60, noise=0.5, seed=0)


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("ATHANOR_DATA_DIR", str(tmp_path))
    return tmp_path / "pointmaze"


def test_spec_validation_and_file_name(data_dir):
    assert P.MazeDataSpec().transitions == 1_000_000  # the source's 1000 episodes x 1000 transitions
    assert TINY.filename == "medium-e3-l60-n0.5-s0.npz"
    assert P.path_for(TINY) == data_dir / TINY.filename
    for bad, needle in [({"maze": "huge"}, "unknown maze"), ({"episodes": 0}, "episodes"),
                        ({"episode_len": 1}, "episode_len"), ({"noise": -0.1}, "noise"),
                        ({"noise": float("nan")}, "noise"), ({"seed": -1}, "seed"), ({"episodes": 2.5}, "episodes")]:
        with pytest.raises(ConfigError, match=needle):
            P.MazeDataSpec(**bad)


def test_layout_transitions_chain_within_episodes():
    d = P.generate(TINY, progress=False)
    n = TINY.transitions
    assert n == 3 * 59
    for key in P.KEYS:
        assert d[key].shape[0] == n
    assert d["observations"].dtype == d["actions"].dtype == d["next_observations"].dtype == np.float32
    assert d["episode_ends"].dtype == np.bool_
    np.testing.assert_array_equal(np.flatnonzero(d["episode_ends"]), [58, 117, 176])
    cont = ~d["episode_ends"][:-1]
    np.testing.assert_array_equal(d["next_observations"][:-1][cont], d["observations"][1:][cont])
    assert np.abs(d["actions"]).max() <= 1.0
    m = M.get_maze("medium")
    first = d["observations"][[0, 59, 118]]
    cells = M.xy_to_ij(first)
    assert all(m.grid[tuple(c)] == 0 for c in cells)  # starts in free cells ...
    assert np.abs(first - M.ij_to_xy(cells)).max() <= M.INIT_NOISE  # ... within OGBench's position noise
    assert len({tuple(c) for c in M.xy_to_ij(d["observations"])}) > 3  # the agent travels through the maze


def test_noiseless_actions_are_unit_vectors_to_the_bfs_waypoint():
    d = P.generate(P.MazeDataSpec(episodes=3, episode_len=120, noise=0.0, seed=4), progress=False)
    m = M.get_maze("medium")
    np.testing.assert_allclose(np.linalg.norm(d["actions"], axis=1), 1.0, atol=1e-6)
    expected = M.planner_action(m, d["observations"], M.xy_to_ij(d["goals"]))
    np.testing.assert_allclose(d["actions"], expected, atol=1e-4)


@pytest.mark.parametrize("noise", [0.1, 0.2])
def test_action_noise_has_the_configured_std(noise):
    d = P.generate(P.MazeDataSpec(episodes=4, episode_len=250, noise=noise, seed=5), progress=False)
    u = M.planner_action(M.get_maze("medium"), d["observations"], M.xy_to_ij(d["goals"]))
    # Components with |u| <= 1 - 4 noise are clipped with probability < 1e-4, so their residual is the raw noise.
    free = np.abs(u) <= 1.0 - 4.0 * noise
    residual = (d["actions"] - u)[free]
    assert residual.size >= 200
    assert abs(residual.std() - noise) < 0.15 * noise
    assert abs(residual.mean()) < 4.0 * noise / np.sqrt(residual.size)


def test_default_noise_clips_some_actions_to_the_box():
    d = P.generate(TINY, progress=False)
    assert 0.02 < (np.abs(d["actions"]) == 1.0).mean() < 0.5


def test_noiseless_planner_reaches_its_goals():
    spec = P.MazeDataSpec(episodes=3, episode_len=301, noise=0.0, seed=0)
    d = P.generate(spec, progress=False)
    m = M.get_maze("medium")
    goals = d["goals"].reshape(3, 300, 2)
    nxt = d["next_observations"].reshape(3, 300, 2)
    first_goal_ij = M.xy_to_ij(goals[:, 0])
    start_ij = M.xy_to_ij(d["observations"].reshape(3, 300, 2)[:, 0])
    for e in range(3):
        switches = np.flatnonzero((goals[e, 1:] != goals[e, :-1]).any(1))
        assert len(switches) >= 1, f"episode {e} never reached a goal"
        for t in switches:  # a goal is replaced only once the agent is within tolerance of it
            assert np.linalg.norm(nxt[e, t] - goals[e, t]) <= M.GOAL_TOL
            assert tuple(M.xy_to_ij(goals[e, t + 1])) != tuple(M.xy_to_ij(nxt[e, t]))
        cells = M.bfs_distances(m.grid, first_goal_ij[e])[tuple(start_ij[e])]
        # Twenty steps of 0.2 cross one 4-unit cell; allow one cell for the start offset and corner slides.
        assert switches[0] + 1 <= 20 * (cells + 1)


def test_generation_is_deterministic_and_independent_of_batching(monkeypatch):
    a = P.generate(TINY, progress=False)
    b = P.generate(TINY, progress=False)
    monkeypatch.setattr(P, "BATCH", 2)
    c = P.generate(TINY, progress=False)
    for key in (*P.KEYS, "goals"):
        np.testing.assert_array_equal(a[key], b[key])
        np.testing.assert_array_equal(a[key], c[key])
    other = P.generate(P.MazeDataSpec(**{**TINY.__dict__, "seed": 1}), progress=False)
    assert not np.array_equal(a["observations"], other["observations"])


def test_cache_round_trip_and_listing(data_dir, monkeypatch):
    assert P.list_cached() == []
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a first build is not a warning
        data = P.load(TINY, progress=False)
    path = data_dir / TINY.filename
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["spec"] == {"maze": "medium", "episodes": 3, "episode_len": 60, "noise": 0.5, "seed": 0}
    assert meta["generator_version"] == P.GENERATOR_VERSION
    assert P.verify(path) == (True, "ok")
    fresh = P.generate(TINY, progress=False)
    for key in P.KEYS:
        np.testing.assert_array_equal(data[key], fresh[key])
    digest = meta["sha256"]
    P.build(TINY, progress=False)  # the same spec writes the same bytes
    assert json.loads(path.with_suffix(".json").read_text())["sha256"] == digest

    def no_build(*args, **kwargs):
        raise AssertionError("a verified cache must not be rebuilt")

    monkeypatch.setattr(P, "build", no_build)
    again = P.load(TINY, progress=False)
    np.testing.assert_array_equal(again["actions"], data["actions"])
    (row,) = P.list_cached()
    assert row["ok"] and row["transitions"] == TINY.transitions and row["size"] == path.stat().st_size
    assert row["maze"] == "medium" and row["episodes"] == 3 and row["path"] == str(path)


def _flip(path):
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))


def _truncate(path):
    path.write_bytes(path.read_bytes()[:1000])


def _edit_spec(path):
    meta_path = path.with_suffix(".json")
    meta = json.loads(meta_path.read_text())
    meta["spec"]["episodes"] = 4
    meta_path.write_text(json.dumps(meta))


def _old_generator(path):
    meta_path = path.with_suffix(".json")
    meta = json.loads(meta_path.read_text())
    meta["generator_version"] = 0
    meta_path.write_text(json.dumps(meta))


def _drop_meta(path):
    path.with_suffix(".json").unlink()


def _garble_meta(path):
    path.with_suffix(".json").write_text("{not json")


@pytest.mark.parametrize("damage, reason", [
    (_flip, "checksum mismatch"),
    (_truncate, "checksum mismatch"),
    (_edit_spec, "config mismatch"),
    (_old_generator, "config mismatch"),
    (_drop_meta, "metadata missing"),
    (_garble_meta, "metadata unreadable"),
])
def test_damaged_cache_is_detected_and_rebuilt(data_dir, damage, reason):
    data = P.load(TINY, progress=False)
    path = data_dir / TINY.filename
    damage(path)
    ok, why = P.verify(path)
    assert not ok and why.startswith(reason)
    (row,) = P.list_cached()
    assert not row["ok"] and row["reason"] == why
    with pytest.warns(UserWarning, match=reason):
        rebuilt = P.load(TINY, progress=False)
    assert P.verify(path) == (True, "ok")
    for key in P.KEYS:
        np.testing.assert_array_equal(rebuilt[key], data[key])


def test_verify_reports_missing_files(data_dir):
    ok, why = P.verify(data_dir / "medium-e1-l2-n0.0-s0.npz")
    assert not ok and why.startswith("missing")
    P.load(TINY, progress=False)
    (data_dir / TINY.filename).unlink()
    with pytest.warns(UserWarning, match="missing"):  # the metadata outlived its npz
        P.load(TINY, progress=False)
