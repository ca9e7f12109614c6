"""A differentiable rasteriser for open cubic Bezier strokes (PyTorch), for drawing by gradient descent.

Source: "CLIPDraw: Exploring Text-to-Drawing Synthesis through Language-Image Encoders", which renders with the
diffvg rasteriser. This is a different rasteriser with the same inputs (control points, stroke widths, RGBA
colours; strokes composited in order over a white canvas) written with plain tensor operations, so it installs
anywhere and runs on a CPU.

A stroke is K cubic Bezier segments sharing end points: control points q_0 .. q_3K (pixel coordinates, x right,
y down), segment k = (q_3k, q_3k+1, q_3k+2, q_3k+3),
    B_k(t) = (1 - t)^3 q_3k + 3 (1 - t)^2 t q_3k+1 + 3 (1 - t) t^2 q_3k+2 + t^3 q_3k+3,   t in [0, 1].
Each segment is sampled at ``samples`` + 1 evenly spaced t, giving a polyline. For the centre p of a pixel, d(p) is
its distance to the polyline (to the nearest of its little segments, clamped to their ends), and the stroke's
coverage there is
    cov(p) = clamp(w / 2 - d(p) + 1 / 2, 0, 1),
the area of the pixel inside a stroke of width w with round caps and joins, in the approximation that the stroke's
edge is straight across the pixel (a one-pixel linear ramp: the anti-aliasing). The stroke's alpha is
a_i(p) = alpha_i cov_i(p). Compositing "over" in drawing order on white gives, per channel,
    I(p) = sum_i a_i(p) c_i prod_{j > i} (1 - a_j(p)) + prod_j (1 - a_j(p)),
computed at once over all strokes with a reverse cumulative product, so the image is one differentiable
expression of the strokes. Gradients reach the control points and widths through d(p) and w in the ramp (where
0 < cov < 1, the stroke's edge), and the colours through I.

Only pixels near a stroke are computed: a cubic segment lies inside the convex hull of its control points, so
each stroke is evaluated on the square patch of ``patch`` x ``patch`` pixels that holds its control points'
bounding box widened by w / 2 + 1, on the smallest power-of-two side (at least 8, at most the canvas) that holds
it; strokes of one side are evaluated together. A stroke whose box exceeds a ``patch`` given by the caller is
clipped to it.

``to_svg`` writes the same strokes as SVG paths (round caps), for drawings that stay vectors.
"""

from __future__ import annotations

import torch

__all__ = ["bezier_polyline", "coverage", "render", "to_svg"]


def bezier_polyline(points: torch.Tensor, samples: int = 16) -> torch.Tensor:
    """Control points (N, 3K + 1, 2) -> polyline vertices (N, K * samples + 1, 2) along each stroke."""
    n, m, _ = points.shape
    if (m - 1) % 3 or m < 4:
        raise ValueError(f"a stroke needs 3K + 1 control points (K >= 1 cubic segments), got {m}")
    k = (m - 1) // 3
    t = torch.linspace(0, 1, samples + 1, dtype=points.dtype, device=points.device)[:-1]  # (S,)
    basis = torch.stack([(1 - t) ** 3, 3 * (1 - t) ** 2 * t, 3 * (1 - t) * t ** 2, t ** 3], dim=-1)  # (S, 4)
    idx = 3 * torch.arange(k, device=points.device)[:, None] + torch.arange(4, device=points.device)  # (K, 4)
    ctrl = points[:, idx]  # (N, K, 4, 2)
    body = torch.einsum("sj,nkjd->nksd", basis, ctrl).reshape(n, k * samples, 2)
    return torch.cat([body, points[:, -1:]], dim=1)


