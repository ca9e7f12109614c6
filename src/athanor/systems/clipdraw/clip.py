"""Real CLIP as CLIPDraw's scorer: the ViT-B/32 image-text model, written here, loading weights the user has.

No CLIP weights ship with athanor and none are downloaded. ``load_clip(path)`` reads a checkpoint in the layout of
OpenAI's release and of open_clip (the same key names): a ``.safetensors`` file, a plain state dict saved by
``torch.save`` (read with ``weights_only=True``, so no code runs), or OpenAI's TorchScript archive (``ViT-B-32.pt``).
Without a path it looks in the usual caches (``CACHE_PLACES``); when nothing is found the error lists the exact
steps to get a file. The BPE vocabulary (``bpe_simple_vocab_16e6.txt.gz``) is read from an installed ``open_clip``
or ``clip`` package (installed with ``pip install --no-deps open_clip_torch`` it needs nothing else) or a path.

The model (ViT-B/32; the widths are read from the weights):
- image: 224 x 224 RGB, normalised per channel by CLIP's mean and std; 32 x 32 patches (a stride-32 convolution
  without bias) -> 49 tokens of width 768 after a learned class token, plus learned positions; LayerNorm
  (``ln_pre``); 12 residual blocks x <- x + Attn(LN(x)), x <- x + MLP(LN(x)) with 12 heads and a 4x MLP;
  ``ln_post`` of the class token, times ``proj`` (768 x 512).
- text: byte-level BPE tokens, [SOT] ... [EOT] padded to 77; token embeddings plus positions; 12 blocks of
  width 512 and 8 heads with a causal mask; ``ln_final``; the state at the [EOT] token (the highest id in the
  sequence) times ``text_projection`` (512 x 512).
- the MLP activation is QuickGELU, x sigmoid(1.702 x), for OpenAI's weights; open_clip's own ViT-B-32 weights use
  the erf GELU: ``activation="gelu"``.

Tokenizer: the text is HTML-unescaped (twice), its whitespace collapsed and lower-cased (``ftfy``'s repair of
broken Unicode, which the original applies first, is used when ``ftfy`` is installed), then split into
contractions ('s 't 're 've 'm 'll 'd), runs of letters, single digits and runs of other non-space characters;
each piece's UTF-8 bytes map to printable characters (GPT-2's byte-to-unicode table), "</w>" marks the last, and
the vocabulary's merges are applied lowest rank first.
"""

from __future__ import annotations

import functools
import gzip
import html
import importlib.util
import re
import unicodedata
from pathlib import Path

import torch
import torch.nn.functional as F

__all__ = ["ClipTokenizer", "Clip", "load_clip", "find_vocab", "find_weights", "read_state_dict", "random_weights",
           "CACHE_PLACES", "MEAN", "STD"]

MEAN = (0.48145466, 0.4578275, 0.40821073)  # CLIP's image normalisation
STD = (0.26862954, 0.26130258, 0.27577711)
CONTEXT = 77
RESOLUTION = 224
CACHE_PLACES = ("~/.cache/clip/ViT-B-32.pt", "~/.cache/athanor/clip/ViT-B-32.safetensors",
                "~/.cache/athanor/clip/ViT-B-32.pt")
HOW_TO_GET = (
    "CLIP weights were not found. athanor never downloads them. To use real CLIP:\n"
    "  1. on a machine with internet access, get OpenAI's ViT-B/32 checkpoint (the file ViT-B-32.pt that the\n"
    "     'clip' package caches in ~/.cache/clip/, or open_clip's 'ViT-B-32' weights, e.g. the safetensors file of\n"
    "     open_clip's hub model for ViT-B-32);\n"
    "  2. copy it here to ~/.cache/athanor/clip/ViT-B-32.pt (or .safetensors), or pass its path:\n"
    "     athanor run clipdraw --set scorer=clip:/path/to/ViT-B-32.pt\n"
    "  3. install the BPE vocabulary with pip install --no-deps open_clip_torch (or give clip_vocab=PATH).\n"
    "Without CLIP, scorer=offline (the default) uses the image-text model shipped with athanor.")


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map from the 256 byte values to printable unicode characters."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), 256))
    chars = {b: chr(b) for b in keep}  # printable bytes stand for themselves, first (the vocabulary's order)
    for extra, b in enumerate(b for b in range(256) if b not in chars):
        chars[b] = chr(256 + extra)
    return chars


