"""A model's fingerprint: a hash of everything in the model that changes a vector.

Every weight and buffer (name, dtype, shape and bytes), each module's class and config, the tokenizer's full
definition and ``max_seq_length``, the backend, and an ONNX backbone's file. A new revision of a model changes some
of these; so does fine-tuning one weight. Hashing ~90 MB of MiniLM weights takes about a tenth of a second, so the
result is kept per model and recomputed only when a tensor was replaced or changed in place (torch counts in-place
changes in each tensor's version).
"""

from __future__ import annotations

import hashlib
import json
import weakref
from pathlib import Path
from typing import Any

import torch

_MEMO: weakref.WeakKeyDictionary[Any, tuple[tuple[Any, ...], str]] = weakref.WeakKeyDictionary()
_TOKENIZER_DIGESTS: dict[str, str] = {}  # digest of a tokenizer's JSON -> digest without truncation and padding


def model_fingerprint(model: torch.nn.Module) -> str:
    """The hex digest that names ``model``'s current weights, configs and tokenizer."""
    state = _tensor_state(model)
    stamp = (
        tuple((name, id(t), t.data_ptr(), t._version, tuple(t.shape), t.dtype) for name, t in state),
        _describe(model),
    )
    memo = _MEMO.get(model)
    if memo is not None and memo[0] == stamp:
        return memo[1]
    digest = hashlib.blake2b(digest_size=32)
    digest.update(stamp[1].encode("utf-8"))
    for name, tensor in state:
        digest.update(f"\n{name}:{tensor.dtype}:{tuple(tensor.shape)}\n".encode())
        flat = tensor.detach().to("cpu").contiguous().reshape(-1)
        if flat.numel():
            digest.update(flat.view(torch.uint8).numpy().tobytes())
    for module in model.modules():
        onnx_model = getattr(module, "onnx_model", None)
        if isinstance(onnx_model, Path):
            digest.update(_file_digest(onnx_model))
        elif isinstance(onnx_model, bytes):
            digest.update(hashlib.blake2b(onnx_model).digest())
    result = digest.hexdigest()
    _MEMO[model] = (stamp, result)
    return result


def _tensor_state(model: torch.nn.Module) -> list[tuple[str, torch.Tensor]]:
    """Every parameter and buffer, by name (a shared tensor once)."""
    named = list(model.named_parameters(remove_duplicate=True)) + list(model.named_buffers(remove_duplicate=True))
    return sorted(named, key=lambda item: item[0])


def _describe(model: torch.nn.Module) -> str:
    """Module classes and configs, the tokenizer and the sequence length, as canonical JSON."""
    modules = []
    for name, module in model.named_children():
        getter = getattr(module, "get_config_dict", None)
        config = getter() if callable(getter) else {}
        modules.append({"name": name, "class": f"{type(module).__module__}.{type(module).__qualname__}",
                        "config": config, "backend": getattr(module, "backend", None)})  # fmt: skip
    description = {
        "modules": modules,
        "tokenizer": _tokenizer_digest(getattr(model, "tokenizer", None)),
        "max_seq_length": getattr(model, "max_seq_length", None),
    }
    return json.dumps(description, sort_keys=True, default=stable_repr)


def stable_repr(value: Any) -> str:
    """A JSON stand-in for ``value`` that is the same in every process (no memory addresses)."""
    text = repr(value)
    return type(value).__qualname__ if " at 0x" in text else text


def _tokenizer_digest(tokenizer: Any) -> str:
    """A digest of the tokenizer's definition, without the truncation and padding that each call sets anew."""
    backend = getattr(tokenizer, "backend_tokenizer", tokenizer)
    if not callable(getattr(backend, "to_str", None)):
        return stable_repr(tokenizer)
    raw = backend.to_str()
    seen = hashlib.blake2b(raw.encode("utf-8")).hexdigest()
    if seen not in _TOKENIZER_DIGESTS:
        definition = json.loads(raw)
        definition.pop("truncation", None)
        definition.pop("padding", None)
        canonical = json.dumps(definition, sort_keys=True).encode("utf-8")
        _TOKENIZER_DIGESTS[seen] = hashlib.blake2b(canonical).hexdigest()
    return _TOKENIZER_DIGESTS[seen]


def _file_digest(path: Path) -> bytes:
    digest = hashlib.blake2b()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.digest()
