"""Videos: tile several clips into one (:func:`tile_videos`), and write a stack of frames to a file
(:func:`write_video`): H.264 mp4 through imageio's ffmpeg plugin, GIF if that fails.

The mp4 is encoded with libx264 in yuv420p, the pixel format every browser plays. yuv420p needs even
width and height, so odd frames are padded by one edge-replicated row/column rather than letting the
plugin resize them (which would blur pixel art). RGBA frames are composited over white first. The ffmpeg
binary ships with the ``imageio-ffmpeg`` wheel; if it is missing or encoding fails for any reason the
same frames are written as a looping GIF (Pillow), so a run never loses its video.

Writes are atomic: the file is encoded under a temporary name in the target folder and moved into place
with ``os.replace``, so a crash never leaves a half-written video under the final name. A stale sibling
with the other extension (e.g. an old ``.gif`` after a successful ``.mp4``) is removed so that a report
shows one video per name.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np

from athanor.viz.figures import image_grid, to_rgb_uint8

__all__ = ["write_video", "read_video_file", "tile_videos"]


def tile_videos(videos, ncols: int, pad: int = 4) -> np.ndarray:
    """Clips (T_k, H_k, W_k, C) of any sizes and lengths on a white grid of ``ncols`` columns -> (T, H', W', 3)
    uint8 with T = max T_k. A shorter clip holds its last frame; cells are laid out as in ``image_grid``."""
    clips = [np.asarray(v) for v in videos]
    if not clips or any(c.ndim != 4 or c.shape[0] == 0 for c in clips):
        raise ValueError(f"tile_videos() takes at least one clip of shape (T, H, W, C) with T >= 1, got "
                         f"{[c.shape for c in clips]}")
    t = max(c.shape[0] for c in clips)
    return np.stack([image_grid([c[min(k, c.shape[0] - 1)] for c in clips], nrow=ncols, pad=pad)
                     for k in range(t)])


def _check_frames(frames) -> np.ndarray:
    x = np.asarray(frames)
    if x.dtype != np.uint8:
        raise TypeError(f"write_video() takes uint8 frames, got dtype {x.dtype}; convert with "
                        "(np.clip(frames, 0, 1) * 255).round().astype(np.uint8)")
    if x.ndim != 4 or x.shape[-1] not in (3, 4) or min(x.shape[:3]) == 0:
        raise ValueError(f"write_video() takes frames of shape (T, H, W, 3|4) with T, H, W >= 1, "
                         f"got {x.shape}")
    return to_rgb_uint8(x)


def _pad_even(frames: np.ndarray) -> np.ndarray:
    _, h, w, _ = frames.shape
    return np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")


@contextlib.contextmanager
def _ffmpeg_child():
    """Silence JAX's warning about forking a threaded process while imageio starts ffmpeg: the child execs at
    once, so the deadlock that warning is about cannot happen."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning)
        yield


def read_video_file(path: str | os.PathLike) -> np.ndarray:
    """Every frame of an mp4 or gif file as an array (T, H, W, C); imageio's errors propagate."""
    import imageio.v3 as iio

    with _ffmpeg_child():
        return np.asarray(iio.imread(path, index=None))


def _write_mp4(path: Path, frames: np.ndarray, fps: float) -> None:
    import imageio.v2 as iio

    with _ffmpeg_child():
        writer = iio.get_writer(str(path), format="FFMPEG", mode="I", fps=fps, codec="libx264",
                                pixelformat="yuv420p", macro_block_size=1, ffmpeg_log_level="error")
        try:
            for frame in _pad_even(frames):
                writer.append_data(frame)
        finally:
            writer.close()


def _write_gif(path: Path, frames: np.ndarray, fps: float) -> None:
    import imageio.v3 as iio

    # Pillow's GIF writer takes the per-frame duration in milliseconds; loop=0 loops forever.
    iio.imwrite(path, frames, extension=".gif", duration=max(1, round(1000.0 / fps)), loop=0)


def _atomic(final: Path, write, frames: np.ndarray, fps: float) -> Path:
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.stem}.", suffix=final.suffix, dir=final.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp, frames, fps)
        if tmp.stat().st_size == 0:
            raise OSError(f"encoder wrote an empty file for {final.name}")
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
    return final


def write_video(path_without_ext: str | os.PathLike, frames, fps: float = 10) -> Path:
    """Write (T, H, W, 3|4) uint8 frames to ``<path>.mp4`` (or ``<path>.gif`` on failure); return the path."""
    if not fps > 0:
        raise ValueError(f"write_video(): fps must be > 0, got {fps}")
    rgb = _check_frames(frames)
    base = Path(path_without_ext)
    base.parent.mkdir(parents=True, exist_ok=True)
    mp4, gif = base.with_name(base.name + ".mp4"), base.with_name(base.name + ".gif")
    try:
        written = _atomic(mp4, _write_mp4, rgb, fps)
        gif.unlink(missing_ok=True)
    except Exception:  # noqa: BLE001 - any encoder failure (missing binary, codec, I/O) falls back to GIF
        written = _atomic(gif, _write_gif, rgb, fps)
        mp4.unlink(missing_ok=True)
    return written
