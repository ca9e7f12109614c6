"""The stroke optimiser: the source's learning rates and schedule, clamps, initial strokes, and the target-image
mode fitting a picture made of strokes."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from athanor.systems.clipdraw import draw as D  # noqa: E402
from athanor.systems.clipdraw.render import render  # noqa: E402


def test_initial_strokes_are_short_random_walks():
    s = D.init_strokes(64, 224, segments=3, generator=torch.Generator().manual_seed(0))
    assert s.points.shape == (64, 10, 2) and s.widths.shape == (64,) and s.colours.shape == (64, 4)
    steps = (s.points[:, 1:] - s.points[:, :-1]).detach().abs()
    assert float(steps.max()) <= D.WALK * 224 + 1e-4
    assert bool((s.widths == 1).all()) and all(t.requires_grad for t in s.params())


def test_learning_rates_and_schedule_follow_the_source():
    s = D.init_strokes(4, 32, generator=torch.Generator().manual_seed(0))
    opt, schedule = D.make_optimiser(s, steps=100)
    seen = {}
    for step in range(100):
        seen[step] = [g["lr"] for g in opt.param_groups]
        opt.step()
        schedule.step()
    assert seen[0] == [1.0, 0.1, 0.01]
    assert seen[49] == [1.0, 0.1, 0.01]
    assert seen[50] == pytest.approx([0.4, 0.04, 0.004])
    assert seen[75] == pytest.approx([0.1, 0.01, 0.001])


def test_clamps():
    s = D.init_strokes(3, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        s.widths.copy_(torch.tensor([0.2, 7.0, 80.0]))
        s.colours.copy_(torch.tensor([[-1.0, 0.5, 2.0, 0.3]] * 3))
    D.clamp_(s)
    assert s.widths.tolist() == [1.0, 7.0, 50.0]
    assert s.colours[0].tolist() == pytest.approx([0.0, 0.5, 1.0, 0.3])


def test_target_mode_reproduces_a_picture_of_strokes():
    g = torch.Generator().manual_seed(2)
    size = 32
    truth = D.init_strokes(6, size, generator=g, dtype=torch.float64).detached()
    truth.widths.fill_(4.0)
    truth.colours[:, 3] = 1.0
    target = render(truth.points, truth.widths, truth.colours, size)
    _, errors = D.fit_image(target, 24, 150, generator=torch.Generator().manual_seed(3))
    assert len(errors) == 151
    assert errors[-1] < 0.3 * errors[0]  # most of the error is gone


class ColourScorer:
    """A toy image-text model whose space is colour: an image embeds as its mean colour minus grey, a text as the
    direction of the colour it names."""

    size = 32
    NAMES = {"red": (1.0, -1.0, -1.0), "green": (-1.0, 1.0, -1.0), "blue": (-1.0, -1.0, 1.0)}

    def encode_image(self, images):
        return images.mean(dim=(2, 3)) - 0.5

    def encode_text(self, texts):
        return torch.tensor([self.NAMES[t] for t in texts], dtype=torch.float32)


def test_prompt_loss_closed_forms():
    sc = ColourScorer()
    red = torch.zeros(2, 3, 32, 32)
    red[:, 0] = 1.0  # mean colour minus grey: (0.5, -0.5, -0.5), the direction of "red"
    text = sc.encode_text(["red"])
    assert float(D.prompt_loss(sc, red, text)) == pytest.approx(-1.0, abs=1e-6)
    blue = sc.encode_text(["blue"])
    # cos(red, blue) = (-1 + 1 - 1) / 3 = -1/3, weighted by 0.3
    assert float(D.prompt_loss(sc, red, text, blue)) == pytest.approx(-1.0 - 0.3 / 3, abs=1e-6)


def test_the_loop_draws_towards_the_prompt():
    sc = ColourScorer()

    def redness(strokes):
        img = render(strokes.points, strokes.widths, strokes.colours, sc.size)
        return float(img[0].mean() - img[1:].mean())

    g = torch.Generator().manual_seed(4)
    before = redness(D.init_strokes(32, sc.size, generator=torch.Generator().manual_seed(4)).detached())
    strokes, losses = D.draw_prompt(sc, "red", 32, 60, negatives=("blue",), augmentations=2, generator=g)
    assert len(losses) == 60 and losses[-1] < losses[0]
    assert redness(strokes) > before + 0.05
