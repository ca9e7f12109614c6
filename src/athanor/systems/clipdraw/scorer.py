"""The offline image-text scorer: a small convolutional image encoder trained here, contrastively, to meet the
frozen MiniLM sentence embedding (``text.py``) of each shipped emoji's name, so that CLIPDraw runs with no CLIP
weights. Two are shipped, trained the same way from different seeds and widths: ``scorer`` (the one drawings are
optimised against) and ``judge`` (used only to score the drawings afterwards, never optimised against).

Model. Text: t(s) = normalise(P m(s)), m the unit-norm MiniLM embedding (384), P a learned 384 x D map. Image:
the picture (3, S, S) in [0, 1] on white is area-resized to 32 x 32 (the emoji's own size), standardised
((x - 0.5) / 0.25), and passed through four stages of two 3 x 3 convolutions (the first of stride 2, except in
the first stage: 32, 16, 8, 4 pixels) with GroupNorm and GELU, then a global mean and a linear map to D:
f(x) = normalise(...).

Training (``train_scorer``): the 1,693 emoji of the train split (``data/emoji.py``; the 213 held out are never
seen), composited over white, each batch element drawn anew with CLIPDraw's own augmentation (random perspective
of distortion 0.5, then a random resized crop of 70-90% of the area: ``augment.py``) with probability 3/4, else
plain. Captions: the emoji's name in lower case. Loss: the symmetric InfoNCE of CLIP over the batch,
    L = (CE(s f_i . t_j, i) over j + CE(s f_i . t_j, j) over i) / 2,
with a learned temperature s = exp(tau) (tau initialised at log(1/0.07), capped at log 100), AdamW (lr 2e-3,
weight decay 0.05 on the weights, a cosine schedule times a linear warm-up over the first 100 steps). The
weights are then rounded to float16, the precision they ship in. Retrieval is reported on the held-out emoji: the
rank of each image's own name among the held-out names, and of each name's image among the held-out images.

Deviation: the source scores with CLIP ViT-B/32 at 224 x 224. This scorer sees 32 x 32 and has never seen a
drawing; what it rewards is learned from 1,693 emoji. It is an offline stand-in whose transfer to a second model
(the judge) is measured, not assumed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from athanor.systems.clipdraw.text import WIDTH as TEXT_WIDTH
from athanor.systems.clipdraw.text import load_minilm

__all__ = ["ScorerSpec", "ImageEncoder", "OfflineScorer", "train_scorer", "retrieval", "evaluate_retrieval",
           "save_scorer", "load_scorer", "info_nce", "SPECS", "WEIGHTS_DIR", "emoji_on_white", "captions"]

INPUT = 32  # the image encoder's input side (the emoji's own size)
WEIGHTS_DIR = Path(__file__).parent / "weights"


@dataclasses.dataclass(frozen=True)
class ScorerSpec:
    widths: tuple[int, ...] = (24, 48, 96, 192)
    dim: int = 128
    seed: int = 0
    steps: int = 2000
    batch: int = 256
    lr: float = 2e-3
    weight_decay: float = 0.05
    warmup: int = 100
    augment_prob: float = 0.75


# The shipped pair: different seeds and widths, the same data and recipe.
SPECS = {"scorer": ScorerSpec(seed=0), "judge": ScorerSpec(widths=(32, 64, 112, 160), seed=1)}


class ImageEncoder(torch.nn.Module):
    """Pictures (B, 3, S, S) in [0, 1] -> features (B, dim) (not normalised)."""

    def __init__(self, widths: tuple[int, ...], dim: int):
        super().__init__()
        layers, c = [], 3
        for i, w in enumerate(widths):
            layers += [torch.nn.Conv2d(c, w, 3, stride=1 if i == 0 else 2, padding=1), torch.nn.GroupNorm(8, w),
                       torch.nn.GELU(), torch.nn.Conv2d(w, w, 3, padding=1), torch.nn.GroupNorm(8, w),
                       torch.nn.GELU()]
            c = w
        self.body = torch.nn.Sequential(*layers)
        self.head = torch.nn.Linear(c, dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.shape[-1] != INPUT or images.shape[-2] != INPUT:
            images = F.interpolate(images, size=(INPUT, INPUT), mode="area")
        return self.head(self.body((images - 0.5) / 0.25).mean(dim=(-2, -1)))


class OfflineScorer(torch.nn.Module):
    """An image-text model in the ``draw.Scorer`` protocol: ``size`` is the canvas it is meant to draw on."""

    def __init__(self, spec: ScorerSpec, size: int = 128):
        super().__init__()
        self.spec, self.size = spec, size
        self.image = ImageEncoder(spec.widths, spec.dim)
        self.text_proj = torch.nn.Linear(TEXT_WIDTH, spec.dim, bias=False)
        self.log_scale = torch.nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.image(images), dim=-1)

    def encode_text(self, texts: list[str]) -> torch.Tensor:
        return self.embed_text(load_minilm()(list(texts)))

    def embed_text(self, minilm: torch.Tensor) -> torch.Tensor:
        """Projected unit-norm text embeddings from MiniLM embeddings (T, 384)."""
        return F.normalize(self.text_proj(minilm), dim=-1)


def emoji_on_white(rgba: np.ndarray) -> torch.Tensor:
    """uint8 RGBA (N, 32, 32, 4), straight alpha -> float (N, 3, 32, 32) composited over white."""
    x = torch.from_numpy(rgba.astype(np.float32) / 255.0).permute(0, 3, 1, 2)
    return x[:, :3] * x[:, 3:] + (1 - x[:, 3:])


def captions(names) -> list[str]:
    return [str(n).lower() for n in names]


def _augment_some(images: torch.Tensor, prob: float, generator: torch.Generator) -> torch.Tensor:
    """Each image augmented (``augment.augment_batch``) with probability ``prob``, else left as it is."""
    from athanor.systems.clipdraw.augment import augment_batch

    chosen = torch.rand(len(images), generator=generator) < prob
    return torch.where(chosen[:, None, None, None], augment_batch(images, generator), images)


def info_nce(img: torch.Tensor, txt: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
    """CLIP's symmetric contrastive loss for matched rows of unit-norm ``img`` and ``txt``."""
    logits = log_scale.clamp(max=math.log(100)).exp() * img @ txt.T
    labels = torch.arange(len(img))
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2


