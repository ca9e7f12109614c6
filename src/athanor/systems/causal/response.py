"""Causal-response optimisation: generate candidates by forward prediction, keep the one that makes the model
answer "Yes" (Frans 2021, "To extract information from language models, optimize for causal response").

Score. For a candidate text t and a yes/no question q (say "Am I thinking of coffee?"), the model reads a prompt
built from both (``score_ids``) and, with p(a) = P(the reply starts with the answer a), its tokens multiplied out,

    raw score         s(t) = p("Yes")
    normalised score  s_n(t) = p("Yes") / (p("Yes") + p("No"))

Two prompt formats (``fmt``): ``"plain"`` is the post's completion style, "t\nQuestion: q\nAnswer:" followed by
" Yes" or " No"; ``"chat"`` puts "t, a blank line, q Answer yes or no." in the user turn of the model's chat template
and reads "Yes" or "No" as the assistant's first word. With SmolLM2-135M-Instruct only the plain format's score
depends on which concept a description is about (RESULTS.md), so it is the default.

``answer_logprobs`` computes log p(a | prompt) exactly for any answers and any tokenizer; when every answer is a
single token (SmolLM2's "Yes" and "No" are) one forward pass over the prompts reads them all off the last position.
Prompts are right-padded in a batch, so a padded row computes what it would alone (causal attention never looks at
the padding after it, and positions start at 0 in every row).

Forward prediction. ``sample`` draws n replies to one prompt in one batch with a key-value cache, by temperature
and nucleus (top-p) sampling from an explicit ``torch.Generator`` (seeded: the same seed gives the same texts), and
stops each reply at the end-of-turn token, at ``max_new_tokens``, or (``stop="sentence"``) after the first
sentence's closing punctuation.

Selection. ``select`` returns the argmax of the scores (the first on ties). The post's three uses are built from
these pieces in ``system.py``: definitions (20 samples of "What is X?", selected by "Am I thinking of X?"), list
completion, and sentence-by-sentence story steering (10 candidate sentences per line, selected by a criterion
question). Beyond the post: ``combined_score`` steers by several questions at once (the mean of their log-scores,
so every criterion has to hold), and ``causal_beam`` is the logit-weighted beam search the post tried: beams grow
token by token ranked by log p(text) + ``weight`` * log s_n(text), the score read at every step.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import torch

from athanor.systems.causal.lm import LM, chat_prompt

__all__ = ["score_ids", "answer_logprobs", "yes_no", "scores", "combined_score", "sample", "select",
           "option_logprobs", "causal_beam", "nucleus"]

ANSWER_HINT = "Answer yes or no."
FORMATS = ("plain", "chat")
ANSWERS = {"plain": (" Yes", " No"), "chat": ("Yes", "No")}
SENTENCE_END = re.compile(r"[.!?](?=\s|$)")


def score_ids(lm: LM, text: str, question: str, fmt: str = "plain") -> list[int]:
    """Token ids of the prompt a candidate is scored with, in the format ``fmt`` (see the module docstring)."""
    if fmt == "plain":
        return lm.tokenizer.encode(f"{text.strip()}\nQuestion: {question.strip()}\nAnswer:", add_special_tokens=False)
    if fmt == "chat":
        return chat_prompt(lm, f"{text.strip()}\n\n{question.strip()} {ANSWER_HINT}")
    raise ValueError(f"score format must be one of {', '.join(FORMATS)}, got {fmt!r}")


def _right_padded(rows: Sequence[Sequence[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, :len(r)] = torch.as_tensor(list(r), dtype=torch.long)
        mask[i, :len(r)] = 1
    return ids, mask


@torch.no_grad()
def _logits(lm: LM, rows: Sequence[Sequence[int]], batch_size: int, last: bool = False) -> list[torch.Tensor]:
    """Log-softmax of the next-token logits at every position of every row (unpadded), ``batch_size`` rows a pass;
    with ``last``, only at each row's last token (the output layer, a fifth of SmolLM2's weights, then runs on one
    position per row)."""
    out = []
    for start in range(0, len(rows), batch_size):
        chunk = rows[start:start + batch_size]
        ids, mask = _right_padded(chunk, lm.tokenizer.pad_token_id)
        if last:
            hidden = lm.model.get_decoder()(input_ids=ids, attention_mask=mask).last_hidden_state
            ends = torch.tensor([len(r) - 1 for r in chunk])
            logits = lm.model.get_output_embeddings()(hidden[torch.arange(len(chunk)), ends])
            out += list(torch.log_softmax(logits.float(), dim=-1))
            continue
        logp = torch.log_softmax(lm.model(input_ids=ids, attention_mask=mask).logits.float(), dim=-1)
        out += [logp[i, :len(r)] for i, r in enumerate(chunk)]
    return out


def answer_logprobs(lm: LM, prompts: Sequence[Sequence[int]], answers: Sequence[str],
                    batch_size: int = 32) -> np.ndarray:
    """log P(answer | prompt) for every prompt (token ids) and answer (text): (len(prompts), len(answers))."""
    tok = lm.tokenizer
    ans = [tok.encode(a, add_special_tokens=False) for a in answers]
    if any(not a for a in ans):
        raise ValueError(f"every answer must have at least one token, got {list(answers)}")
    if all(len(a) == 1 for a in ans):  # one pass: the answers' first tokens at the prompts' last position
        last = _logits(lm, prompts, batch_size, last=True)
        return np.array([[float(lp[a[0]]) for a in ans] for lp in last])
    rows = [list(p) + a for p in prompts for a in ans]
    out = np.empty(len(rows))
    for i, (row, lp) in enumerate(zip(rows, _logits(lm, rows, batch_size), strict=True)):
        a = ans[i % len(ans)]
        start = len(row) - len(a)  # the logits at position j predict token j + 1
        out[i] = float(sum(lp[start - 1 + k, t] for k, t in enumerate(a)))
    return out.reshape(len(prompts), len(ans))


def yes_no(lm: LM, texts: Sequence[str], question: str | Sequence[str], batch_size: int = 32,
           fmt: str = "plain") -> np.ndarray:
    """log p("Yes"), log p("No") for each text under the question (one question for all, or one per text): (n, 2)."""
    questions = [question] * len(texts) if isinstance(question, str) else list(question)
    if len(questions) != len(texts):
        raise ValueError(f"one question for all texts or one per text: got {len(questions)} for {len(texts)} texts")
    prompts = [score_ids(lm, t, q, fmt) for t, q in zip(texts, questions, strict=True)]
    return answer_logprobs(lm, prompts, ANSWERS[fmt], batch_size)


def scores(lm: LM, texts: Sequence[str], question: str | Sequence[str], batch_size: int = 32,
           fmt: str = "plain") -> dict[str, np.ndarray]:
    """``raw`` = p("Yes") and ``norm`` = p("Yes") / (p("Yes") + p("No")) for each text."""
    lp = yes_no(lm, texts, question, batch_size, fmt)
    return {"raw": np.exp(lp[:, 0]), "norm": np.exp(lp[:, 0] - np.logaddexp(lp[:, 0], lp[:, 1]))}


def combined_score(lm: LM, texts: Sequence[str], questions: Sequence[str], batch_size: int = 32,
                   fmt: str = "plain") -> np.ndarray:
    """Several criteria at once: exp(mean over questions of log s_n), a geometric mean that any failing criterion
    pulls down. With one question it equals ``scores(...)["norm"]``."""
    logs = [np.log(scores(lm, texts, q, batch_size, fmt)["norm"]) for q in questions]
    return np.exp(np.mean(logs, axis=0))


def select(values: Sequence[float]) -> int:
    """Index of the best candidate (the first of equals); NaN scores never win."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0 or not np.isfinite(v).any():
        raise ValueError("select needs at least one finite score")
    return int(np.argmax(np.where(np.isfinite(v), v, -np.inf)))


