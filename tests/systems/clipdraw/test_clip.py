"""Real CLIP, written here: tokenizer and both encoders against open_clip's own code on the same random ViT-B/32
weights (an independent implementation), gradients to the pixels, weight files and the named errors when none
are present. No pretrained weights exist on this machine; random ones test everything but what CLIP learned."""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types

import pytest

torch = pytest.importorskip("torch")

from athanor.systems.clipdraw import clip as C  # noqa: E402


def _vocab_or_skip():
    try:
        return C.find_vocab()
    except FileNotFoundError:
        pytest.skip("CLIP's BPE file is not installed (pip install --no-deps open_clip_torch)")


@pytest.fixture(scope="module")
def reference(request):
    """open_clip's model and tokenizer modules, loaded without its package __init__ (which needs torchvision, not
    installable beside the CPU torch here): torchvision's one used name and the Hugging Face text tower are
    stubbed, the modules under test are open_clip's own."""
    pytest.importorskip("ftfy")
    pytest.importorskip("regex")
    spec = importlib.util.find_spec("open_clip")
    if spec is None:
        pytest.skip("open_clip_torch is not installed")
    saved = {k: v for k, v in sys.modules.items() if k == "open_clip" or k.startswith(("open_clip.", "torchvision"))}
    pkg = types.ModuleType("open_clip")
    pkg.__path__, pkg.__spec__ = list(spec.submodule_search_locations), spec
    misc = types.ModuleType("torchvision.ops.misc")
    misc.FrozenBatchNorm2d = type("FrozenBatchNorm2d", (torch.nn.Module,), {})
    hf = types.ModuleType("open_clip.hf_model")
    hf.HFTextEncoder = None
    sys.modules.update({"open_clip": pkg, "open_clip.hf_model": hf, "torchvision": types.ModuleType("torchvision"),
                        "torchvision.ops": types.ModuleType("torchvision.ops"), "torchvision.ops.misc": misc})
    try:
        model = importlib.import_module("open_clip.model")
        tokenizer = importlib.import_module("open_clip.tokenizer")
    finally:
        for k in [k for k in sys.modules if k == "open_clip" or k.startswith(("open_clip.", "torchvision"))]:
            del sys.modules[k]
        sys.modules.update(saved)
    torch.manual_seed(0)
    net = model.CLIP(embed_dim=512, quick_gelu=True,
                     vision_cfg=model.CLIPVisionCfg(layers=12, width=768, patch_size=32, image_size=224),
                     text_cfg=model.CLIPTextCfg(context_length=77, vocab_size=49408, width=512, heads=8, layers=12))
    return net.eval(), tokenizer.SimpleTokenizer()


def test_tokenizer_and_encoders_equal_open_clips(reference):
    net, ref_tok = reference
    ours = C.Clip(net.state_dict(), C.ClipTokenizer(_vocab_or_skip()), "quickgelu")
    texts = ["a diagram", "A photo of a CAT!!", "café's 3 dogs &amp; 12 cats", "red apple", "x" * 300]
    assert torch.equal(ours.tokenizer(texts), ref_tok(texts))
    assert ours.tokenizer(["a diagram"])[0, :4].tolist() == [49406, 320, 22697, 49407]  # CLIP's README example
    img = torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    mean, std = torch.tensor(C.MEAN).view(1, 3, 1, 1), torch.tensor(C.STD).view(1, 3, 1, 1)
    with torch.no_grad():
        assert torch.allclose(ours.encode_image(img), net.encode_image((img - mean) / std), atol=1e-4)
        assert torch.allclose(ours.encode_text(texts), net.encode_text(ref_tok(texts)), atol=1e-4)


def test_shapes_resizing_and_gradients_reach_the_pixels():
    model = C.Clip(C.random_weights(layers=1), None, "gelu")
    assert (model.vision_layers, model.text_layers, model.vision_heads, model.text_heads) == (1, 1, 12, 8)
    img = torch.rand(3, 3, 96, 96, requires_grad=True)
    emb = model.encode_image(img)  # resized to 224 inside
    assert emb.shape == (3, 512)
    emb.sum().backward()
    assert img.grad.abs().sum() > 0
    tokens = torch.zeros(2, 77, dtype=torch.long)
    tokens[:, :3] = torch.tensor([49406, 320, 49407])
    tokens[1, 5] = 7  # after the end token: the causal mask keeps it from the pooled state
    out = model.encode_tokens(tokens)
    assert out.shape == (2, 512) and torch.allclose(out[0], out[1], atol=1e-5)
    with pytest.raises(RuntimeError, match="no tokenizer"):
        model.encode_text(["a"])


def test_weight_files_round_trip(tmp_path):
    from safetensors.torch import save_file

    w = C.random_weights(layers=1)
    save_file(w, str(tmp_path / "clip.safetensors"))
    torch.save({"state_dict": {f"module.{k}": v for k, v in w.items()}}, str(tmp_path / "clip.pt"))
    for name in ("clip.safetensors", "clip.pt"):
        back = C.read_state_dict(tmp_path / name)
        assert set(back) == set(w) and all(torch.equal(back[k], w[k]) for k in w)


def test_missing_or_broken_weights_say_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setattr(C, "CACHE_PLACES", (str(tmp_path / "nothing.pt"),))
    with pytest.raises(FileNotFoundError, match="athanor never downloads them") as err:
        C.find_weights()
    assert "~/.cache/athanor/clip/ViT-B-32.pt" in str(err.value)
    with pytest.raises(FileNotFoundError, match="no CLIP weights at"):
        C.find_weights(tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00" * 64)
    with pytest.raises(ValueError, match="could not be read as CLIP weights"):
        C.read_state_dict(junk)
    with pytest.raises(ValueError, match="not a CLIP ViT state dict"):
        C.Clip({"x": torch.zeros(1)}, None)
    bad_vocab = tmp_path / "v.txt.gz"
    import gzip

    with gzip.open(bad_vocab, "wt") as f:
        f.write("header\na b\n")
    with pytest.raises(ValueError, match="not CLIP's BPE merges file"):
        C.ClipTokenizer(bad_vocab)


def test_the_system_loads_clip_from_a_given_file(tmp_path):
    import dataclasses

    from athanor.systems.clipdraw import system

    _vocab_or_skip()
    from safetensors.torch import save_file

    save_file(C.random_weights(layers=1), str(tmp_path / "clip.safetensors"))
    cfg = dataclasses.replace(system.Config(), clip_activation="gelu")
    model = system._load(f"clip:{tmp_path / 'clip.safetensors'}", 224, cfg)
    assert isinstance(model, C.Clip) and model.encode_text(["red apple"]).shape == (1, 512)