_CONTRACTIONS = ("'s", "'t", "'re", "'ve", "'m", "'ll", "'d")


def _pieces(text: str) -> list[str]:
    """CLIP's pre-tokenisation: contractions, letter runs, single digits, runs of other non-space characters."""
    out, i, n = [], 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        hit = next((c for c in sorted(_CONTRACTIONS, key=len, reverse=True) if text.startswith(c, i)), None)
        if hit:
            out.append(hit)
            i += len(hit)
            continue
        cat = unicodedata.category(ch)
        if cat.startswith("L"):
            j = i + 1
            while j < n and unicodedata.category(text[j]).startswith("L"):
                j += 1
        elif cat.startswith("N"):
            j = i + 1
        else:
            j = i + 1
            while j < n and not text[j].isspace() and unicodedata.category(text[j])[0] not in "LN":
                j += 1
        out.append(text[i:j])
        i = j
    return out


class ClipTokenizer:
    """CLIP's byte-level BPE over a merges file (the gzipped ``bpe_simple_vocab_16e6.txt.gz``)."""

    def __init__(self, vocab_path: str | Path):
        with gzip.open(vocab_path, "rt", encoding="utf-8") as f:
            lines = f.read().split("\n")
        merges = [tuple(m.split()) for m in lines[1:49152 - 256 - 2 + 1]]
        if len(merges) < 1000 or any(len(m) != 2 for m in merges):
            raise ValueError(f"{vocab_path} is not CLIP's BPE merges file")
        self.byte_map = _bytes_to_unicode()
        symbols = list(self.byte_map.values())
        vocab = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in merges]
        vocab += ["<|startoftext|>", "<|endoftext|>"]
        self.encoder = {t: i for i, t in enumerate(vocab)}
        self.ranks = {m: i for i, m in enumerate(merges)}
        self.sot, self.eot = self.encoder["<|startoftext|>"], self.encoder["<|endoftext|>"]

    @functools.lru_cache(maxsize=10_000)  # noqa: B019 - one tokenizer per process
    def _bpe(self, piece: str) -> tuple[str, ...]:
        word = (*piece[:-1], piece[-1] + "</w>")
        while len(word) > 1:
            pairs = {(a, b) for a, b in zip(word, word[1:], strict=False)}
            best = min(pairs, key=lambda p: self.ranks.get(p, float("inf")))
            if best not in self.ranks:
                break
            merged, i = [], 0
            while i < len(word):
                if i < len(word) - 1 and (word[i], word[i + 1]) == best:
                    merged.append(word[i] + word[i + 1])
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = tuple(merged)
        return word

    @staticmethod
    def clean(text: str) -> str:
        try:
            import ftfy

            text = ftfy.fix_text(text)
        except ImportError:
            pass
        text = html.unescape(html.unescape(text))
        return re.sub(r"\s+", " ", text).strip().lower()

    def encode(self, text: str) -> list[int]:
        ids = []
        for piece in _pieces(self.clean(text)):
            mapped = "".join(self.byte_map[b] for b in piece.encode("utf-8"))
            ids += [self.encoder[t] for t in self._bpe(mapped)]
        return ids

    def __call__(self, texts: list[str]) -> torch.Tensor:
        """Token ids (B, 77): [SOT] text [EOT], cut to fit, zero-padded."""
        out = torch.zeros(len(texts), CONTEXT, dtype=torch.long)
        for i, t in enumerate(texts):
            ids = [self.sot, *self.encode(t)][:CONTEXT - 1] + [self.eot]
            out[i, :len(ids)] = torch.tensor(ids)
        return out


