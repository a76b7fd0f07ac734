"""Graph-optimized ONNX files under optimum's names: ``onnx/model_O1.onnx`` to ``model_O4.onnx``.

The levels follow optimum's ``AutoOptimizationConfig``: O1 basic graph optimizations; O2 also the transformer
fusions (attention, layer norm, GELU, embeddings); O3 O2 with the approximate GELU; O4 O3 in fp16, for GPUs.
Built with ``onnxruntime.transformers.optimizer``, no optimum. On CPU a session applies O2's fusions to a plain
``model.onnx`` anyway at load (``ORT_ENABLE_ALL``); the files save that time and are what sentence-transformers'
users load by ``file_name``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

OPTIMIZED_FILES = {f"O{level}": f"model_O{level}.onnx" for level in range(1, 5)}


def optimize_onnx(source: Path, target: Path, level: str, config: Any) -> Path:
    """Write ``source`` (an exported backbone) optimized at ``level`` ("O1" to "O4") to ``target``.

    ``config`` is the backbone's Hugging Face config (its head count and width guide the attention fusion).
    """
    if level not in OPTIMIZED_FILES:
        raise ValueError(f"optimization level {level!r} is not one of {list(OPTIMIZED_FILES)}.")
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    heads = int(getattr(config, "num_attention_heads", 0) or getattr(config, "n_heads", 0) or 0)
    width = int(getattr(config, "hidden_size", 0) or getattr(config, "dim", 0) or 0)
    if level == "O1":
        model = optimize_model(str(source), "bert", heads, width, opt_level=1, only_onnxruntime=True)
    else:
        options = FusionOptions("bert")
        options.enable_gelu_approximation = level in ("O3", "O4")
        model = optimize_model(str(source), "bert", heads, width, optimization_options=options, opt_level=0)
        if level == "O4":
            model.convert_float_to_float16(keep_io_types=True)
    fused = sorted({node.op_type for node in model.model.graph.node} & {"Attention", "SkipLayerNormalization"})
    logger.info("Optimized %s at %s (fused ops: %s)", source.name, level, ", ".join(fused) or "none")
    model.save_model_to_file(str(target))
    return target
