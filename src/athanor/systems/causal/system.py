"""The ``causal-response`` systems: the post's three uses of causal-response selection and its graded-description
check, each a step loop over items (a concept, a list, a story) with a real local language model (PyTorch).

The method (scores, sampling, selection, beam) is in ``response.py``; the models in ``lm.py``; the prompt data in
``prompts.py``. Every item is worked on with its own ``torch.Generator`` seeded from (run seed, task, item), so a
run is deterministic and a resumed run continues exactly. One ``step`` does ``inner_steps`` items.

Tasks (``task``):

- ``definitions`` (the round trip the post asks for). For concept c: sample ``candidates`` (post: 20) one-sentence
  replies to "What is c?"; in each, every form of c's name (``prompts.mentions``) is replaced by "it", so no
  definition names its concept; score them all with "Am I thinking of c?" (normalised). Forward prediction keeps
  the first sample (a plain sample of the model, drawn before any score is seen); causal-response keeps the best
  score (``selector="beam"``: ``causal_beam`` instead, whose partial texts are scored before the name is masked).
  Round trip (``identify``): the model reads one definition alone and is asked which of ``options`` concepts it
  describes (c and ``options - 1`` distractors from ``prompts.CONCEPTS``, in an order drawn per item); its pick is
  the option of highest per-token log-probability as the reply.
  Metrics: ``roundtrip_forward``, ``roundtrip_causal`` (accuracies over concepts; chance is 1 / options),
  ``score_forward``, ``score_causal``, ``score_mean`` (mean normalised score of all candidates).
- ``graded``: the post's check that the score means something: each concept of ``prompts.GRADED`` with four
  human-written descriptions of growing detail, scored with "Am I thinking of c?". No sampling. Metrics:
  ``graded_spearman`` (mean over concepts of Spearman's rank correlation between level and normalised score),
  ``graded_top_beats_bottom`` (fraction of concepts whose level 4 scores above level 1), ``level{1..4}_norm`` and
  ``level{1..4}_raw``. Control: every description is also scored with the next graded concept's question
  (``level{1..4}_other``); ``graded_match_margin`` is the mean normalised score under the right concept minus the
  wrong one, which is near 0 if the score does not read the text.
- ``lists``: list completion. For a header h and three items, ``candidates`` one-line replies to "Name one more
  of the h. So far: a, b, c." are sampled; forward keeps the first, causal-response the one scoring best on "Is
  this one of the h?". Metrics: ``list_score_forward``, ``list_score_causal``.
- ``story``: sentence-by-sentence steering. Two stories grow from the same opening request, ``lines`` sentences
  each: the unsteered story appends its first sampled sentence, the steered one the best of ``candidates``
  (post: 10) by the criterion question (several criteria at once with ``criteria="q1|q2"``: their geometric mean,
  ``response.combined_score``). Both are then judged sentence by sentence with the held-out phrasing of the
  question, never optimised. Metrics: ``heldout_steered``, ``heldout_unsteered`` (mean normalised held-out
  score over sentences and stories), ``criterion_steered``, ``criterion_unsteered``.

Deviations from the post (GPT-3 through an API; no code shipped here): the model is SmolLM2-135M-Instruct, local;
a score is read in the post's completion format by default (``score_format``; ``response.score_ids``);
definitions are one sentence, their concept's name masked (the round trip would be trivial otherwise, and the
selection would reward naming the concept); samples use temperature ``temperature`` and top-p ``top_p``.
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

import numpy as np
from scipy.stats import spearmanr

from athanor.core import torchtools
from athanor.core.artifacts import TextTable
from athanor.core.config import ConfigError, TrainConfig, param
from athanor.core.seeds import derive
from athanor.systems.causal import lm as L
from athanor.systems.causal import prompts as P
from athanor.systems.causal import response as R

runtime_info = torchtools.runtime_info
block = torchtools.block
THROUGHPUT_UNIT = "items"

TASKS = ("definitions", "graded", "lists", "story")
TASK_CODES = {name: k for k, name in enumerate(TASKS)}  # the task's place in every item's seed
N_ITEMS = {"definitions": len(P.CONCEPTS), "graded": len(P.GRADED), "lists": len(P.LISTS), "story": len(P.STORIES)}


@dataclasses.dataclass(frozen=True)
class Config(TrainConfig):
    steps: int = param(60, lo=1)  # items worked on: 60 concepts (at least 50 for the round trip); the other tasks'
    # systems set it to their prompt sets' sizes (12 graded concepts, 12 lists, 6 stories)
    inner_steps: int = param(1, lo=1)  # items per step
    eval_every: int = param(20, lo=0)
    ckpt_every: int = param(5, lo=0)
    task: str = param("definitions", choices=TASKS)
    model: str = param(L.SHIPPED, doc="'shipped' (SmolLM2-135M-Instruct), 'tiny-random', or a model directory or "
                                      ".gguf file")
    candidates: int = param(20, lo=1)  # post: 20 definitions, 10 sentences per story line
    temperature: float = param(0.7, lo=0.0)  # sampling temperature (ours: at 1.0 the 135M model writes non-words)
    top_p: float = param(0.95, lo=0.0, hi=1.0)  # nucleus sampling (ours)
    max_new_tokens: int = param(48, lo=1)  # tokens per sampled sentence or definition
    options: int = param(5, lo=2)  # concepts the round trip chooses among (chance = 1 / options)
    lines: int = param(6, lo=1)  # sentences per story
    criteria: str = param("", doc="story criterion questions joined by '|' (empty: each story's own)")
    selector: str = param("sample", choices=("sample", "beam"))  # sample-then-select (post) or causal_beam
    score_format: str = param("plain", choices=R.FORMATS)  # post: completion style "text\nQuestion: q\nAnswer:"
    beam_width: int = param(4, lo=1)
    beam_expand: int = param(6, lo=1)
    batch_size: int = param(32, lo=1)  # texts per scoring pass


PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {"model": L.TINY, "steps": 2, "eval_every": 2, "ckpt_every": 1, "candidates": 3, "max_new_tokens": 8,
             "lines": 2, "options": 3, "beam_width": 2, "beam_expand": 2},
    "quick": {"candidates": 8, "lines": 4},
    "full": {},
}


def load_data(cfg: Config, seed: int) -> dict[str, Any]:
    """The model and the task's items (the first ``steps`` of its prompt set)."""
    if cfg.steps > N_ITEMS[cfg.task]:
        raise ConfigError(f"config key 'steps' = {cfg.steps}: the {cfg.task} task has {N_ITEMS[cfg.task]} items; "
                          f"set steps to at most {N_ITEMS[cfg.task]}")
    if cfg.task == "definitions" and cfg.options > len(P.CONCEPTS):
        raise ConfigError(f"config key 'options' = {cfg.options}: at most {len(P.CONCEPTS)} concepts exist")
    return {"lm": L.load(cfg.model)}


