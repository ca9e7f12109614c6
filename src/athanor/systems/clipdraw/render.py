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
computed with a reverse cumulative product over the strokes that cover each pixel (``composite``: only the
covered (stroke, pixel) pairs, a few per cent of strokes x pixels in a drawing), so the image is one
differentiable expression of the strokes. Gradients reach the control points and widths through d(p) and w in
the ramp (where 0 < cov < 1, the stroke's edge), and the colours through I.

Only pixels near a stroke are computed. Since the ramp falls with distance, cov(p) is also the largest coverage
that any one of the polyline's little segments gives p, and a segment covers only pixels within w / 2 + 1 of it.
So each little segment is evaluated on its own square patch: the smallest power-of-two side (at least 4, at most
the canvas) that holds its box widened by w / 2 + 1, segments of one side together; a stroke's coverage is the
maximum over its segments (``scatter_reduce`` with "amax", whose gradient goes to the segment that attains it).
A thin stroke then costs a few hundred pixel-segment pairs per segment, whatever its length.

``to_svg`` writes the same strokes as SVG paths (round caps), for drawings that stay vectors.
"""

from __future__ import annotations

import torch

__all__ = ["bezier_polyline", "coverage", "composite", "render", "to_svg"]


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


def _segment_coverage(a, b, w, stroke, size: int, side: int):
    """Coverage of M polyline segments [a, b] (M, 2) of width w (M,), each on a side x side pixel patch around
    its box: (flat indices into N x size x size, coverage), both (M * side * side,)."""
    m = a.shape[0]
    half = w.detach()[:, None] / 2 + 1
    lo = torch.minimum(a, b).detach() - half
    hi = torch.maximum(a, b).detach() + half
    origin = ((lo + hi) / 2 - side / 2).round().clamp(0, size - side).long()  # patches lie inside the canvas
    ar = torch.arange(side, device=a.device)
    xs, ys = origin[:, 0, None] + ar, origin[:, 1, None] + ar  # (M, side)
    centres = torch.stack(torch.broadcast_tensors(xs[:, None, :], ys[:, :, None]), dim=-1).to(a.dtype) + 0.5
    d = _segment_distance(centres.reshape(m, side * side, 2), a[:, None], b[:, None])  # (M, side * side)
    cov = (w[:, None] / 2 - d + 0.5).clamp(0, 1)
    flat = stroke[:, None] * (size * size) + (ys[:, :, None] * size + xs[:, None, :]).reshape(m, -1)
    return flat.reshape(-1), cov.reshape(-1)


def coverage(points: torch.Tensor, widths: torch.Tensor, size: int, *, samples: int = 16,
             patch: int | None = None) -> torch.Tensor:
    """Coverage (N, size, size) in [0, 1] of each stroke (control points (N, 3K + 1, 2), widths (N,)).

    Each little segment of each stroke's polyline is evaluated on its own square patch, the smallest power-of-two
    side (at least 4, at most the canvas) that holds its box widened by w / 2 + 1, and a pixel's coverage is the
    largest any segment of the stroke gives it (the same as using the distance to the nearest segment, since the
    ramp falls with distance). ``patch`` evaluates every segment on a patch of that side instead (``size``: the
    whole canvas, the dense reference)."""
    n = points.shape[0]
    poly = bezier_polyline(points, samples)  # (N, V, 2)
    a, b = poly[:, :-1].reshape(-1, 2), poly[:, 1:].reshape(-1, 2)
    per = poly.shape[1] - 1
    stroke = torch.arange(n, device=points.device).repeat_interleave(per)
    w = widths.repeat_interleave(per)
    if patch is not None:
        sides = torch.full((len(a),), min(patch, size), dtype=torch.long)
    else:
        extent = ((torch.maximum(a, b) - torch.minimum(a, b)).detach().amax(dim=1) + w.detach() + 2).clamp(min=4)
        sides = torch.clamp(2 ** torch.ceil(torch.log2(extent)), max=size).long()
    flats, covs = [], []
    for side in torch.unique(sides).tolist():
        idx = torch.nonzero(sides == side).squeeze(1)
        f, c = _segment_coverage(a[idx], b[idx], w[idx], stroke[idx], size, int(side))
        flats.append(f)
        covs.append(c)
    out = torch.zeros(n * size * size, dtype=points.dtype, device=points.device)
    out = out.scatter_reduce(0, torch.cat(flats), torch.cat(covs), reduce="amax", include_self=True)
    return out.reshape(n, size, size)


def composite(cov: torch.Tensor, colours: torch.Tensor) -> torch.Tensor:
    """Strokes of coverage cov (N, H, W) and RGBA colour (N, 4) composited "over" in order on white ->
    (3, H, W); stroke i's alpha at a pixel is a_i = cov_i alpha_i.

    Only the (stroke, pixel) pairs with cov > 0 are touched (so a stroke whose alpha is 0 still gets a gradient
    there): they are sorted by pixel, then stroke, and each pixel's
    layers are laid in a row of a small table (pixels grouped by the power of two that holds their layer count),
    where prod_{j > i} (1 - a_j) is a reverse cumulative product along the row; ``torch.cumprod`` keeps the
    gradient exact when a layer is opaque (a = 1)."""
    n, h, w = cov.shape
    flat = cov.reshape(-1)
    nz = torch.nonzero(flat.detach() > 0).squeeze(1)  # stroke-major: index = stroke * HW + pixel
    stroke, pixel = nz // (h * w), nz % (h * w)
    order = torch.argsort(pixel * n + stroke)
    stroke, pixel = stroke[order], pixel[order]
    alpha = flat[nz[order]] * colours[stroke, 3]
    rgb = colours[:, :3]
    pixels, counts = torch.unique_consecutive(pixel, return_counts=True)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.arange(len(pixel), device=cov.device) - torch.repeat_interleave(starts, counts)
    side = torch.repeat_interleave(2 ** torch.ceil(torch.log2(counts.to(torch.float64))).long(), counts)
    colour = torch.zeros(3, h * w, dtype=cov.dtype, device=cov.device)
    background = torch.ones(h * w, dtype=cov.dtype, device=cov.device)
    for s in torch.unique(side).tolist():
        sel = torch.nonzero(side == s).squeeze(1)
        pix = pixel[sel]
        rows_of, row = torch.unique(pix, return_inverse=True)
        keep = torch.ones(len(rows_of), s + 1, dtype=cov.dtype, device=cov.device)
        keep = keep.index_put((row, rank[sel]), 1 - alpha[sel])
        after = torch.flip(torch.cumprod(torch.flip(keep, [1]), 1), [1])  # after[r, i] = prod_{j >= i} keep
        behind = after[row, rank[sel] + 1]  # prod over the layers above this one
        colour = colour.index_add(1, pix, (alpha[sel] * behind)[None] * rgb[stroke[sel]].T)
        background = background.index_put((rows_of,), after[:, 0])
    return (colour + background).reshape(3, h, w)


def render(points: torch.Tensor, widths: torch.Tensor, colours: torch.Tensor, size: int, *, samples: int = 16,
           patch: int | None = None) -> torch.Tensor:
    """Strokes composited in order over white: an image (3, size, size) in [0, 1].

    points (N, 3K + 1, 2) pixel coordinates, widths (N,) pixels, colours (N, 4) RGBA in [0, 1]."""
    if len(points) == 0:
        return torch.ones(3, size, size, dtype=points.dtype, device=points.device)
    return composite(coverage(points, widths, size, samples=samples, patch=patch), colours)


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
