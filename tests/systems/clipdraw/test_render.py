"""The Bezier rasteriser against closed forms: straight strokes' coverage integrates to their width, compositing
follows the over operator, gradients match finite differences, patches lose nothing, SVG says the same."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import pytest

torch = pytest.importorskip("torch")

from athanor.systems.clipdraw import render as R  # noqa: E402


def _line(x0, y0, x1, y1, k=1, dtype=torch.float64):
    """Control points of a straight stroke of k segments with evenly spaced control points."""
    t = torch.linspace(0, 1, 3 * k + 1, dtype=dtype)
    return torch.stack([x0 + t * (x1 - x0), y0 + t * (y1 - y0)], -1)[None]


def test_polyline_of_a_straight_control_polygon_lies_on_the_line():
    pts = _line(3.0, 5.0, 40.0, 25.0, k=2)
    poly = R.bezier_polyline(pts, samples=8)
    assert poly.shape == (1, 17, 2)
    assert torch.allclose(poly[0, 0], pts[0, 0]) and torch.allclose(poly[0, -1], pts[0, -1])
    # on the line through the end points: cross product with the direction vanishes
    d = pts[0, -1] - pts[0, 0]
    rel = poly[0] - pts[0, 0]
    assert torch.allclose(rel[:, 0] * d[1] - rel[:, 1] * d[0], torch.zeros(17, dtype=torch.float64), atol=1e-9)
    with pytest.raises(ValueError, match="3K"):
        R.bezier_polyline(torch.zeros(1, 5, 2))


@pytest.mark.parametrize("width, y", [(4.0, 16.5), (3.0, 16.0), (4.6, 20.3), (1.2, 9.75)])
def test_straight_stroke_coverage_sums_to_its_width_across(width, y):
    # a horizontal stroke: across any column in its middle, the coverage sums exactly to the width (a box of
    # width w blurred by the one-pixel ramp, sampled at unit spacing, sums to w)
    pts = _line(8.0, y, 56.0, y)
    cov = R.coverage(pts, torch.tensor([width], dtype=torch.float64), 64)[0]
    for col in (20, 31, 44):
        assert float(cov[:, col].sum()) == pytest.approx(width, abs=1e-9)
    assert float(cov.max()) <= 1.0 and float(cov.min()) >= 0.0


def test_area_of_a_stroke_is_length_times_width_plus_round_caps():
    w, length = 5.0, 40.0
    cov = R.coverage(_line(12.0, 30.2, 12.0 + length, 30.2), torch.tensor([w], dtype=torch.float64), 64)[0]
    assert float(cov.sum()) == pytest.approx(length * w + math.pi * (w / 2) ** 2, rel=0.01)


def test_compositing_is_over_in_drawing_order_on_white():
    size = 32
    blank = R.render(torch.zeros(0, 4, 2), torch.zeros(0), torch.zeros(0, 4), size)
    assert torch.equal(blank, torch.ones(3, size, size))
    pts = torch.cat([_line(4.0, 16.5, 28.0, 16.5), _line(16.5, 4.0, 16.5, 28.0)])
    widths = torch.tensor([6.0, 6.0], dtype=torch.float64)
    red_then_blue = torch.tensor([[1, 0, 0, 1], [0, 0, 1, 1]], dtype=torch.float64)
    img = R.render(pts, widths, red_then_blue, size)
    assert torch.allclose(img[:, 16, 16], torch.tensor([0.0, 0, 1], dtype=torch.float64))  # blue on top
    assert torch.allclose(img[:, 16, 6], torch.tensor([1.0, 0, 0], dtype=torch.float64))  # red alone
    assert torch.allclose(img[:, 2, 2], torch.ones(3, dtype=torch.float64))  # white where nothing is
    half = torch.tensor([[1, 0, 0, 0.5], [0, 0, 1, 0.5]], dtype=torch.float64)
    img = R.render(pts, widths, half, size)
    # blue at alpha 0.5 over (red at 0.5 over white): 0.5 blue + 0.5 (0.5 red + 0.5 white)
    assert torch.allclose(img[:, 16, 16], torch.tensor([0.5, 0.25, 0.75], dtype=torch.float64))


def test_patches_lose_nothing():
    g = torch.Generator().manual_seed(0)
    pts = torch.rand(12, 7, 2, generator=g, dtype=torch.float64) * 40 + 4
    widths = torch.rand(12, generator=g, dtype=torch.float64) * 5 + 1
    cols = torch.rand(12, 4, generator=g, dtype=torch.float64)
    small = R.render(pts, widths, cols, 48)
    whole = R.render(pts, widths, cols, 48, patch=48)
    assert torch.allclose(small, whole, atol=1e-12)


def test_gradients_match_finite_differences():
    g = torch.Generator().manual_seed(1)
    pts = (torch.rand(2, 4, 2, generator=g, dtype=torch.float64) * 8 + 2).requires_grad_()
    widths = (torch.rand(2, generator=g, dtype=torch.float64) * 2 + 1.5).requires_grad_()
    cols = (torch.rand(2, 4, generator=g, dtype=torch.float64) * 0.8 + 0.1).requires_grad_()
    weights = torch.rand(3, 12, 12, generator=g, dtype=torch.float64)

    def f(p, w, c):
        return (R.render(p, w, c, 12, samples=6, patch=12) * weights).sum()

    assert torch.autograd.gradcheck(f, (pts, widths, cols), eps=1e-6, atol=1e-5, rtol=1e-4)
    f(pts, widths, cols).backward()
    assert pts.grad.abs().sum() > 0 and widths.grad.abs().sum() > 0


def test_svg_holds_the_same_strokes():
    pts = torch.cat([_line(4.0, 5.0, 20.0, 25.0, k=2), _line(30.0, 5.0, 10.0, 15.0, k=2)])
    svg = R.to_svg(pts, torch.tensor([3.0, 7.5]), torch.tensor([[1.0, 0.5, 0, 1], [0, 0, 1, 0.25]]), 32)
    root = ET.fromstring(svg)
    paths = [e for e in root if e.tag.endswith("path")]
    assert len(paths) == 2
    assert paths[0].get("d").startswith("M 4.00 5.00 C") and paths[0].get("d").count("C") == 2
    assert paths[1].get("stroke-width") == "7.50" and paths[1].get("stroke") == "rgb(0,0,255)"
    assert float(paths[1].get("stroke-opacity")) == pytest.approx(0.25)
    assert paths[0].get("stroke-linecap") == "round"


def _dense_over(cov, colours):
    """The over operator on every layer of every pixel: a reverse cumulative product over all N strokes."""
    a = cov * colours[:, 3, None, None]
    after = torch.flip(torch.cumprod(torch.flip(1 - a, [0]), 0), [0])
    behind = torch.cat([after[1:], torch.ones_like(after[:1])], 0)
    return torch.einsum("nhw,nc->chw", a * behind, colours[:, :3]) + after[0]


def test_sparse_compositing_equals_the_dense_over_operator_with_its_gradients():
    g = torch.Generator().manual_seed(5)
    cov = torch.rand(9, 7, 6, generator=g, dtype=torch.float64)
    cov = torch.where(cov < 0.5, torch.zeros_like(cov), cov)  # most strokes absent at most pixels
    cov[3, 2, 2] = 1.0  # with alpha 1 below: an opaque layer hides what lies under it, with exact gradients
    cov[:, 0, 0] = 0.0  # a pixel nothing covers stays white
    cov.requires_grad_()
    colours = torch.rand(9, 4, generator=g, dtype=torch.float64)
    colours[3, 3] = 1.0
    colours[5, 3] = 0.0  # an invisible stroke still learns from where it lies
    colours.requires_grad_()
    weights = torch.rand(3, 7, 6, generator=g, dtype=torch.float64)
    got, want = R.composite(cov, colours), _dense_over(cov, colours)
    assert torch.allclose(got, want, atol=1e-12) and torch.allclose(got[:, 0, 0], torch.ones(3, dtype=cov.dtype))
    gc, gk = torch.autograd.grad((got * weights).sum(), (cov, colours))
    wc, wk = torch.autograd.grad((want * weights).sum(), (cov, colours))
    present = cov.detach() > 0  # the dense gradient reaches absent layers too; where cov > 0 the two agree
    assert torch.allclose(gc[present], wc[present], atol=1e-12) and torch.allclose(gk, wk, atol=1e-12)
    assert gk[5, 3] != 0
