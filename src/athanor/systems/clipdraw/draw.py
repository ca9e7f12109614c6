"""CLIPDraw's optimisation of strokes: random initial strokes, Adam with the source's per-parameter learning rates
and schedule, clamps after every step, and the target-image mode (fit strokes to a picture with a pixel loss).

Source: "CLIPDraw" (settings from its paper and release): strokes of 1-3 cubic Bezier segments whose control points
start as a short random walk from a uniform point (steps of up to 0.05 of the canvas in each coordinate); Adam
with learning rate 1.0 on the points, 0.1 on the widths and 0.01 on the colours (the points are in pixels, the
others in their own units), all multiplied by 0.4 at half of the steps and by 0.1 at three quarters; after every
step widths are clamped to [1, 50] and colours to [0, 1]. The initial width 1 (the clamp's floor) and uniform
random RGBA colours are choices here.

Deviation: every stroke here has the same number of segments (``segments``, default 3), so strokes batch into one
tensor; a 1-segment stroke of the source is a 3-segment stroke whose inner points lie on one curve, which the
optimiser can reach.

``draw_prompt`` is the loop: render, make ``augmentations`` augmented copies (``augment.py``), embed them with an
image-text ``Scorer``, and minimise
    loss = -mean_a cos(f(aug_a(I)), g(prompt)) + 0.3 mean_{a, m} cos(f(aug_a(I)), g(negative_m)),
f and g the scorer's image and text encoders, then step and clamp.

``fit_image`` is the target-image mode: the same strokes, optimiser and clamps, with the mean squared pixel error
to a target image as the loss (no image-text model): it shows what the renderer and optimiser can reproduce, and
how the error falls with the number of strokes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Protocol

import torch
import torch.nn.functional as F

from athanor.systems.clipdraw.render import render

__all__ = ["Strokes", "Scorer", "init_strokes", "make_optimiser", "schedule_factor", "clamp_", "fit_image", "optimise",
           "prompt_loss", "draw_prompt", "LR", "WIDTH_RANGE", "NEGATIVE_WEIGHT"]

LR = {"points": 1.0, "widths": 0.1, "colours": 0.01}  # source: Adam learning rates per parameter
DECAY = ((0.5, 0.4), (0.75, 0.1))  # source: at this fraction of the steps, multiply the learning rates by this
WIDTH_RANGE = (1.0, 50.0)  # source: width clamp
WALK = 0.05  # source: largest step of the initial random walk, as a fraction of the canvas
NEGATIVE_WEIGHT = 0.3  # source: weight of each negative prompt's similarity in the loss


@dataclasses.dataclass
class Strokes:
    points: torch.Tensor  # (N, 3K + 1, 2) pixels
    widths: torch.Tensor  # (N,) pixels
    colours: torch.Tensor  # (N, 4) RGBA in [0, 1]

    def params(self) -> list[torch.Tensor]:
        return [self.points, self.widths, self.colours]

    def detached(self) -> Strokes:
        return Strokes(*(t.detach().clone() for t in self.params()))


def init_strokes(n: int, size: int, segments: int = 3, generator: torch.Generator | None = None,
                 dtype=torch.float32) -> Strokes:
    """``n`` random strokes on a ``size`` canvas (see the module docstring), with gradients on."""
    start = torch.rand(n, 1, 2, generator=generator, dtype=dtype) * size
    steps = (torch.rand(n, 3 * segments, 2, generator=generator, dtype=dtype) * 2 - 1) * WALK * size
    points = torch.cat([start, start + steps.cumsum(1)], 1)
    colours = torch.rand(n, 4, generator=generator, dtype=dtype)
    return Strokes(points.requires_grad_(), torch.ones(n, dtype=dtype).requires_grad_(), colours.requires_grad_())


def make_optimiser(strokes: Strokes, steps: int) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """Adam over the three parameter groups at the source's learning rates, and its step schedule."""
    opt = torch.optim.Adam([{"params": [strokes.points], "lr": LR["points"]},
                            {"params": [strokes.widths], "lr": LR["widths"]},
                            {"params": [strokes.colours], "lr": LR["colours"]}])

    return opt, torch.optim.lr_scheduler.LambdaLR(opt, lambda step: schedule_factor(step, steps))


