"""The ``clipdraw`` system: one drawing of one prompt, optimised step by step through the run loop (PyTorch).

The method is in ``draw.py`` (strokes, the source's Adam learning rates, schedule and clamps, the loss with
negative prompts), ``render.py`` (the rasteriser) and ``augment.py`` (perspective + resized crop). This module
holds the state (strokes, Adam, the augmentation generator, a few frames for the video), steps it
``inner_steps`` at a time, and scores the drawing with a second model that was never optimised against.

Scorers: ``scorer="offline"`` is the image-text model shipped with the package (``scorer.py``: trained here on the
emoji set against the MiniLM sentence encoder), ``scorer=PATH`` one saved by ``scorer.save_scorer``, and
``scorer="clip"`` or ``"clip:PATH"`` real CLIP ViT-B/32 on the user's weights (``clip.py``; with it, draw on
``size=224``, the source's canvas). The judge (``judge``, shipped, trained separately from another seed with other
widths) gives the evaluation:
    judge        cos(judge image embedding of the drawing, judge text embedding of the prompt)
    judge_margin judge minus the largest judge cosine to any other candidate (> 0: the judge names the prompt)
    judge_rank   the prompt's rank (1 = best) among ``candidates`` by the judge's similarity to the drawing
    score        the same cosine under the optimised scorer (what the loop raised), on the plain drawing
    score_aug    its mean over 16 fixed augmentations (what the loss saw)

Target-image mode (``target`` = an emoji's short name): the same strokes, optimiser and clamps fit the emoji,
enlarged to the canvas, by the mean squared pixel error (``mse`` is the evaluation); no scorer is loaded.

Deviations from the source: the canvas is ``size`` = 128 pixels by default (the source: 224 for CLIP), since the
offline scorers read 32 x 32; the learning-rate schedule counts this run's ``steps``, as the source's does.
"""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import torch

from athanor.core import torchtools
from athanor.core.artifacts import Heatmap, Svg
from athanor.core.config import TrainConfig, param
from athanor.core.errors import ConfigError, DataError
from athanor.core.seeds import derive
from athanor.systems.clipdraw import draw
from athanor.systems.clipdraw.augment import augment
from athanor.systems.clipdraw.render import render, to_svg

runtime_info = torchtools.runtime_info
block = torchtools.block
THROUGHPUT_UNIT = "steps"

FRAMES = 60  # frames kept for the optimisation video (evenly spaced over the run)
CANDIDATES = ("red apple, cat face, house, sun with face, rocket, pine tree, fish, bicycle, ghost, "
              "grinning face, snowman, sailboat")


@dataclasses.dataclass(frozen=True)
class Config(TrainConfig):
    steps: int = 1000  # source: 1000 iterations
    inner_steps: int = 10  # optimisation steps per run-loop step (one frame of the video at most per call)
    eval_every: int = 250
    ckpt_every: int = 250
    prompt: str = param("red apple", doc="what to draw")
    negatives: str = param("", doc="comma-separated negative prompts (source: weight 0.3 each)")
    candidates: str = param(CANDIDATES, doc="comma-separated prompts the judge ranks the drawing's prompt among")
    strokes: int = param(256, lo=1)  # source: 256
    segments: int = param(3, lo=1)  # source: 1-3 cubic segments per stroke (3 here for all; draw.py)
    size: int = param(128, lo=16)  # canvas side in pixels (source: 224 for CLIP; see the module docstring)
    augmentations: int = param(4, lo=0)  # source: 4 augmented copies per step; 0 = the plain drawing
    target: str = param("", doc="an emoji short name: fit the strokes to that picture by pixel error instead")
    scorer: str = param("offline", doc="'offline' (shipped), 'clip' or 'clip:PATH' (CLIP ViT-B/32, the user's "
                                       "weights; clip.py), or the path of a saved scorer file")
    clip_vocab: str = param("", doc="CLIP's bpe_simple_vocab_16e6.txt.gz; default: the installed open_clip's")
    clip_activation: str = param("quickgelu", choices=("quickgelu", "gelu"),
                                 doc="CLIP's MLP activation: quickgelu for OpenAI's weights, gelu for open_clip's")
    judge: str = param("judge", doc="'judge' (shipped) or the path of a saved scorer file")