def init(cfg: Config, seed: int, data) -> dict[str, Any]:
    return {"seed": int(seed), "records": []}


def _gen(state, cfg: Config, item: int):
    return torchtools.generator(derive(state["seed"], TASK_CODES[cfg.task], item))


def _mask(text: str, concept: str) -> str:
    """``text`` with every word that contains a form of ``concept`` replaced by "it" ("It" at a sentence's start),
    so that nothing ``prompts.mentions`` would catch is left."""
    for form in sorted(P.concept_words(concept), key=len, reverse=True):
        text = re.sub(rf"\w*{re.escape(form)}\w*", "it", text, flags=re.IGNORECASE)
    return re.sub(r"(^|[.!?]\s+)it\b", lambda m: m.group(1) + "It", text)


def _choose(lm, cfg: Config, question: str | list[str], texts: list[str]) -> tuple[int, np.ndarray]:
    qs = [question] if isinstance(question, str) else question
    s = R.combined_score(lm, texts, qs, cfg.batch_size, cfg.score_format)
    return R.select(s), s


def identify(lm, text: str, options: list[str], batch_size: int = 32) -> str:
    """The round trip's reader: which of ``options`` the model says ``text`` describes (the option of highest
    per-token log-probability as its reply)."""
    ask = L.chat_prompt(lm, f"{text}\n\nWhich of these is being described: {', '.join(options)}? Answer with one of "
                            "them.")
    return options[int(np.argmax(R.option_logprobs(lm, ask, options, batch_size)))]


def _definition(lm, cfg: Config, state, item: int) -> dict[str, Any]:
    concept = P.CONCEPTS[item]
    question = f"Am I thinking of {concept}?"
    prompt = L.chat_prompt(lm, f"What is {concept}? Answer in one sentence.")
    raw = R.sample(lm, prompt, cfg.candidates, _gen(state, cfg, item), cfg.max_new_tokens, cfg.temperature,
                   cfg.top_p, stop="sentence")
    texts = [_mask(t, concept) or "." for t in raw]
    best, s = _choose(lm, cfg, question, texts)
    causal = texts[best]
    if cfg.selector == "beam":
        causal = _mask(R.causal_beam(lm, prompt, question, cfg.beam_width, cfg.beam_expand, cfg.max_new_tokens,
                                     fmt=cfg.score_format), concept) or "."
    rng = np.random.default_rng(derive(state["seed"], TASK_CODES[cfg.task], item, 1))
    others = [c for c in P.CONCEPTS if c != concept]
    options = [concept] + [others[k] for k in rng.choice(len(others), cfg.options - 1, replace=False)]
    options = [options[k] for k in rng.permutation(len(options))]
    picks = {}
    for name, text in (("forward", texts[0]), ("causal", causal)):
        picks[name] = identify(lm, text, options, cfg.batch_size)
    final = R.scores(lm, [texts[0], causal], question, cfg.batch_size, cfg.score_format)["norm"]
    return {"concept": concept, "forward": texts[0], "causal": causal, "options": options,
            "pick_forward": picks["forward"], "pick_causal": picks["causal"],
            "score_forward": float(final[0]), "score_causal": float(final[1]), "score_mean": float(np.mean(s))}