def _block(x: torch.Tensor, w: dict, p: str, heads: int, act, mask: torch.Tensor | None) -> torch.Tensor:
    b, t, d = x.shape
    h = F.layer_norm(x, (d,), w[f"{p}.ln_1.weight"], w[f"{p}.ln_1.bias"], 1e-5)
    q, k, v = F.linear(h, w[f"{p}.attn.in_proj_weight"], w[f"{p}.attn.in_proj_bias"]).chunk(3, dim=-1)
    q, k, v = (z.reshape(b, t, heads, d // heads).transpose(1, 2) for z in (q, k, v))
    att = F.scaled_dot_product_attention(q, k, v, attn_mask=mask).transpose(1, 2).reshape(b, t, d)
    x = x + F.linear(att, w[f"{p}.attn.out_proj.weight"], w[f"{p}.attn.out_proj.bias"])
    h = F.layer_norm(x, (d,), w[f"{p}.ln_2.weight"], w[f"{p}.ln_2.bias"], 1e-5)
    h = F.linear(act(F.linear(h, w[f"{p}.mlp.c_fc.weight"], w[f"{p}.mlp.c_fc.bias"])),
                 w[f"{p}.mlp.c_proj.weight"], w[f"{p}.mlp.c_proj.bias"])
    return x + h


def _quick_gelu(x: torch.Tensor) -> torch.Tensor:
    return x * torch.sigmoid(1.702 * x)


class Clip(torch.nn.Module):
    """CLIP ViT-B/32's forward pass on a state dict with OpenAI's key names, in the ``draw.Scorer`` protocol."""

    size = RESOLUTION

    def __init__(self, weights: dict[str, torch.Tensor], tokenizer: ClipTokenizer | None,
                 activation: str = "quickgelu"):
        super().__init__()
        need = ("visual.conv1.weight", "visual.proj", "token_embedding.weight", "text_projection")
        missing = [k for k in need if k not in weights]
        if missing:
            raise ValueError(f"not a CLIP ViT state dict (OpenAI / open_clip key names): missing {missing}")
        if activation not in ("quickgelu", "gelu"):
            raise ValueError(f"activation must be 'quickgelu' (OpenAI's weights) or 'gelu', got {activation!r}")
        self.w = {k: v.float() for k, v in weights.items()}
        self.tokenizer = tokenizer
        self.act = _quick_gelu if activation == "quickgelu" else F.gelu
        conv = self.w["visual.conv1.weight"]
        self.patch, self.vision_width = conv.shape[-1], conv.shape[0]
        self.vision_layers = len({k.split(".")[3] for k in self.w if k.startswith("visual.transformer.resblocks.")})
        self.text_width = self.w["token_embedding.weight"].shape[1]
        self.text_layers = len({k.split(".")[2] for k in self.w if k.startswith("transformer.resblocks.")})
        self.vision_heads, self.text_heads = self.vision_width // 64, self.text_width // 64
        grid = RESOLUTION // self.patch
        if self.w["visual.positional_embedding"].shape[0] != grid * grid + 1:
            raise ValueError(f"the weights are for another resolution or patch size (positions "
                             f"{tuple(self.w['visual.positional_embedding'].shape)}, patch {self.patch})")

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """Pictures (B, 3, S, S) in [0, 1] (resized to 224 when S differs) -> (B, 512) embeddings."""
        w = self.w
        if images.shape[-1] != RESOLUTION or images.shape[-2] != RESOLUTION:
            images = F.interpolate(images, size=(RESOLUTION, RESOLUTION), mode="bicubic", align_corners=False)
        mean = torch.tensor(MEAN, dtype=images.dtype).view(1, 3, 1, 1)
        std = torch.tensor(STD, dtype=images.dtype).view(1, 3, 1, 1)
        x = F.conv2d((images - mean) / std, w["visual.conv1.weight"], stride=self.patch)  # (B, D, g, g)
        x = x.flatten(2).transpose(1, 2)
        cls = w["visual.class_embedding"].expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], 1) + w["visual.positional_embedding"]
        d = self.vision_width
        x = F.layer_norm(x, (d,), w["visual.ln_pre.weight"], w["visual.ln_pre.bias"], 1e-5)
        for i in range(self.vision_layers):
            x = _block(x, w, f"visual.transformer.resblocks.{i}", self.vision_heads, self.act, None)
        x = F.layer_norm(x[:, 0], (d,), w["visual.ln_post.weight"], w["visual.ln_post.bias"], 1e-5)
        return x @ w["visual.proj"]

    def encode_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        w = self.w
        t = tokens.shape[1]
        x = w["token_embedding.weight"][tokens] + w["positional_embedding"][:t]
        mask = torch.full((t, t), float("-inf")).triu(1)
        for i in range(self.text_layers):
            x = _block(x, w, f"transformer.resblocks.{i}", self.text_heads, self.act, mask)
        x = F.layer_norm(x, (self.text_width,), w["ln_final.weight"], w["ln_final.bias"], 1e-5)
        return x[torch.arange(len(x)), tokens.argmax(dim=-1)] @ w["text_projection"]

    def encode_text(self, texts: list[str]) -> torch.Tensor:
        if self.tokenizer is None:
            raise RuntimeError("this Clip has no tokenizer: pass one (ClipTokenizer(find_vocab()))")
        return self.encode_tokens(self.tokenizer(list(texts)))