PRESETS = {
    "tiny": {"steps": 20, "inner_steps": 5, "eval_every": 10, "ckpt_every": 10, "strokes": 8, "size": 32,
             "augmentations": 2},
    "quick": {"steps": 250, "eval_every": 250, "ckpt_every": 250, "strokes": 64},
    "full": {},
}


def _split(text: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in text.split(",") if t.strip())


def _load(which: str, size: int, cfg=None):
    from athanor.systems.clipdraw.scorer import SPECS, load_scorer

    if which == "clip" or which.startswith("clip:"):
        from athanor.systems.clipdraw.clip import load_clip

        try:
            return load_clip(which.partition(":")[2] or None, cfg.clip_vocab or None, cfg.clip_activation)
        except FileNotFoundError as e:
            raise DataError(str(e)) from e
    if which == "offline":
        which = "scorer"
    return load_scorer(which, size=size) if which in SPECS else load_scorer(path=which, size=size)


def target_image(short_name: str, size: int) -> torch.Tensor:
    """The emoji ``short_name`` composited over white and enlarged to (3, size, size) (bilinear)."""
    from athanor.data.emoji import load_emoji
    from athanor.systems.clipdraw.scorer import emoji_on_white

    emoji = load_emoji()
    try:
        i = emoji.index(short_name)
    except KeyError as e:
        raise ConfigError(str(e.args[0]) if e.args else f"unknown emoji {short_name!r}") from e
    img = emoji_on_white(emoji.images[i:i + 1])
    return torch.nn.functional.interpolate(img, size=(size, size), mode="bilinear", align_corners=False)[0]


def load_data(cfg, seed):
    if cfg.target:
        return {"target": target_image(cfg.target, cfg.size)}
    if not cfg.prompt.strip():
        raise ConfigError("prompt is empty: give the text to draw, e.g. --set prompt='red apple'")
    candidates = _split(cfg.candidates)
    if cfg.prompt not in candidates:
        candidates = (cfg.prompt, *candidates)
    scorer, judge = _load(cfg.scorer, cfg.size, cfg), _load(cfg.judge, cfg.size, cfg)
    unit = torch.nn.functional.normalize
    with torch.no_grad():
        negatives = _split(cfg.negatives)
        return {"scorer": scorer, "judge": judge, "text": unit(scorer.encode_text([cfg.prompt]), dim=-1),
                "negatives": unit(scorer.encode_text(list(negatives)), dim=-1) if negatives else None,
                "candidates": candidates, "judge_text": unit(judge.encode_text(list(candidates)), dim=-1)}


@dataclasses.dataclass
class State:
    strokes: draw.Strokes
    opt: torch.optim.Optimizer
    gen: torch.Generator  # augmentation draws
    step: int
    frames: torch.Tensor  # (F, size, size, 3) uint8, the drawing at evenly spaced steps


def init(cfg, seed, data):
    strokes = draw.init_strokes(cfg.strokes, cfg.size, cfg.segments, torchtools.generator(derive(seed, 0)))
    opt, _ = draw.make_optimiser(strokes, cfg.steps)
    return State(strokes, opt, torchtools.generator(derive(seed, 1)), 0,
                 torch.zeros(0, cfg.size, cfg.size, 3, dtype=torch.uint8))


def _image(strokes: draw.Strokes, size: int) -> torch.Tensor:
    return render(strokes.points, strokes.widths, strokes.colours, size)


def _uint8(img: torch.Tensor) -> torch.Tensor:
    return (img.detach().clamp(0, 1).permute(1, 2, 0) * 255).round().to(torch.uint8)


def _frame_due(step: int, steps: int) -> bool:
    """Whether the drawing after ``step`` updates goes into the video (FRAMES evenly spaced, the first and last)."""
    marks = {round(i * steps / (FRAMES - 1)) for i in range(FRAMES)}
    return step in marks