def _segment_distance(p: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Distance from points p (..., 2) to segments [a, b] (..., 2), broadcasting."""
    ab = b - a
    t = ((p - a) * ab).sum(-1) / ((ab * ab).sum(-1) + 1e-12)
    nearest = a + t.clamp(0, 1)[..., None] * ab
    return torch.sqrt(((p - nearest) ** 2).sum(-1) + 1e-12)


def _extents(points: torch.Tensor, widths: torch.Tensor):
    """Per stroke the pixel box of its control points widened by w / 2 + 1: (lo, hi), each (N, 2) as (x, y)."""
    half = widths.detach()[:, None] / 2 + 1
    return (points.detach().amin(dim=1) - half).floor(), (points.detach().amax(dim=1) + half).ceil()


def _patch_coverage(points, poly, widths, size: int, patch: int) -> torch.Tensor:
    """Coverage (n, size * size) of strokes evaluated on patch x patch pixels around their boxes."""
    n = points.shape[0]
    lo, hi = _extents(points, widths)
    origin = ((lo + hi) / 2 - patch / 2).round().clamp(0, size - patch).long()  # patches lie inside the canvas
    ar = torch.arange(patch, device=points.device)
    ys = origin[:, 1, None] + ar  # (n, P)
    xs = origin[:, 0, None] + ar
    centres = torch.stack(torch.broadcast_tensors(xs[:, None, :], ys[:, :, None]), dim=-1).to(points.dtype) + 0.5
    p = centres.reshape(n, patch * patch, 1, 2)
    d = _segment_distance(p, poly[:, None, :-1], poly[:, None, 1:]).amin(dim=-1)  # (n, P*P)
    cov = (widths[:, None] / 2 - d + 0.5).clamp(0, 1)
    flat = (ys[:, :, None] * size + xs[:, None, :]).reshape(n, -1)
    return torch.zeros(n, size * size, dtype=points.dtype, device=points.device).scatter_add(1, flat, cov)


def coverage(points: torch.Tensor, widths: torch.Tensor, size: int, *, samples: int = 16,
             patch: int | None = None) -> torch.Tensor:
    """Coverage (N, size, size) in [0, 1] of each stroke (control points (N, 3K + 1, 2), widths (N,)).

    With ``patch`` None, strokes are grouped by the power-of-two patch side (at least 8, at most the canvas) that
    holds their box, and each group is evaluated on its own side: a short stroke costs a small patch."""
    n = points.shape[0]
    poly = bezier_polyline(points, samples)  # (N, V, 2)
    if patch is not None:
        return _patch_coverage(points, poly, widths, size, min(patch, size)).reshape(n, size, size)
    lo, hi = _extents(points, widths)
    extent = (hi - lo).amax(dim=1).clamp(min=8)
    side = torch.clamp(2 ** torch.ceil(torch.log2(extent)), max=size).long()
    out = torch.zeros(n, size * size, dtype=points.dtype, device=points.device)
    for s in torch.unique(side).tolist():
        idx = torch.nonzero(side == s).squeeze(1)
        out = out.index_copy(0, idx, _patch_coverage(points[idx], poly[idx], widths[idx], size, int(s)))
    return out.reshape(n, size, size)


def render(points: torch.Tensor, widths: torch.Tensor, colours: torch.Tensor, size: int, *, samples: int = 16,
           patch: int | None = None) -> torch.Tensor:
    """Strokes composited in order over white: an image (3, size, size) in [0, 1].

    points (N, 3K + 1, 2) pixel coordinates, widths (N,) pixels, colours (N, 4) RGBA in [0, 1]."""
    if len(points) == 0:
        return torch.ones(3, size, size, dtype=points.dtype, device=points.device)
    a = coverage(points, widths, size, samples=samples, patch=patch) * colours[:, 3, None, None]  # (N, H, W)
    keep = 1 - a
    # prod_{j > i} (1 - a_j): a reverse cumulative product, shifted by one stroke
    after = torch.flip(torch.cumprod(torch.flip(keep, [0]), 0), [0])
    behind = torch.cat([after[1:], torch.ones_like(after[:1])], 0)
    weight = a * behind
    return torch.einsum("nhw,nc->chw", weight, colours[:, :3]) + after[0]


def to_svg(points, widths, colours, size: int) -> str:
    """The strokes as an SVG document (one path per stroke, round caps and joins, white background)."""
    pts = torch.as_tensor(points).detach().cpu().double()
    ws = torch.as_tensor(widths).detach().cpu().double()
    cs = torch.as_tensor(colours).detach().cpu().double().clamp(0, 1)
    lines = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" viewBox="0 0 {size} {size}">',
             f'<rect width="{size}" height="{size}" fill="white"/>']
    for q, w, c in zip(pts, ws, cs, strict=True):
        d = f"M {q[0, 0]:.2f} {q[0, 1]:.2f} " + " ".join(
            "C " + " ".join(f"{q[i, 0]:.2f} {q[i, 1]:.2f}" for i in range(j, j + 3)) for j in range(1, len(q), 3))
        r, g, b = (int(round(float(v) * 255)) for v in c[:3])
        lines.append(f'<path d="{d}" fill="none" stroke="rgb({r},{g},{b})" stroke-opacity="{float(c[3]):.3f}" '
                     f'stroke-width="{float(w):.2f}" stroke-linecap="round" stroke-linejoin="round"/>')
    lines.append("</svg>")
    return "\n".join(lines) + "\n"
