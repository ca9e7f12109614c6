"""`stampca`: one conditional NCA grows ~1,900 emoji from single seed cells, and MNIST digits from GAN latents.

Source: "StampCA: Growing Emoji with Conditional Neural Cellular Automata". Two runs: ``stampca`` (the emoji
autoencoder, ``systems/stampca/autoencoder.py``) and ``stampca-gan`` (the MNIST route: a GAN, then an NCA that
grows its digits, ``systems/stampca/mnist_gan.py``). The post shows videos and makes qualitative statements; the
claims below turn each into a number, with thresholds fixed here before any full run.

Claims. Each check is a per-seed quantity judged by its 95% t interval over seeds (``core/claims.py``: reproduced
when the interval clears the threshold, inconclusive when it straddles it, one seed is always inconclusive):
- grows_many_emoji: "A single network can grow many kinds of emoji". The mean per-emoji error after T = grow_max
  steps over the best constant image's (the per-pixel mean of the training emoji) is < 0.5, on the training
  emoji and on the held-out emoji the network never saw.
- distant_seeds_do_not_interfere: "two seeds won't interfere with each other, as long as they're placed far
  enough apart". In a 3 x 3 world of different emoji 40 cells apart (8 cells of empty space between the 32-cell
  designs), the window error with all seeds present over the same seeds grown alone is < 1.1.
- close_seeds_interfere: "If seeds are placed too close, weird behavior". At 16 cells apart the same ratio is
  > 1.5. (At that spacing the neighbours' designs overlap each window, so part of the excess is the overlap
  itself; the videos show what the dynamics do.)
- digits_recognisable: digits grown from fresh latents are recognisable and varied. The scoring classifier's mean
  top probability on them is > 0.8 (chance: 0.1), and the entropy of its predicted classes is > 2.5 bits (at most
  log2 10 = 3.32; a collapsed generator gives about 0).
- stable_past_horizon: designs persist past the training horizon: the error after 2T steps over that after T is
  < 1.25, for the emoji (training set) and for the digits (against the generator's image).
"""

from __future__ import annotations

from athanor.core.claims import Check, claim
from athanor.core.experiment import Analysis, RunSpec, paired, run_figures

SUMMARY = "a conditional NCA that grows any emoji from one seed cell, and MNIST digits from GAN latents"
SOURCE = "StampCA: Growing Emoji with Conditional Neural Cellular Automata"
SEEDS = {"tiny": 1, "quick": 1, "full": 3}
KEY_FIGURE = "emoji_target_vs_grown"

FAR, CLOSE = 40, 16  # spacings (cells) of the interference claims; the designs are 32 cells wide
RATIO_MAX = 0.5  # grows_many_emoji: error / best-constant error
FAR_MAX, CLOSE_MIN = 1.1, 1.5  # world error / alone error
CONFIDENCE_MIN, ENTROPY_MIN = 0.8, 2.5
DRIFT_MAX = 1.25  # error at 2T / error at T

FIGURES = {  # experiment artifact -> (run label, the run's figure)
    "emoji_target_vs_grown": ("emoji", "train_target_vs_grown"),
    "emoji_heldout_target_vs_grown": ("emoji", "heldout_target_vs_grown"),
    "emoji_interference": ("emoji", "interference"),
    "emoji_regeneration": ("emoji", "regeneration"),
    "emoji_category_errors": ("emoji", "category_errors"),
    "mnist_generator_vs_grown": ("mnist", "generator_vs_grown"),
    "emoji_world": ("emoji", "world"),  # videos
    "emoji_world_too_close": ("emoji", "world_too_close"),
    "emoji_word": ("emoji", "word"),
    "mnist_world": ("mnist", "world"),
}


def runs(scale: str) -> list[RunSpec]:
    return [RunSpec("stampca", "emoji"), RunSpec("stampca-gan", "mnist")]


def _ratio(a: str, b: str, label: str = "emoji"):
    return lambda f: f[label][a] / f[label][b]


def analyse(records, scale: str) -> Analysis:
    def check(name, fn, op, threshold):
        return Check(name, paired(records, fn), op, threshold)

    claims = [
        claim("grows_many_emoji", "One network grows many different emoji, including ones it never saw.",
              [check("train error / constant-image error", _ratio("train_mse", "train_constant_mse"), "<", RATIO_MAX),
               check("held-out error / constant-image error", _ratio("heldout_mse", "heldout_constant_mse"), "<",
                     RATIO_MAX)], scale),
        claim("distant_seeds_do_not_interfere", "Seeds placed far enough apart grow without interfering.",
              [check(f"world / alone error at spacing {FAR}", _ratio(f"world_mse_d{FAR}", f"alone_mse_d{FAR}"), "<",
                     FAR_MAX)], scale),
        claim("close_seeds_interfere", "Seeds placed too close interfere.",
              [check(f"world / alone error at spacing {CLOSE}", _ratio(f"world_mse_d{CLOSE}", f"alone_mse_d{CLOSE}"),
                     ">", CLOSE_MIN)], scale),
        claim("digits_recognisable", "Digits grown from random latents are recognisable and of many classes.",
              [check("classifier confidence (grown digits)", lambda f: f["mnist"]["nca_confidence"], ">",
                     CONFIDENCE_MIN),
               check("predicted-class entropy, bits (grown digits)", lambda f: f["mnist"]["nca_class_entropy"], ">",
                     ENTROPY_MIN)], scale),
        claim("stable_past_horizon", "Grown designs persist past the training horizon (2x the steps).",
              [check("emoji error at 2T / at T", _ratio("train_mse_2x", "train_mse"), "<", DRIFT_MAX),
               check("digit error at 2T / at T", _ratio("nca_mse_2x", "nca_mse", "mnist"), "<", DRIFT_MAX)],
              scale),
    ]
    return Analysis(claims=claims, artifacts=run_figures(records, FIGURES))