@torch.no_grad()
def retrieval(model: OfflineScorer, images: torch.Tensor, text_emb: torch.Tensor) -> dict[str, float]:
    """Top-1 / top-5 accuracy of image -> own caption and caption -> own image among the given set (row i of
    each belongs together), and the median rank (1 = first)."""
    sim = model.encode_image(images) @ model.embed_text(text_emb).T
    own = sim.diag()[:, None]
    rank_i2t = (sim > own).sum(1) + 1
    rank_t2i = (sim.T > own).sum(1) + 1  # row j of sim.T: caption j against every image; own[j] = sim[j, j]
    return {"i2t_top1": float((rank_i2t == 1).float().mean()), "i2t_top5": float((rank_i2t <= 5).float().mean()),
            "t2i_top1": float((rank_t2i == 1).float().mean()), "t2i_top5": float((rank_t2i <= 5).float().mean()),
            "i2t_median_rank": float(rank_i2t.float().median()), "n": len(images)}


def train_scorer(spec: ScorerSpec, emoji=None, log: Callable[[int, float], None] | None = None,
                 steps: int | None = None) -> tuple[OfflineScorer, dict]:
    """Train one scorer on the emoji's train split (module docstring); returns it and its held-out retrieval."""
    from athanor.data.emoji import load_emoji

    emoji = emoji or load_emoji()
    steps = spec.steps if steps is None else steps
    torch.manual_seed(spec.seed)
    gen = torch.Generator().manual_seed(spec.seed)
    model = OfflineScorer(spec)
    tr = emoji.train_indices()
    images = emoji_on_white(emoji.images)
    text = load_minilm()(captions(emoji.names))  # frozen: computed once
    decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    rest = [p for n, p in model.named_parameters() if p.ndim <= 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": spec.weight_decay},
                             {"params": rest, "weight_decay": 0.0}], lr=spec.lr)

    def lr_at(i):
        return spec.lr * min(1.0, (i + 1) / spec.warmup) * 0.5 * (1 + math.cos(math.pi * min(i / max(steps, 1), 1)))

    model.train()
    for i in range(steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(i)
        idx = torch.from_numpy(tr)[torch.randperm(len(tr), generator=gen)[:spec.batch]]
        x = _augment_some(images[idx], spec.augment_prob, gen)
        loss = info_nce(model.encode_image(x), model.embed_text(text[idx]), model.log_scale)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if log is not None:
            log(i, loss.item())
    model.eval()
    with torch.no_grad():  # round to the shipped precision, so the report describes the shipped weights
        for p in model.parameters():
            p.copy_(p.half().float())
    return model, {**evaluate_retrieval(model, emoji, text), "steps": steps}


def evaluate_retrieval(model: OfflineScorer, emoji=None, text: torch.Tensor | None = None) -> dict:
    """Retrieval among the held-out emoji, and among as many train emoji (the first ones of the split)."""
    from athanor.data.emoji import load_emoji

    emoji = emoji or load_emoji()
    text = load_minilm()(captions(emoji.names)) if text is None else text
    images = emoji_on_white(emoji.images)
    tr, ho = emoji.train_indices(), emoji.heldout_indices()
    return {"heldout": retrieval(model, images[ho], text[ho]),
            "train": retrieval(model, images[tr[:len(ho)]], text[tr[:len(ho)]])}


def save_scorer(model: OfflineScorer, path: Path) -> str:
    """Weights as float16 safetensors with the spec in the metadata; returns the file's sha256."""
    from safetensors.torch import save_file

    meta = {f.name: repr(getattr(model.spec, f.name)) for f in dataclasses.fields(model.spec)}
    save_file({k: v.detach().half().contiguous() for k, v in model.state_dict().items()}, str(path), metadata=meta)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_scorer(name: str = "scorer", path: str | Path | None = None, size: int = 128) -> OfflineScorer:
    """A shipped scorer (``scorer`` or ``judge``), or one saved at ``path`` with ``save_scorer``; the shipped
    files are checked against their recorded sha256."""
    import ast

    from safetensors import safe_open
    from safetensors.torch import load_file

    if path is None:
        if name not in SPECS:
            raise ValueError(f"unknown scorer {name!r}: choose one of {sorted(SPECS)} or give a path")
        path = WEIGHTS_DIR / f"{name}.safetensors"
        expected = (WEIGHTS_DIR / f"{name}.sha256").read_text().split()[0] if (
            WEIGHTS_DIR / f"{name}.sha256").is_file() else None
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: rebuild it with python scripts/train_clipdraw_scorers.py")
        if expected and hashlib.sha256(path.read_bytes()).hexdigest() != expected:
            raise ValueError(f"{path} does not match its sha256: the file is corrupt or was changed; reinstall the "
                             f"package or rebuild it with python scripts/train_clipdraw_scorers.py")
    path = Path(path)
    try:
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
        weights = load_file(str(path))
    except Exception as e:
        raise ValueError(f"{path} is not a readable scorer file ({e})") from e
    try:
        spec = ScorerSpec(**{k: ast.literal_eval(v) for k, v in meta.items()})
    except (TypeError, ValueError, SyntaxError) as e:
        raise ValueError(f"{path} has no valid scorer spec in its metadata ({e})") from e
    model = OfflineScorer(spec, size)
    model.load_state_dict({k: v.float() for k, v in weights.items()})
    return model.eval()
