"""CLIPDraw's augmentations: exact homographies, identities at zero strength, white fill, gradients, determinism."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from athanor.systems.clipdraw import augment as A  # noqa: E402


def _image(seed=0, size=24):
    return torch.rand(3, size, size, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_homography_maps_the_four_points_exactly():
    src = torch.tensor([[0.0, 0], [23, 0], [23, 23], [0, 23]], dtype=torch.float64)
    dst = torch.tensor([[3.0, 1], [20, 4], [22, 21], [1, 19]], dtype=torch.float64)
    h = A.homography(src, dst)
    q = torch.cat([src, torch.ones(4, 1, dtype=torch.float64)], 1) @ h.T
    assert torch.allclose(q[:, :2] / q[:, 2:], dst, atol=1e-9)


def test_zero_strength_augmentations_are_the_identity():
    img = _image()
    assert torch.allclose(A.perspective(img, 0.0), img, atol=1e-9)
    assert torch.allclose(A.resized_crop(img, scale=(1.0, 1.0), ratio=(1.0, 1.0)), img, atol=1e-9)


def test_perspective_fills_white_outside_and_keeps_the_centre():
    img = torch.zeros(3, 33, 33, dtype=torch.float64)
    out = A.perspective(img, 0.5, torch.Generator().manual_seed(3))
    assert float(out[:, 16, 16].max()) == pytest.approx(0.0)  # the centre still shows the (black) image
    corners = out[:, [0, 0, -1, -1], [0, -1, 0, -1]]
    assert float(corners.mean()) > 0.5  # corners moved inward: white shows there


def test_crop_magnifies_by_the_drawn_area():
    # a horizontal ramp: a square crop of a fraction s of the area spans sqrt(s) of the width
    ramp = torch.linspace(0, 1, 48, dtype=torch.float64).expand(3, 48, 48).clone()
    spans = []
    for seed in range(20):
        out = A.resized_crop(ramp, scale=(0.49, 0.49), ratio=(1.0, 1.0), generator=torch.Generator().manual_seed(seed))
        spans.append(float(out[0, 24, -1] - out[0, 24, 0]))
    # sampled at pixel centres, a linear ramp reads back exactly: every crop of side 0.7 spans 0.7 of the ramp
    assert spans == pytest.approx([0.7] * len(spans), abs=1e-9)


def test_gradients_flow_and_draws_are_deterministic():
    img = _image(1).requires_grad_()
    out = A.augment(img, 3, torch.Generator().manual_seed(7))
    assert out.shape == (3, 3, 24, 24)
    out.sum().backward()
    assert img.grad.abs().sum() > 0
    again = A.augment(img.detach(), 3, torch.Generator().manual_seed(7))
    assert torch.allclose(out.detach(), again)
    other = A.augment(img.detach(), 3, torch.Generator().manual_seed(8))
    assert not torch.allclose(out.detach(), other)


@pytest.mark.parametrize("fn", [lambda x, g: A.perspective(x, 0.5, g), lambda x, g: A.resized_crop(x, generator=g)])
def test_a_batch_is_its_images_one_at_a_time(fn):
    # in a batch each image gets its own draws, in order: the same as augmenting the images one by one
    batch = torch.stack([_image(s, 16) for s in range(5)])
    g1, g2 = torch.Generator().manual_seed(11), torch.Generator().manual_seed(11)
    together = fn(batch, g1)
    alone = torch.stack([fn(x, g2) for x in batch])
    assert torch.allclose(together, alone, atol=1e-12)
    assert not torch.allclose(together[0], together[1])


def test_homography_batches():
    src = torch.tensor([[0.0, 0], [9, 0], [9, 9], [0, 9]], dtype=torch.float64)
    dst = src + torch.rand(3, 4, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    h = A.homography(src.expand(3, 4, 2), dst)
    for i in range(3):
        assert torch.allclose(h[i], A.homography(src, dst[i]), atol=1e-12)