def nucleus(logits: torch.Tensor, temperature: float, top_p: float) -> torch.Tensor:
    """Sampling probabilities (rows of ``logits``) after temperature and top-p truncation: the smallest set of most
    likely tokens whose mass reaches ``top_p`` keeps its probabilities, renormalised; temperature 0 is greedy."""
    if temperature <= 0:
        return torch.nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).float()
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    if top_p >= 1:
        return probs
    sorted_p, order = probs.sort(dim=-1, descending=True)
    keep = (sorted_p.cumsum(-1) - sorted_p) < top_p  # mass before this token is short of top_p: keep it
    sorted_p = sorted_p * keep
    out = torch.zeros_like(probs).scatter(-1, order, sorted_p)
    return out / out.sum(-1, keepdim=True)


def _finished(text: str, stop: str | None) -> bool:
    return stop == "sentence" and SENTENCE_END.search(text) is not None


def _trim(text: str, stop: str | None) -> str:
    if stop == "sentence":
        m = SENTENCE_END.search(text)
        text = text[:m.end()] if m else text
    return text.strip()


@torch.no_grad()
def sample(lm: LM, prompt: Sequence[int], n: int, generator: torch.Generator, max_new_tokens: int = 60,
           temperature: float = 1.0, top_p: float = 0.95, stop: str | None = None) -> list[str]:
    """``n`` replies sampled side by side after the token ids ``prompt`` (a chat prompt from ``lm.chat_prompt``).
    ``stop="sentence"`` ends a reply after its first sentence. Deterministic for a given generator state."""
    model, tok, eos = lm.model, lm.tokenizer, set(lm.eos_ids)
    ids = torch.as_tensor([list(prompt)] * n, dtype=torch.long)
    out = model(input_ids=ids, use_cache=True)
    cache, logits = out.cache, out.logits[:, -1]
    tokens: list[list[int]] = [[] for _ in range(n)]
    done = np.zeros(n, bool)
    for _ in range(max_new_tokens):
        nxt = torch.multinomial(nucleus(logits, temperature, top_p), 1, generator=generator)[:, 0]
        for i in np.flatnonzero(~done):
            t = int(nxt[i])
            if t in eos:
                done[i] = True
                continue
            tokens[i].append(t)
            if _finished(tok.decode(tokens[i], skip_special_tokens=True), stop):
                done[i] = True
        if done.all():
            break
        out = model(input_ids=nxt[:, None], cache=cache, use_cache=True)
        cache, logits = out.cache, out.logits[:, -1]
    return [_trim(tok.decode(t, skip_special_tokens=True), stop) for t in tokens]


