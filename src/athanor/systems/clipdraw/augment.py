"""Differentiable image augmentations of CLIPDraw: random perspective, then a random resized crop (PyTorch).

Source: "CLIPDraw" scores several augmented copies of the drawing at every step (4 by default): a random
perspective warp with distortion 0.5, filled with white, then a random resized crop of 70-90% of the area back to
the full size. Both are resamplings of the image through a sampling grid (``grid_sample``, bilinear), so the
gradient flows back to the drawing. Written here (not taken from an image library) so the system has no further
dependency; the draws follow the usual definitions:

- perspective: each corner of the image moves inward by a uniform fraction of d times the half-size (d the
  distortion, hw = (W - 1) / 2, hh = (H - 1) / 2): the top-left corner goes to (U(0, d hw), U(0, d hh)), the
  top-right to (W - 1 - U(0, d hw), U(0, d hh)), and so on; the homography H that maps the original corners onto
  the moved ones is solved from the 8 x 8 linear system of the four correspondences, and output pixel p takes the
  input at H^-1 p (outside the image: white).
- resized crop: area fraction s ~ U(scale) and log aspect ~ U(log ratio); the crop of side sqrt(s r) W by
  sqrt(s / r) H (clipped to the image) at a uniform position is resampled to the output size. Up to 10 draws are
  tried for a crop that fits (as is usual), else the centre crop of the whole image.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["homography", "perspective", "resized_crop", "augment"]


def homography(src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
    """The 3 x 3 projective map H (H[2, 2] = 1) with H src_i ~ dst_i for four point pairs (4, 2) each."""
    rows, rhs = [], []
    for (x, y), (u, v) in zip(src.tolist(), dst.tolist(), strict=True):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        rhs += [u, v]
    h = torch.linalg.solve(torch.tensor(rows, dtype=torch.float64), torch.tensor(rhs, dtype=torch.float64))
    return torch.cat([h, torch.ones(1, dtype=torch.float64)]).reshape(3, 3)


def _sample(img: torch.Tensor, xy: torch.Tensor, fill: float) -> torch.Tensor:
    """img (C, H, W) read at pixel coordinates xy (Ho, Wo, 2) (x, y of pixel centres at integers), bilinear;
    outside the image the value is ``fill``."""
    c, h, w = img.shape
    grid = torch.stack([(2 * xy[..., 0] + 1) / w - 1, (2 * xy[..., 1] + 1) / h - 1], -1).to(img.dtype)
    shifted = img - fill  # zero padding of (img - fill) is padding with fill
    out = F.grid_sample(shifted[None], grid[None], mode="bilinear", padding_mode="zeros", align_corners=False)
    return out[0] + fill


def _pixel_grid(h: int, w: int) -> torch.Tensor:
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64),
                            indexing="ij")
    return torch.stack([xs, ys], -1)


def perspective(img: torch.Tensor, distortion: float, generator: torch.Generator | None = None,
                fill: float = 1.0) -> torch.Tensor:
    """A random perspective warp of img (C, H, W) (see the module docstring)."""
    _, h, w = img.shape
    hw, hh = distortion * (w - 1) / 2, distortion * (h - 1) / 2
    r = torch.rand(8, generator=generator, dtype=torch.float64)
    corners = torch.tensor([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], dtype=torch.float64)
    moved = torch.stack([
        torch.stack([r[0] * hw, r[1] * hh]),
        torch.stack([w - 1 - r[2] * hw, r[3] * hh]),
        torch.stack([w - 1 - r[4] * hw, h - 1 - r[5] * hh]),
        torch.stack([r[6] * hw, h - 1 - r[7] * hh]),
    ])
    inverse = homography(moved, corners)  # output pixel -> input pixel
    p = _pixel_grid(h, w)
    q = torch.cat([p, torch.ones_like(p[..., :1])], -1) @ inverse.T
    return _sample(img, q[..., :2] / q[..., 2:], fill)


def resized_crop(img: torch.Tensor, scale: tuple[float, float] = (0.7, 0.9),
                 ratio: tuple[float, float] = (3 / 4, 4 / 3), generator: torch.Generator | None = None,
                 size: int | None = None) -> torch.Tensor:
    """A random crop of img (C, H, W) resampled to (C, size, size) (default: the input's height)."""
    _, h, w = img.shape
    size = size or h
    area = h * w
    crop = None
    for _ in range(10):
        u = torch.rand(4, generator=generator, dtype=torch.float64).tolist()
        s = scale[0] + u[0] * (scale[1] - scale[0])
        aspect = math.exp(math.log(ratio[0]) + u[1] * (math.log(ratio[1]) - math.log(ratio[0])))
        cw, ch = math.sqrt(s * area * aspect), math.sqrt(s * area / aspect)
        if cw <= w and ch <= h:
            crop = (u[2] * (w - cw), u[3] * (h - ch), cw, ch)
            break
    if crop is None:
        crop = (0.0, 0.0, float(w), float(h))
    x0, y0, cw, ch = crop
    # output pixel centre i maps to x0 + (i + 0.5) cw / size - 0.5 in input pixel coordinates
    g = (torch.arange(size, dtype=torch.float64) + 0.5) / size
    xs, ys = x0 + g * cw - 0.5, y0 + g * ch - 0.5
    xy = torch.stack(torch.broadcast_tensors(xs[None, :], ys[:, None]), -1)
    return _sample(img, xy, 1.0)


def augment(img: torch.Tensor, n: int, generator: torch.Generator | None = None, distortion: float = 0.5,
            scale: tuple[float, float] = (0.7, 0.9)) -> torch.Tensor:
    """``n`` augmented copies (n, C, H, W) of img (C, H, W): perspective, then resized crop, each drawn anew."""
    return torch.stack([resized_crop(perspective(img, distortion, generator), scale, generator=generator)
                        for _ in range(n)])