def step(state, data, cfg):
    state = copy.deepcopy(state)
    s, losses, frames = state.strokes, [], []
    if state.step == 0:
        frames.append(_uint8(_image(s, cfg.size)))
    for _ in range(cfg.inner_steps):
        factor = draw.schedule_factor(state.step, cfg.steps)
        for group, name in zip(state.opt.param_groups, ("points", "widths", "colours"), strict=True):
            group["lr"] = draw.LR[name] * factor
        img = _image(s, cfg.size)
        if "target" in data:
            loss = ((img - data["target"]) ** 2).mean()
        else:
            batch = augment(img, cfg.augmentations, state.gen) if cfg.augmentations else img[None]
            loss = draw.prompt_loss(data["scorer"], batch, data["text"], data["negatives"])
        state.opt.zero_grad()
        loss.backward()
        state.opt.step()
        draw.clamp_(s)
        state.step += 1
        losses.append(loss.item())
        if _frame_due(state.step, cfg.steps):
            with torch.no_grad():
                frames.append(_uint8(_image(s, cfg.size)))
    if frames:
        state.frames = torch.cat([state.frames, torch.stack(frames)])
    return state, {"loss": float(np.mean(losses))}


@torch.no_grad()
def evaluate(state, data, cfg, seed):
    img = _image(state.strokes, cfg.size)
    if "target" in data:
        return {"mse": float(((img - data["target"]) ** 2).mean())}
    def embed(images):
        return torch.nn.functional.normalize(data["scorer"].encode_image(images), dim=-1)

    score = float(embed(img[None]) @ data["text"][0])
    score_aug = float((embed(augment(img, 16, torchtools.generator(seed))) @ data["text"][0]).mean())
    sims = _judge_similarities(state, data, cfg)
    own = data["candidates"].index(cfg.prompt)
    others = torch.cat([sims[:own], sims[own + 1:]])
    return {"score": score, "score_aug": score_aug, "judge": float(sims[own]),
            "judge_margin": float(sims[own] - others.max()) if len(others) else float(sims[own]),
            "judge_rank": float((sims > sims[own]).sum() + 1), "judge_top1": float(bool((sims <= sims[own]).all())),
            "candidates": float(len(data["candidates"]))}


@torch.no_grad()
def _judge_similarities(state, data, cfg) -> torch.Tensor:
    """The judge's cosine similarity of the drawing to each candidate prompt (C,)."""
    img = _image(state.strokes, cfg.size)
    return (torch.nn.functional.normalize(data["judge"].encode_image(img[None]), dim=-1) @ data["judge_text"].T)[0]


def artifacts(state, data, cfg, seed):
    s = state.strokes
    out = {"drawing": _uint8(_image(s, cfg.size)).numpy(),
           "strokes": Svg(to_svg(s.points, s.widths, s.colours, cfg.size))}
    if "target" in data:
        out["target"] = _uint8(data["target"]).numpy()
    else:
        sims = _judge_similarities(state, data, cfg).numpy()[None]
        out["judge_similarity"] = Heatmap(sims, [cfg.prompt], list(data["candidates"]),
                                          "judge's cosine similarity to each candidate prompt", fmt=".2f")
    if len(state.frames) > 1:
        out["optimisation"] = state.frames.numpy()
    return out


def save_state(state):
    s = state.strokes
    return torchtools.tensors_to_bytes({"points": s.points, "widths": s.widths, "colours": s.colours,
                                        "rng": state.gen.get_state(), "step": torch.tensor(state.step),
                                        "frames": state.frames, **torchtools.optimizer_tensors(state.opt)})


def load_state(template, payload):
    t = torchtools.tensors_from_bytes(payload)
    s = template.strokes
    for name in ("points", "widths", "colours"):
        if t[name].shape != getattr(s, name).shape:
            raise ValueError(f"checkpoint {name} has shape {tuple(t[name].shape)}, this config's is "
                             f"{tuple(getattr(s, name).shape)}: resume with the run's own config")
        with torch.no_grad():
            getattr(s, name).copy_(t[name])
    template.gen.set_state(t["rng"])
    template.step = int(t["step"])
    template.frames = t["frames"].clone()
    torchtools.load_optimizer_tensors(template.opt, t)
    return template
