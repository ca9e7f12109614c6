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

Every function takes one image (C, H, W) or a batch (B, C, H, W); in a batch each image gets its own draws, and
the whole batch is resampled in one ``grid_sample`` (the offline scorer's training augments 256 emoji a step).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["homography", "perspective", "resized_crop", "augment", "augment_batch"]

TRIES = 10  # crop draws tried before falling back to the whole image


def homography(src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
    """The 3 x 3 projective maps H (H[2, 2] = 1) with H src_i ~ dst_i for four point pairs (..., 4, 2) each."""
    src, dst = src.to(torch.float64), dst.to(torch.float64)
    x, y, u, v = src[..., 0], src[..., 1], dst[..., 0], dst[..., 1]
    o, z = torch.ones_like(x), torch.zeros_like(x)
    rows = torch.stack([torch.stack([x, y, o, z, z, z, -u * x, -u * y], -1),
                        torch.stack([z, z, z, x, y, o, -v * x, -v * y], -1)], -2)  # (..., 4, 2, 8)
    lead = x.shape[:-1]
    h = torch.linalg.solve(rows.reshape(*lead, 8, 8), torch.stack([u, v], -1).reshape(*lead, 8))
    return torch.cat([h, torch.ones(*lead, 1, dtype=torch.float64)], -1).reshape(*lead, 3, 3)


def _batched(fn):
    """Let ``fn`` (on (B, C, H, W)) take one image (C, H, W) too."""
    def wrapper(img, *args, **kwargs):
        if img.ndim == 3:
            return fn(img[None], *args, **kwargs)[0]
        return fn(img, *args, **kwargs)
    wrapper.__doc__, wrapper.__name__ = fn.__doc__, fn.__name__
    return wrapper


def _sample(img: torch.Tensor, xy: torch.Tensor, fill: float) -> torch.Tensor:
    """img (B, C, H, W) read at pixel coordinates xy (B, Ho, Wo, 2) (x, y of pixel centres at integers),
    bilinear; outside the image the value is ``fill``."""
    h, w = img.shape[-2:]
    grid = torch.stack([(2 * xy[..., 0] + 1) / w - 1, (2 * xy[..., 1] + 1) / h - 1], -1).to(img.dtype)
    shifted = img - fill  # zero padding of (img - fill) is padding with fill
    return F.grid_sample(shifted, grid, mode="bilinear", padding_mode="zeros", align_corners=False) + fill


def _pixel_grid(h: int, w: int) -> torch.Tensor:
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64),
                            indexing="ij")
    return torch.stack([xs, ys], -1)


@_batched
def perspective(img: torch.Tensor, distortion: float, generator: torch.Generator | None = None,
                fill: float = 1.0) -> torch.Tensor:
    """A random perspective warp of each image of img (see the module docstring)."""
    b, _, h, w = img.shape
    hw, hh = distortion * (w - 1) / 2, distortion * (h - 1) / 2
    r = torch.rand(b, 8, generator=generator, dtype=torch.float64)
    corners = torch.tensor([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], dtype=torch.float64)
    moved = torch.stack([r[:, 0] * hw, r[:, 1] * hh,
                         w - 1 - r[:, 2] * hw, r[:, 3] * hh,
                         w - 1 - r[:, 4] * hw, h - 1 - r[:, 5] * hh,
                         r[:, 6] * hw, h - 1 - r[:, 7] * hh], -1).reshape(b, 4, 2)
    inverse = homography(moved, corners.expand(b, 4, 2))  # output pixel -> input pixel
    p = _pixel_grid(h, w)
    q = torch.einsum("hwj,bij->bhwi", torch.cat([p, torch.ones_like(p[..., :1])], -1), inverse)
    return _sample(img, q[..., :2] / q[..., 2:], fill)


@_batched
def resized_crop(img: torch.Tensor, scale: tuple[float, float] = (0.7, 0.9),
                 ratio: tuple[float, float] = (3 / 4, 4 / 3), generator: torch.Generator | None = None,
                 size: int | None = None) -> torch.Tensor:
    """A random crop of each image of img resampled to size x size (default: the input's height)."""
    b, _, h, w = img.shape
    size = size or h
    u = torch.rand(b, TRIES, 4, generator=generator, dtype=torch.float64)
    s = scale[0] + u[..., 0] * (scale[1] - scale[0])
    aspect = torch.exp(math.log(ratio[0]) + u[..., 1] * (math.log(ratio[1]) - math.log(ratio[0])))
    cw, ch = torch.sqrt(s * h * w * aspect), torch.sqrt(s * h * w / aspect)
    fits = (cw <= w) & (ch <= h)
    first = torch.argmax(fits.to(torch.int64), dim=1)  # the first try that fits (0 when none does)
    pick = torch.arange(b)
    found = fits[pick, first]
    cw = torch.where(found, cw[pick, first], float(w))
    ch = torch.where(found, ch[pick, first], float(h))
    x0 = torch.where(found, u[pick, first, 2] * (w - cw), 0.0)
    y0 = torch.where(found, u[pick, first, 3] * (h - ch), 0.0)
    # output pixel centre i maps to x0 + (i + 0.5) cw / size - 0.5 in input pixel coordinates
    g = (torch.arange(size, dtype=torch.float64) + 0.5) / size
    xs = x0[:, None] + g * cw[:, None] - 0.5  # (B, size)
    ys = y0[:, None] + g * ch[:, None] - 0.5
    xy = torch.stack(torch.broadcast_tensors(xs[:, None, :], ys[:, :, None]), -1)
    return _sample(img, xy, 1.0)


def augment_batch(images: torch.Tensor, generator: torch.Generator | None = None, distortion: float = 0.5,
                  scale: tuple[float, float] = (0.7, 0.9)) -> torch.Tensor:
    """Each image of images (B, C, H, W) augmented once: perspective, then resized crop, drawn per image."""
    return resized_crop(perspective(images, distortion, generator), scale, generator=generator)


def augment(img: torch.Tensor, n: int, generator: torch.Generator | None = None, distortion: float = 0.5,
            scale: tuple[float, float] = (0.7, 0.9)) -> torch.Tensor:
    """``n`` augmented copies (n, C, H, W) of img (C, H, W): perspective, then resized crop, each drawn anew."""
    return augment_batch(img.expand(n, *img.shape), generator, distortion, scale)