def schedule_factor(step: int, steps: int) -> float:
    """The source's learning-rate multiplier at ``step`` of ``steps``: 1, then 0.4 from half-way, 0.1 from 3/4."""
    f = 1.0
    for at, mult in DECAY:
        if step >= int(at * steps):
            f = mult
    return f


@torch.no_grad()
def clamp_(strokes: Strokes) -> None:
    """The source's clamps, in place: widths to WIDTH_RANGE, colours to [0, 1]."""
    strokes.widths.clamp_(*WIDTH_RANGE)
    strokes.colours.clamp_(0.0, 1.0)


def fit_image(target: torch.Tensor, n: int, steps: int, generator: torch.Generator | None = None,
              segments: int = 3, callback: Callable[[int, float], None] | None = None) -> tuple[Strokes, list[float]]:
    """Fit ``n`` strokes to ``target`` (3, S, S) in [0, 1] by the mean squared pixel error; returns the strokes and
    the error before each step (and after the last)."""
    size = target.shape[-1]
    strokes = init_strokes(n, size, segments, generator, dtype=target.dtype)

    def error(s: Strokes) -> torch.Tensor:
        return ((render(s.points, s.widths, s.colours, size) - target) ** 2).mean()

    errors = optimise(strokes, steps, error, None if callback is None else lambda i, v, s: callback(i, v))
    with torch.no_grad():
        errors.append(float(error(strokes)))
    return strokes.detached(), errors


def optimise(strokes: Strokes, steps: int, loss_fn: Callable[[Strokes], torch.Tensor],
             callback: Callable[[int, float, Strokes], None] | None = None) -> list[float]:
    """``steps`` steps of the source's optimiser on ``loss_fn(strokes)``, clamping after each; the losses."""
    opt, schedule = make_optimiser(strokes, steps)
    losses = []
    for i in range(steps):
        opt.zero_grad()
        loss = loss_fn(strokes)
        loss.backward()
        opt.step()
        schedule.step()
        clamp_(strokes)
        losses.append(float(loss.detach()))
        if callback is not None:
            callback(i, losses[-1], strokes)
    return losses


class Scorer(Protocol):
    """An image-text model: unit-norm (or any) embeddings of images and of texts in one space."""

    size: int  # the image side it takes

    def encode_image(self, images: torch.Tensor) -> torch.Tensor: ...  # (B, 3, size, size) in [0, 1] -> (B, D)

    def encode_text(self, texts: list[str]) -> torch.Tensor: ...  # -> (T, D)


def prompt_loss(scorer: Scorer, images: torch.Tensor, text: torch.Tensor, negatives: torch.Tensor | None = None,
                negative_weight: float = NEGATIVE_WEIGHT) -> torch.Tensor:
    """The source's loss: minus the mean cosine similarity of the augmented images to the prompt, plus
    ``negative_weight`` times their mean cosine similarity to each negative prompt."""
    emb = F.normalize(scorer.encode_image(images), dim=-1)
    loss = -(emb @ F.normalize(text, dim=-1).reshape(-1)).mean()
    if negatives is not None and len(negatives):
        loss = loss + negative_weight * (emb @ F.normalize(negatives, dim=-1).T).mean()
    return loss


def draw_prompt(scorer: Scorer, prompt: str, n: int, steps: int, *, negatives: tuple[str, ...] = (),
                augmentations: int = 4, segments: int = 3, generator: torch.Generator | None = None,
                callback: Callable[[int, float, Strokes], None] | None = None) -> tuple[Strokes, list[float]]:
    """The CLIPDraw loop: ``n`` random strokes optimised for ``steps`` steps so that ``augmentations`` augmented
    copies of the drawing match ``prompt`` under ``scorer`` (0 augmentations: the drawing itself)."""
    from athanor.systems.clipdraw.augment import augment

    size = scorer.size
    with torch.no_grad():
        text = scorer.encode_text([prompt])
        neg = scorer.encode_text(list(negatives)) if negatives else None
    strokes = init_strokes(n, size, segments, generator)

    def loss(s: Strokes) -> torch.Tensor:
        img = render(s.points, s.widths, s.colours, size)
        batch = augment(img, augmentations, generator) if augmentations else img[None]
        return prompt_loss(scorer, batch, text, neg)

    losses = optimise(strokes, steps, loss, callback)
    return strokes.detached(), losses
