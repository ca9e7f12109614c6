"""What PyTorch systems share: generators from integer seeds and the state hooks of the contract.

A PyTorch system's state is whatever it likes (a model, an optimiser, a ``torch.Generator``); to be
checkpointed it flattens the state into a dict of tensors with string keys, and these helpers turn that dict
into bytes and back through safetensors (a plain tensor container: no pickle, no code runs on load).

- ``generator(seed)``: a CPU ``torch.Generator`` seeded with the integer.
- ``tensors_to_bytes`` / ``tensors_from_bytes``: safetensors round trip of a flat ``{name: tensor}`` dict.
- ``optimizer_tensors`` / ``load_optimizer_tensors``: an optimiser's per-parameter state (Adam's moments and
  step counts) as such a dict and back; the hyper-parameters come from the config, not the checkpoint.
- ``block``: wait for queued CUDA work (timing); ``runtime_info``: torch's version, threads and devices.

torch is imported inside each function: the core never needs it, and a JAX-only install never loads it.
"""

from __future__ import annotations

__all__ = ["generator", "tensors_to_bytes", "tensors_from_bytes", "optimizer_tensors", "load_optimizer_tensors",
           "block", "runtime_info"]


def generator(seed: int):
    import torch

    from athanor.core.seeds import check_seed

    return torch.Generator().manual_seed(check_seed(seed))


def tensors_to_bytes(tensors: dict) -> bytes:
    """safetensors bytes of ``{name: tensor}`` (contiguous CPU copies; shared storage is fine)."""
    from safetensors.torch import save

    return save({k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()})


def tensors_from_bytes(payload: bytes) -> dict:
    from safetensors.torch import load

    return load(payload)


def optimizer_tensors(optimizer, prefix: str = "opt") -> dict:
    """``{f"{prefix}.{param index}.{name}": tensor}`` for every tensor in the optimiser's per-parameter state."""
    import torch

    out = {}
    for index, values in optimizer.state_dict()["state"].items():
        for name, value in values.items():
            out[f"{prefix}.{index}.{name}"] = value if torch.is_tensor(value) else torch.tensor(value)
    return out


def load_optimizer_tensors(optimizer, tensors: dict, prefix: str = "opt") -> None:
    """Put the per-parameter state saved by ``optimizer_tensors`` back into ``optimizer`` (built from the config)."""
    state = optimizer.state_dict()
    per_param: dict[int, dict] = {}
    for key, value in tensors.items():
        head, _, rest = key.partition(".")
        if head != prefix:
            continue
        index, _, name = rest.partition(".")
        per_param.setdefault(int(index), {})[name] = value
    state["state"] = per_param
    optimizer.load_state_dict(state)


def block(tree=None) -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def runtime_info() -> dict:
    import torch

    devices = ["cpu"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    return {"framework": "torch", "version": torch.__version__, "threads": torch.get_num_threads(),
            "devices": devices}
