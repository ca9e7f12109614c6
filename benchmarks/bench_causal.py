"""Causal-response throughput on this machine: model load time, candidates scored per second, tokens generated per
second, and peak memory (`python benchmarks/bench_causal.py`; `--quick` runs the tiny random model, a smoke test).

Scoring: ``candidates`` one-sentence definitions (about 25 tokens each in SmolLM2's tokenizer) scored under "Am I
thinking of coffee?" in batches of ``batch_size``, the work a definition's selection does. Generation:
``samples`` replies of up to ``tokens`` new tokens each, side by side with a key-value cache (``response.sample``
with no sentence stop; the tokens counted are those the replies hold), the work of sampling a definition's
candidates. Each is timed
``--repeats`` times after one warm-up; the fastest counts (the median is recorded too).
"""

from __future__ import annotations

import os
import sys
import time

from _paired import cli, run_facts

SENTENCES = ("A hot, dark drink brewed from roasted beans that people drink in the morning.",
             "Something people drink.", "It is a bitter drink made from the seeds of a plant grown in Brazil.",
             "A brown liquid served in cafes with milk or sugar, often to stay awake.")
QUICK = {"model": "tiny-random", "candidates": 8, "batch_size": 8, "samples": 4, "tokens": 8}
FULL = {"model": "shipped", "candidates": 64, "batch_size": 32, "samples": 20, "tokens": 40}


def _best(fn, repeats: int) -> tuple[float, float]:
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    times.sort()
    return times[0], times[len(times) // 2]


def run(sizes: dict, repeats: int, threads: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    from athanor.core import torchtools
    from athanor.systems.causal import lm as L
    from athanor.systems.causal import response as R

    load_before = os.getloadavg()
    t = time.perf_counter()
    lm = L.load(sizes["model"])
    load_s = time.perf_counter() - t
    texts = [SENTENCES[i % len(SENTENCES)] for i in range(sizes["candidates"])]
    tokens = sum(len(R.score_ids(lm, x, "Am I thinking of coffee?")) for x in texts) / len(texts)
    score_best, score_median = _best(lambda: R.scores(lm, texts, "Am I thinking of coffee?", sizes["batch_size"]),
                                     repeats)
    prompt = lm.tokenizer.encode("What is coffee?\n", add_special_tokens=False)
    produced = []

    def generate():
        texts = R.sample(lm, prompt, sizes["samples"], torchtools.generator(0), max_new_tokens=sizes["tokens"])
        produced[:] = [len(lm.tokenizer.encode(x, add_special_tokens=False)) for x in texts]

    gen_best, gen_median = _best(generate, repeats)
    new_tokens = sum(produced)  # replies that end early (end of turn) count only what they produced
    print(f"scored {sizes['candidates'] / score_best:.1f} candidates/s; generated {new_tokens / gen_best:.1f} "
          "tokens/s", file=sys.stderr)
    return {"sizes": sizes, "threads": threads, "load_s": round(load_s, 2),
            "score": {"candidates_per_s": round(sizes["candidates"] / score_best, 2),
                      "candidates_per_s_median": round(sizes["candidates"] / score_median, 2),
                      "prompt_tokens_mean": round(tokens, 1)},
            "generate": {"tokens_per_s": round(new_tokens / gen_best, 2), "tokens": new_tokens,
                         "tokens_per_s_median": round(new_tokens / gen_median, 2)},
            **run_facts(load_before, ("torch", "transformers", "gguf"))}


def main(argv: list[str] | None = None) -> dict:
    return cli(__doc__.splitlines()[0], run, QUICK, FULL, argv)


if __name__ == "__main__":
    main()