def _graded(lm, cfg: Config, state, item: int) -> dict[str, Any]:
    concept, levels = P.GRADED[item]
    other = P.GRADED[(item + 1) % len(P.GRADED)][0]
    s = R.scores(lm, list(levels) * 2, [f"Am I thinking of {concept}?"] * 4 + [f"Am I thinking of {other}?"] * 4,
                 cfg.batch_size, cfg.score_format)
    return {"concept": concept, "other": other, "texts": list(levels), "norm": s["norm"][:4].tolist(),
            "raw": s["raw"][:4].tolist(), "norm_other": s["norm"][4:].tolist()}


def _list(lm, cfg: Config, state, item: int) -> dict[str, Any]:
    header, examples = P.LISTS[item]
    h = header[0].lower() + header[1:]
    prompt = L.chat_prompt(lm, f"Name one more of the {h}. So far: {', '.join(examples)}. Reply with the name only.")
    raw = R.sample(lm, prompt, cfg.candidates, _gen(state, cfg, item), min(cfg.max_new_tokens, 16),
                   cfg.temperature, cfg.top_p, stop="sentence")
    texts = [t.strip().rstrip(".!?").strip() or "." for t in raw]
    best, s = _choose(lm, cfg, f"Is this one of the {h}?", texts)
    return {"header": header, "examples": list(examples), "forward": texts[0], "causal": texts[best],
            "score_forward": float(s[0]), "score_causal": float(s[best])}


def _story(lm, cfg: Config, state, item: int) -> dict[str, Any]:
    opening, criterion, heldout = P.STORIES[item]
    questions = [q for q in cfg.criteria.split("|") if q.strip()] or [criterion]
    gen = _gen(state, cfg, item)
    stories: dict[str, list[str]] = {"unsteered": [], "steered": []}
    for _ in range(cfg.lines):
        for name, sentences in stories.items():
            prompt = L.chat_prompt(lm, opening, " ".join(sentences) + (" " if sentences else ""))
            if name == "steered" and cfg.selector == "beam":
                sentences.append(R.causal_beam(lm, prompt, questions[0], cfg.beam_width, cfg.beam_expand,
                                               cfg.max_new_tokens, fmt=cfg.score_format) or ".")
                continue
            n = cfg.candidates if name == "steered" else 1
            texts = [t or "." for t in R.sample(lm, prompt, n, gen, cfg.max_new_tokens, cfg.temperature,
                                                cfg.top_p, stop="sentence")]
            sentences.append(texts[_choose(lm, cfg, questions, texts)[0]] if n > 1 else texts[0])
    out: dict[str, Any] = {"opening": opening, "criteria": questions, "heldout": heldout, **stories}
    for name, sentences in stories.items():
        crit = R.combined_score(lm, sentences, questions, cfg.batch_size, cfg.score_format)
        out[f"criterion_{name}"] = float(np.mean(crit))
        out[f"heldout_{name}"] = float(np.mean(R.scores(lm, sentences, heldout, cfg.batch_size,
                                                        cfg.score_format)["norm"]))
    return out


WORK = {"definitions": _definition, "graded": _graded, "lists": _list, "story": _story}


def step(state, data, cfg: Config):
    records = list(state["records"])
    for _ in range(cfg.inner_steps):
        records.append(WORK[cfg.task](data["lm"], cfg, state, len(records)))
    new = {"seed": state["seed"], "records": records}
    return new, _metrics(records[-cfg.inner_steps:], cfg)