def option_logprobs(lm: LM, prompt: Sequence[int], options: Sequence[str], batch_size: int = 32) -> np.ndarray:
    """log P(option | prompt) per option, divided by the option's token count (so long names are not penalised
    for their length): how the round trip reads which concept the model picks among its options."""
    lp = answer_logprobs(lm, [prompt], options, batch_size)[0]
    return lp / np.array([len(lm.tokenizer.encode(o, add_special_tokens=False)) for o in options])


@torch.no_grad()
def causal_beam(lm: LM, prompt: Sequence[int], question: str, width: int = 4, expand: int = 8,
                max_new_tokens: int = 40, weight: float = 1.0, stop: str | None = "sentence",
                fmt: str = "plain") -> str:
    """The logit-weighted beam search of the post's appendix: keep ``width`` beams; grow each by its ``expand``
    likeliest next tokens; rank the children by log p(reply so far) + ``weight`` * log s_n(reply so far) under
    ``question``; stop when every beam has ended (end of turn, or of the sentence with ``stop="sentence"``) or
    after ``max_new_tokens``. Returns the best finished (or, failing that, best) reply."""
    tok, eos = lm.tokenizer, set(lm.eos_ids)
    beams: list[tuple[list[int], float, bool]] = [([], 0.0, False)]  # tokens, log p, ended
    for _ in range(max_new_tokens):
        live = [b for b in beams if not b[2]]
        if not live:
            break
        last = _logits(lm, [list(prompt) + b[0] for b in live], 32, last=True)
        children = [b for b in beams if b[2]]
        for (tokens, logp, _), lp in zip(live, last, strict=True):
            top = torch.topk(lp, expand)
            for v, t in zip(top.values.tolist(), top.indices.tolist(), strict=True):
                if t in eos:
                    children.append((tokens, logp + v, True))
                else:
                    new = tokens + [t]
                    children.append((new, logp + v, _finished(tok.decode(new, skip_special_tokens=True), stop)))
        texts = [_trim(tok.decode(c[0], skip_special_tokens=True), stop) or "." for c in children]
        log_s = np.log(scores(lm, texts, question, fmt=fmt)["norm"])
        rank = np.array([c[1] for c in children]) + weight * log_s
        order = np.argsort(-rank, kind="stable")[:width]
        beams = [children[i] for i in order]
    best = next((b for b in beams if b[2]), beams[0])
    return _trim(tok.decode(best[0], skip_special_tokens=True), stop)

