"""Export a Transformer module's backbone to ONNX.

The layout is the one sentence-transformers and optimum use: ``onnx/model.onnx`` with int64 inputs
``input_ids``, ``attention_mask`` (and ``token_type_ids`` where the backbone takes them), dynamic batch and
sequence axes, and the output ``last_hidden_state`` (token vectors, batch x sequence x width) for an embedding
backbone, ``logits`` (batch x labels) for a cross-encoder's classifier (transformer_task
"sequence-classification", what optimum's ORTModelForSequenceClassification reads). No optimum:
``torch.onnx.export`` does the work. The backbone is traced with its eager attention: the SDPA path exports its
mask handling as ``Where``/``IsNaN`` over every (batch, head, query, key) score, 15% of onnxruntime's time on
all-MiniLM-L6-v2; the eager path adds the mask instead, and computes the same vectors (onnxruntime also fuses it
further).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from embedstack.errors import MissingExtraError

logger = logging.getLogger(__name__)

ONNX_FOLDER = "onnx"
ONNX_FILE = "model.onnx"
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
OUTPUT_NAME = "last_hidden_state"
# What each transformer_task's export writes, and its dynamic axes: a classifier's logits have no sequence axis, an
# MLM's (a sparse encoder's, (batch, sequence, vocabulary)) have one.
OUTPUT_NAMES = {"feature-extraction": OUTPUT_NAME, "sequence-classification": "logits", "fill-mask": "logits"}
OUTPUT_RANKS = {"feature-extraction": 3, "sequence-classification": 2, "fill-mask": 3}
_OUTPUT_AXES = {
    "feature-extraction": {0: "batch", 1: "sequence"},
    "sequence-classification": {0: "batch"},
    "fill-mask": {0: "batch", 1: "sequence"},
}
ONNX_INSTALL = "pip install 'embedstack[onnx]'"
_SAMPLE = ["embedstack exports this backbone", "and a second, longer sentence to pad the first one"]


class _Backbone(torch.nn.Module):
    """The backbone with positional inputs (what the exporter traces) and one output (token vectors or logits)."""

    def __init__(self, model: torch.nn.Module, names: list[str], output: str) -> None:
        super().__init__()
        self.model = model
        self.names = names
        self.output = output

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        output = self.model(**dict(zip(self.names, inputs)), return_dict=True)
        return getattr(output, self.output)


def output_name(task: str) -> str:
    """The output an export for ``task`` (a transformer_task) writes; ValueError for a task with no export."""
    if task not in OUTPUT_NAMES:
        raise ValueError(
            f"ONNX export covers the transformer_tasks {sorted(OUTPUT_NAMES)}; this Transformer's is {task!r}. Run "
            "it with backend='torch'."
        )
    return OUTPUT_NAMES[task]


def export_backbone(transformer: Any, target: Path) -> Path:
    """Write ``transformer``'s Hugging Face backbone to the ONNX file ``target``; returns ``target``.

    An embedding backbone's output is ``last_hidden_state``, a classifier's (transformer_task
    "sequence-classification") and a masked language model's ("fill-mask", a sparse encoder's) ``logits``: see
    :data:`OUTPUT_NAMES`.

    Raises:
        MissingExtraError: onnx is not installed.
        ValueError: the module has no text tokenizer (only text backbones are exported), or its task has no export.
    """
    require_onnx()
    tokenizer = getattr(transformer, "tokenizer", None)
    if tokenizer is None or list(transformer.modality_config) != ["text"]:
        raise ValueError(
            "ONNX export covers text backbones (a Transformer with a tokenizer and a text-only modality_config); "
            f"this one takes {list(transformer.modality_config)}."
        )
    task = getattr(transformer, "transformer_task", "feature-extraction")
    output = output_name(task)
    backbone = transformer.model
    sample = tokenizer(_SAMPLE, padding=True, return_tensors="pt")
    accepted = transformer.model_forward_params or set(sample)
    names = [name for name in INPUT_NAMES if name in sample and name in accepted]
    target.parent.mkdir(parents=True, exist_ok=True)
    was_training = backbone.training
    wrapper = _Backbone(backbone, names, output).eval()  # eval() also puts the backbone in eval mode (no dropout)
    axes = {**{name: {0: "batch", 1: "sequence"} for name in names}, output: _OUTPUT_AXES[task]}
    try:
        with warnings.catch_warnings(), torch.no_grad(), _eager_attention(backbone):
            warnings.simplefilter("ignore")  # the tracer's notes on shape-dependent Python branches
            torch.onnx.export(
                wrapper,
                tuple(sample[name] for name in names),
                str(target),
                input_names=names,
                output_names=[output],
                dynamic_axes=axes,
                opset_version=17,
                dynamo=False,
            )
    finally:
        backbone.train(was_training)
    logger.info("Exported the %s backbone to %s", type(backbone).__name__, target)
    return target


@contextmanager
def _eager_attention(backbone: Any) -> Iterator[None]:
    """Run ``backbone`` with its eager attention for the duration (where it has one), then restore its own."""
    config = getattr(backbone, "config", None)
    current = getattr(config, "_attn_implementation", None)
    switch = getattr(backbone, "set_attn_implementation", None)
    if current in (None, "eager") or switch is None:
        yield
        return
    try:
        switch("eager")
    except (ValueError, ImportError):  # a backbone without an eager path exports as it is
        yield
        return
    try:
        yield
    finally:
        switch(current)


def require_onnx() -> None:
    """Raise MissingExtraError with the pip command unless onnx and onnxruntime are installed."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        raise MissingExtraError(
            f"ONNX export and the onnx backend need onnx and onnxruntime. Run: {ONNX_INSTALL}"
        ) from None