def _metrics(records: list[dict], cfg: Config) -> dict[str, float]:
    if not records:
        return {}
    if cfg.task == "definitions":
        return {"roundtrip_forward": float(np.mean([r["pick_forward"] == r["concept"] for r in records])),
                "roundtrip_causal": float(np.mean([r["pick_causal"] == r["concept"] for r in records])),
                **{k: float(np.mean([r[k] for r in records])) for k in ("score_forward", "score_causal",
                                                                        "score_mean")}}
    if cfg.task == "graded":
        norm, raw = np.array([r["norm"] for r in records]), np.array([r["raw"] for r in records])
        other = np.array([r["norm_other"] for r in records])
        levels = np.arange(norm.shape[1])
        return {"graded_spearman": float(np.mean([spearmanr(levels, row).statistic for row in norm])),
                "graded_top_beats_bottom": float(np.mean(norm[:, -1] > norm[:, 0])),
                "graded_match_margin": float(np.mean(norm - other)),
                **{f"level{k + 1}_norm": float(v) for k, v in enumerate(norm.mean(0))},
                **{f"level{k + 1}_raw": float(v) for k, v in enumerate(raw.mean(0))},
                **{f"level{k + 1}_other": float(v) for k, v in enumerate(other.mean(0))}}
    keys = (("list_score_forward", "score_forward"), ("list_score_causal", "score_causal")) if cfg.task == "lists" \
        else tuple((k, k) for k in ("heldout_steered", "heldout_unsteered", "criterion_steered",
                                    "criterion_unsteered"))
    return {name: float(np.mean([r[k] for r in records])) for name, k in keys}


def evaluate(state, data, cfg: Config, seed: int) -> dict[str, float]:
    """The task's metrics over every item done so far (see the module docstring)."""
    return _metrics(state["records"], cfg)


def _table(records: list[dict], cfg: Config) -> TextTable:
    if cfg.task == "definitions":
        return TextTable(("concept", "forward prediction", "causal response", "round trip (forward / causal)"),
                         [(r["concept"], f"{r['forward']} [{r['score_forward']:.3f}]",
                           f"{r['causal']} [{r['score_causal']:.3f}]",
                           f"{r['pick_forward']} / {r['pick_causal']} (of {', '.join(r['options'])})")
                          for r in records], "definitions, concept's name masked; [normalised score]")
    if cfg.task == "graded":
        return TextTable(("concept", "level", "description", "P(Yes) normalised", "P(Yes)", "another concept"),
                         [(r["concept"], str(k + 1), t, f"{n:.3f}", f"{w:.3f}", f"{o:.3f} ({r['other']})")
                          for r in records for k, (t, n, w, o) in enumerate(zip(r["texts"], r["norm"], r["raw"],
                                                                                 r["norm_other"], strict=True))],
                         "human-written descriptions of growing detail under 'Am I thinking of <concept>?' (and, as "
                         "a control, of another concept)")
    if cfg.task == "lists":
        return TextTable(("list", "so far", "forward prediction", "causal response"),
                         [(r["header"], ", ".join(r["examples"]), f"{r['forward']} [{r['score_forward']:.3f}]",
                           f"{r['causal']} [{r['score_causal']:.3f}]") for r in records],
                         "list completions; [normalised score of 'Is this one of the ...?']")
    return TextTable(("request", "steered by", "unsteered story", "steered story", "held-out score (un / steered)"),
                     [(r["opening"], " | ".join(r["criteria"]), " ".join(r["unsteered"]), " ".join(r["steered"]),
                       f"{r['heldout_unsteered']:.3f} / {r['heldout_steered']:.3f} ({r['heldout']})")
                      for r in records], "stories, one sentence at a time")


def _figure(records: list[dict], cfg: Config):
    from athanor.viz.figures import bar_compare

    m = _metrics(records, cfg)
    if cfg.task == "graded":
        names = [f"level {k}{tail}" for k in range(1, 5) for tail in ("", ", other concept")]
        return bar_compare(names, [m[f"level{k}_{key}"] for k in range(1, 5) for key in ("norm", "other")], None,
                           "human-written descriptions: detail vs causal-response score (mean over concepts; the "
                           "control asks about another concept)", ylabel="P(Yes) / (P(Yes) + P(No))")
    names = [k for k in m if not k.startswith("criterion")]
    return bar_compare(names, [m[k] for k in names], None, f"{cfg.task}: forward prediction vs causal response",
                       ylabel="mean over items")


def artifacts(state, data, cfg: Config, seed: int) -> dict[str, Any]:
    """``texts``: every item side by side (``TextTable``); ``scores``: the metrics as bars."""
    if not state["records"]:
        return {}
    return {"texts": _table(state["records"], cfg), "scores": _figure(state["records"], cfg)}


def save_state(state) -> bytes:
    """The state is text and numbers: JSON, never pickle."""
    return json.dumps(state).encode("utf-8")


def load_state(template, payload: bytes):
    state = json.loads(payload.decode("utf-8"))
    if not isinstance(state, dict) or set(state) != {"seed", "records"}:
        raise ValueError("not a causal-response checkpoint: expected the keys 'seed' and 'records'")
    return state