def find_vocab(path: str | Path | None = None) -> Path:
    """CLIP's BPE file: ``path``, else the one inside an installed ``open_clip`` or ``clip`` package."""
    if path:
        if not Path(path).is_file():
            raise FileNotFoundError(f"no BPE vocabulary at {path}")
        return Path(path)
    for package in ("open_clip", "clip"):
        try:
            spec = importlib.util.find_spec(package)
        except (ImportError, ValueError):
            spec = None
        for place in (spec.submodule_search_locations or []) if spec else []:
            candidate = Path(place) / "bpe_simple_vocab_16e6.txt.gz"
            if candidate.is_file():
                return candidate
    raise FileNotFoundError("CLIP's BPE vocabulary (bpe_simple_vocab_16e6.txt.gz) was not found: "
                            "pip install --no-deps open_clip_torch, or give its path (clip_vocab=PATH)")


def find_weights(path: str | Path | None = None) -> Path:
    if path:
        if not Path(path).expanduser().is_file():
            raise FileNotFoundError(f"no CLIP weights at {path}\n\n{HOW_TO_GET}")
        return Path(path).expanduser()
    for place in CACHE_PLACES:
        if Path(place).expanduser().is_file():
            return Path(place).expanduser()
    raise FileNotFoundError(HOW_TO_GET)


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A CLIP state dict from safetensors, a plain ``torch.save`` dict, or OpenAI's TorchScript archive."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        try:
            sd = torch.load(str(path), map_location="cpu", weights_only=True)
        except RuntimeError:  # a TorchScript archive (OpenAI's release) is not a pickled dict
            sd = torch.jit.load(str(path), map_location="cpu").state_dict()
    except Exception as e:
        raise ValueError(f"{path} could not be read as CLIP weights ({type(e).__name__}: {e})") from e
    sd = sd.get("state_dict", sd) if isinstance(sd, dict) else sd
    if not isinstance(sd, dict):
        raise ValueError(f"{path} holds a {type(sd).__name__}, not a state dict")
    return {k.removeprefix("module."): v for k, v in sd.items() if torch.is_tensor(v)}


def random_weights(layers: int = 12, seed: int = 0) -> dict[str, torch.Tensor]:
    """A state dict of ViT-B/32's shapes (widths, patch, positions; ``layers`` blocks per tower) with random values:
    for tests and timings, where what CLIP learned does not matter."""
    g = torch.Generator().manual_seed(seed)

    def r(*shape):
        return torch.randn(*shape, generator=g) * 0.02

    w = {"visual.conv1.weight": r(768, 3, 32, 32), "visual.class_embedding": r(768),
         "visual.positional_embedding": r(50, 768), "visual.proj": r(768, 512),
         "token_embedding.weight": r(49408, 512), "positional_embedding": r(77, 512), "text_projection": r(512, 512)}
    for name, d in (("visual.ln_pre", 768), ("visual.ln_post", 768), ("ln_final", 512)):
        w[f"{name}.weight"], w[f"{name}.bias"] = torch.ones(d), torch.zeros(d)
    for prefix, d in (("visual.transformer.resblocks", 768), ("transformer.resblocks", 512)):
        for i in range(layers):
            p = f"{prefix}.{i}"
            for ln in ("ln_1", "ln_2"):
                w[f"{p}.{ln}.weight"], w[f"{p}.{ln}.bias"] = torch.ones(d), torch.zeros(d)
            w[f"{p}.attn.in_proj_weight"], w[f"{p}.attn.in_proj_bias"] = r(3 * d, d), r(3 * d)
            w[f"{p}.attn.out_proj.weight"], w[f"{p}.attn.out_proj.bias"] = r(d, d), r(d)
            w[f"{p}.mlp.c_fc.weight"], w[f"{p}.mlp.c_fc.bias"] = r(4 * d, d), r(4 * d)
            w[f"{p}.mlp.c_proj.weight"], w[f"{p}.mlp.c_proj.bias"] = r(d, 4 * d), r(d)
    return w


def load_clip(path: str | Path | None = None, vocab: str | Path | None = None,
              activation: str = "quickgelu") -> Clip:
    """CLIP ViT-B/32 from the user's weights (module docstring); a named error with the steps when absent."""
    return Clip(read_state_dict(find_weights(path)), ClipTokenizer(find_vocab(vocab)), activation).eval()
