"""The modules a plain Hugging Face folder (no modules.json) becomes: Transformer, then Pooling.

As in sentence-transformers: last-token pooling for a causal language model, mean pooling otherwise, and no
Pooling after a backbone that already gives one vector per input (a CLIP-style dual encoder).
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

from torch import nn

from embedstack.modules.module_io import LoadOptions
from embedstack.modules.pooling import Pooling
from embedstack.modules.transformer.module import Transformer


def default_modules(folder: Path, options: LoadOptions) -> OrderedDict[str, nn.Module]:
    """Transformer (or a registered backend's input module) + Pooling for the backbone in ``folder``."""
    transformer = Transformer.load(str(folder), **options.load_kwargs())
    modules: OrderedDict[str, nn.Module] = OrderedDict([("0", transformer)])
    if getattr(transformer, "module_output_name", "token_embeddings") == "token_embeddings":
        modules["1"] = Pooling(
            transformer.get_embedding_dimension(), "lasttoken" if _is_causal(transformer) else "mean"
        )
    return modules


def _is_causal(module: nn.Module) -> bool:
    config = getattr(module, "config", None)
    if isinstance(config, dict):  # a backend's own config (the native BERT encoder is never causal)
        return False
    architectures = getattr(config, "architectures", None) or [""]
    return architectures[0].endswith("ForCausalLM") and getattr(config, "is_causal", True) is not False
