"""Running a list of inputs through a model, batch by batch, and restoring input order."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F

from embedstack.engine.batching import fixed_size_batches, longest_first

logger = logging.getLogger(__name__)

OutputValue = Literal["sentence_embedding", "token_embeddings"] | None


@dataclass
class EncodePlan:
    """What to compute for each input; filled by ``SentenceTransformer.encode``."""

    prompt: str | None = None
    batch_size: int = 32
    output_value: OutputValue = "sentence_embedding"
    normalize_embeddings: bool = False
    truncate_dim: int | None = None
    to_cpu: bool = True
    show_progress_bar: bool = False
    device: torch.device | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class EncodeResult:
    """Per-input outputs in input order, and which inputs the tokenizer truncated."""

    outputs: torch.Tensor | list[Any]
    truncated: np.ndarray


def run(model: Any, inputs: list[Any], plan: EncodePlan) -> EncodeResult:
    """Encode ``inputs`` with ``model`` (which provides ``preprocess`` and ``forward``)."""
    order = longest_first(inputs)
    truncated = np.zeros(len(inputs), dtype=bool)
    chunks: list[Any] = []
    batches = fixed_size_batches(order, plan.batch_size)
    if plan.show_progress_bar:
        from tqdm.auto import tqdm

        batches = tqdm(batches, total=-(-len(order) // plan.batch_size), desc="Batches")
    for indices in batches:
        batch = [inputs[i] for i in indices]
        features = model.preprocess(batch, prompt=plan.prompt, **plan.kwargs)
        flags = features.pop("truncated", None)
        if flags is not None:
            truncated[indices] = flags.cpu().numpy()
        features = _to_device(features, plan.device)
        features = model(features, **plan.kwargs)
        chunks.append(_batch_outputs(features, len(batch), plan))
    restore = np.argsort(order, kind="stable")
    if plan.output_value == "sentence_embedding":
        outputs = torch.cat(chunks) if chunks else torch.empty(0)
        return EncodeResult(outputs[torch.from_numpy(restore)] if len(restore) else outputs, truncated)
    items = [item for chunk in chunks for item in chunk]
    return EncodeResult([items[i] for i in restore], truncated)


def _batch_outputs(features: dict[str, Any], batch_len: int, plan: EncodePlan) -> Any:
    if plan.truncate_dim is not None and "sentence_embedding" in features:
        features["sentence_embedding"] = features["sentence_embedding"][..., : plan.truncate_dim]
    if plan.output_value == "sentence_embedding":
        embeddings = features["sentence_embedding"]  # (batch, dim)
        if plan.normalize_embeddings:
            embeddings = F.normalize(embeddings, p=2, dim=1)
        return embeddings.cpu() if plan.to_cpu else embeddings
    if plan.output_value == "token_embeddings":
        rows = []
        for tokens, mask in zip(features["token_embeddings"], features["attention_mask"]):  # (seq, dim), (seq,)
            nonzero = torch.nonzero(mask).flatten()
            last = int(nonzero[-1]) if len(nonzero) else 0
            rows.append(tokens[: last + 1])
        return rows
    items = []
    for index in range(batch_len):
        items.append(
            {
                name: value[index]
                if isinstance(value, torch.Tensor) and value.ndim > 0 and value.shape[0] == batch_len
                else value
                for name, value in features.items()
            }
        )
    return items


def _to_device(features: dict[str, Any], device: torch.device | None) -> dict[str, Any]:
    if device is None:
        return features
    return {key: value.to(device) if isinstance(value, torch.Tensor) else value for key, value in features.items()}
