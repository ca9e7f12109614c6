"""Point-maze offline datasets (maze2d / OGBench style): a noisy BFS-waypoint expert, generated locally and cached.

Generator, per episode k (its own ``np.random.default_rng([seed, k])``, so every episode is the same whatever the
batching): start at a uniformly drawn free cell's centre plus U(-1, 1)^2 (OGBench's position noise) and draw a goal
cell uniformly among the other free cells. Each step takes

    a_t = clip(u_t + eps_t, -1, 1),   u_t = (w_t - x_t) / ||w_t - x_t||,   eps_t ~ N(0, noise^2 I)

where w_t is the BFS waypoint towards the goal (``athanor.envs.pointmaze``; inside the goal cell w_t is
the goal cell's centre). Once the agent is within GOAL_TOL = 1 of that centre (the evaluation tasks' success
radius), a new goal cell is drawn among the cells other than the current one, so the agent moves for the whole
episode. The default spec is the source's: 1000 episodes of 1001 steps with noise 0.5 in the medium maze.

Layout: ``episode_len`` counts the *states* of an episode (OGBench's 1001-step episodes), so an episode gives
``episode_len - 1`` transitions and N = episodes * (episode_len - 1) = 1,000,000 by default, every one a real
(s, a, s') triple. ``load`` returns ``observations`` [N, 2], ``actions`` [N, 2], ``next_observations`` [N, 2] (all
float32) and ``episode_ends`` [N] bool (True on each episode's last transition). Rewards are task-specific and
come from ``envs.pointmaze.label``.

Cache: ``<cache_dir>/<maze>-e<episodes>-l<episode_len>-n<noise>-s<seed>.npz`` and a ``.json`` beside it with the
spec, the generator version and the npz's sha256. The npz is written with fixed zip timestamps, so the same spec
gives the same bytes. Both files are written atomically (temp file + ``os.replace``), the npz first; a cache whose
metadata is missing, whose spec or generator version differs, whose sha256 does not match (which also catches a
truncated file) or whose arrays have the wrong shapes is rebuilt with a warning naming the reason, never trusted.

Generating needs MuJoCo and OGBench (the ``[rl]`` extra; without them a ``DataError`` names the install command);
listing, verifying and loading an already cached dataset need neither.

Deviation from OGBench's own datasets: the goal-reached radius and the goal redraw rule are ours (OGBench's data
scripts are not part of its package); D4RL's maze2d used a PD controller to waypoints instead of unit actions.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import math
import os
import re
import time
import warnings
import zipfile
from pathlib import Path

import numpy as np

from athanor.core.errors import ConfigError, DataError

__all__ = ["MazeDataSpec", "cache_dir", "path_for", "generate", "build", "load", "verify", "list_cached",
           "GENERATOR_VERSION", "KEYS"]

GENERATOR_VERSION = 1
GENERATOR_PACKAGES = ("ogbench", "mujoco", "numpy")  # whose versions a built dataset records
KEYS = ("observations", "actions", "next_observations", "episode_ends")
BATCH = 50  # episodes stepped side by side; any value gives the same data
_NAME = re.compile(r"^(?P<maze>[a-z]+)-e(?P<episodes>\d+)-l(?P<episode_len>\d+)-n(?P<noise>[0-9.e+-]+)"
                   r"-s(?P<seed>\d+)\.npz$")


@dataclasses.dataclass(frozen=True)
class MazeDataSpec:
    maze: str = "medium"  # ogbench maze type: arena | medium | large | giant
    episodes: int = 1000  # source: 1000 episodes
    episode_len: int = 1001  # source: 1001 steps (states) per episode -> 1000 transitions each
    noise: float = 0.5  # std of the Gaussian action noise (source: 0.5)
    seed: int = 0

    def __post_init__(self):
        from athanor.envs.pointmaze import MAZES

        def integer(v) -> bool:
            return isinstance(v, (int, np.integer)) and not isinstance(v, bool)

        if self.maze not in MAZES:
            raise ConfigError(f"unknown maze '{self.maze}'; choose one of {', '.join(MAZES)}")
        if not integer(self.episodes) or self.episodes < 1:
            raise ConfigError(f"episodes must be an integer >= 1, got {self.episodes!r}")
        if not integer(self.episode_len) or self.episode_len < 2:
            raise ConfigError(f"episode_len must be an integer >= 2 (states per episode), got {self.episode_len!r}")
        if not isinstance(self.noise, (int, float, np.floating)) or isinstance(self.noise, bool) \
                or not math.isfinite(self.noise) or self.noise < 0:
            raise ConfigError(f"noise must be a finite number >= 0, got {self.noise!r}")
        if not integer(self.seed) or self.seed < 0:
            raise ConfigError(f"seed must be an integer >= 0, got {self.seed!r}")
        object.__setattr__(self, "episodes", int(self.episodes))
        object.__setattr__(self, "episode_len", int(self.episode_len))
        object.__setattr__(self, "noise", float(self.noise))
        object.__setattr__(self, "seed", int(self.seed))

    @property
    def transitions(self) -> int:
        return self.episodes * (self.episode_len - 1)

    @property
    def filename(self) -> str:
        return f"{self.maze}-e{self.episodes}-l{self.episode_len}-n{self.noise!r}-s{self.seed}.npz"


def cache_dir() -> Path:
    """``$ATHANOR_DATA_DIR/pointmaze`` if that variable is set, else ``~/.cache/athanor/pointmaze``."""
    root = os.environ.get("ATHANOR_DATA_DIR")
    return (Path(root).expanduser() if root else Path.home() / ".cache" / "athanor") / "pointmaze"


def path_for(spec: MazeDataSpec) -> Path:
    return cache_dir() / spec.filename


def _meta_path(path: Path) -> Path:
    return path.with_suffix(".json")


def generate(spec: MazeDataSpec, progress: bool = True) -> dict[str, np.ndarray]:
    """Generate the dataset in memory: the four KEYS plus ``goals`` [N, 2] (the goal cell centre each action was
    heading for, which the cache does not store)."""
    from tqdm.auto import tqdm

    from athanor.envs.pointmaze import GOAL_TOL, INIT_NOISE, PointMazeSim, get_maze, ij_to_xy, planner_action

    maze = get_maze(spec.maze)
    free = maze.free  # [F, 2]
    index = np.full(maze.grid.shape, -1, np.int64)
    index[free[:, 0], free[:, 1]] = np.arange(len(free))
    e_total, length = spec.episodes, spec.episode_len
    obs = np.empty((e_total, length, 2), np.float32)
    acts = np.empty((e_total, length - 1, 2), np.float32)
    goals = np.empty((e_total, length - 1, 2), np.float32)

    def other_cell(rng, current: int) -> int:
        c = int(rng.integers(len(free) - 1))
        return c + 1 if c >= current else c

    with tqdm(total=e_total, unit="ep", desc=f"pointmaze {spec.maze}", disable=not progress) as bar:
        for first in range(0, e_total, BATCH):
            ks = range(first, min(e_total, first + BATCH))
            rngs = [np.random.default_rng([spec.seed, k]) for k in ks]
            start = np.array([rng.integers(len(free)) for rng in rngs])
            xy = ij_to_xy(free[start]) + np.stack([rng.uniform(-INIT_NOISE, INIT_NOISE, 2) for rng in rngs])
            goal = np.array([other_cell(rng, s) for rng, s in zip(rngs, start, strict=True)])
            eps = np.stack([rng.normal(0.0, spec.noise, (length - 1, 2)) for rng in rngs], axis=1)  # [T, B, 2]
            sim = PointMazeSim(maze, len(ks))
            sim.reset(xy)
            rows = slice(first, first + len(ks))
            obs[rows, 0] = xy
            for t in range(length - 1):
                goal_xy = ij_to_xy(free[goal])  # [B, 2]
                a = np.clip(planner_action(maze, xy, free[goal]) + eps[t], -1.0, 1.0)
                acts[rows, t] = a
                goals[rows, t] = goal_xy
                xy = sim.step(a)
                obs[rows, t + 1] = xy
                for b in np.flatnonzero(np.linalg.norm(xy - goal_xy, axis=-1) <= GOAL_TOL):
                    goal[b] = other_cell(rngs[b], int(index[tuple(maze.cell(xy[b]))]))
            bar.update(len(ks))
    ends = np.zeros((e_total, length - 1), bool)
    ends[:, -1] = True
    return {
        "observations": obs[:, :-1].reshape(-1, 2),
        "actions": acts.reshape(-1, 2),
        "next_observations": obs[:, 1:].reshape(-1, 2),
        "episode_ends": ends.reshape(-1),
        "goals": goals.reshape(-1, 2),
    }


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """An uncompressed npz with fixed member timestamps, so equal arrays give equal bytes (and sha256)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for key in KEYS:
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            with zf.open(info, "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.ascontiguousarray(arrays[key]), allow_pickle=False)
    return buf.getvalue()


def build(spec: MazeDataSpec, progress: bool = True) -> Path:
    """Generate ``spec``'s dataset and write it to the cache atomically; returns the npz path."""
    from athanor.core.checkpoint import atomic_write_bytes
    from athanor.core.rundir import package_versions

    t0 = time.perf_counter()
    arrays = generate(spec, progress=progress)
    payload = _npz_bytes(arrays)
    path = path_for(spec)
    atomic_write_bytes(path, payload)
    meta = {"spec": dataclasses.asdict(spec), "generator_version": GENERATOR_VERSION,
            "sha256": hashlib.sha256(payload).hexdigest(), "bytes": len(payload), "transitions": spec.transitions,
            "build_seconds": round(time.perf_counter() - t0, 2),
            "versions": {**dict.fromkeys(GENERATOR_PACKAGES, "unknown"), **package_versions(GENERATOR_PACKAGES)}}
    atomic_write_bytes(_meta_path(path), (json.dumps(meta, indent=2) + "\n").encode())
    return path


def _read_meta(path: Path) -> tuple[dict | None, str]:
    meta_path = _meta_path(path)
    if not meta_path.is_file():
        return None, f"metadata missing: {meta_path.name} not found"
    try:
        meta = json.loads(meta_path.read_text())
        spec = MazeDataSpec(**meta["spec"])
        if not isinstance(meta["sha256"], str) or not isinstance(meta["generator_version"], int):
            raise TypeError("wrong field types")
    except (OSError, ValueError, KeyError, TypeError, ConfigError) as e:
        return None, f"metadata unreadable: {meta_path.name} ({type(e).__name__}: {e})"
    meta["spec"] = spec
    return meta, ""


def _check(path: Path) -> tuple[bool, str, dict | None]:
    path = Path(path)
    if path.suffix == ".json":
        path = path.with_suffix(".npz")
    if not path.is_file():
        return False, f"missing: no file at {path}", None
    meta, problem = _read_meta(path)
    if meta is None:
        return False, problem, None
    spec = meta["spec"]
    if spec.filename != path.name:
        return False, f"config mismatch: the metadata describes {spec.filename}, not {path.name}", meta
    if meta["generator_version"] != GENERATOR_VERSION:
        return False, (f"config mismatch: made by generator version {meta['generator_version']}, "
                       f"the current one is {GENERATOR_VERSION}"), meta
    raw = path.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != meta["sha256"]:
        return False, (f"checksum mismatch: sha256 of the {len(raw)} bytes is {digest[:12]}..., the metadata "
                       f"records {meta['sha256'][:12]}... (truncated or altered file)"), meta
    n = spec.transitions
    shapes = {"observations": ((n, 2), np.float32), "actions": ((n, 2), np.float32),
              "next_observations": ((n, 2), np.float32), "episode_ends": ((n,), np.bool_)}
    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
            for key, (shape, dtype) in shapes.items():
                arr = npz[key]
                if arr.shape != shape or arr.dtype != dtype:
                    return False, f"bad arrays: {key} is {arr.dtype}{arr.shape}, expected {np.dtype(dtype)}{shape}", \
                        meta
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
        return False, f"unreadable npz: {type(e).__name__}: {e}", meta
    return True, "ok", meta


def verify(path) -> tuple[bool, str]:
    """Check a cached dataset (npz or its json): metadata present and matching the file name and generator,
    sha256 equal to the recorded one, arrays of the expected shapes. Returns (ok, reason)."""
    ok, reason, _ = _check(Path(path))
    return ok, reason


def load(spec: MazeDataSpec | None = None, progress: bool = True) -> dict[str, np.ndarray]:
    """The dataset of ``spec`` (default spec if None) from the cache, building it first if it is missing and
    rebuilding it, with a warning naming the reason, if the cached copy fails verification."""
    spec = MazeDataSpec() if spec is None else spec
    path = path_for(spec)
    if path.exists() or _meta_path(path).exists():
        ok, reason = verify(path)
        if not ok:
            warnings.warn(f"cached point-maze dataset {path} is not trusted ({reason}); rebuilding it", stacklevel=2)
            build(spec, progress=progress)
    else:
        build(spec, progress=progress)
    try:
        with np.load(path, allow_pickle=False) as npz:
            data = {key: npz[key] for key in KEYS}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
        raise DataError(f"cannot read the point-maze dataset {path} ({e}); delete it and run "
                        f"`athanor data build --maze {spec.maze}`") from e
    return data


def list_cached() -> list[dict]:
    """One dict per cached npz: spec fields, path, size (bytes), transitions, ok, reason."""
    root = cache_dir()
    rows = []
    for path in sorted(root.glob("*.npz")) if root.is_dir() else []:
        ok, reason, meta = _check(path)
        m = _NAME.match(path.name)
        if meta is not None:
            fields = dataclasses.asdict(meta["spec"])
        elif m:
            fields = {"maze": m["maze"], "episodes": int(m["episodes"]), "episode_len": int(m["episode_len"]),
                      "noise": float(m["noise"]), "seed": int(m["seed"])}
        else:
            fields = dict.fromkeys(("maze", "episodes", "episode_len", "noise", "seed"))
        n = fields["episodes"] * (fields["episode_len"] - 1) if fields["episodes"] is not None else None
        rows.append({**fields, "path": str(path), "size": path.stat().st_size, "transitions": n, "ok": ok,
                     "reason": reason})
    return rows
