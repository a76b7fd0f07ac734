"""The modules a plain Hugging Face folder becomes when loaded as a SparseEncoder: its MLM, then SpladePooling.

As in sentence-transformers: the Transformer in its "fill-mask" task (an ``AutoModelForMaskedLM``, whose vocabulary
logits per token SpladePooling max-pools after ``log(1 + relu(.))``). An embedding model's folder becomes one on
its backbone, with the masked-language-model head its checkpoint has (or a new one).
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

from torch import nn

from embedstack.modules.module_io import LoadOptions
from embedstack.modules.splade_pooling import SpladePooling
from embedstack.modules.transformer.module import Transformer

TASK = "fill-mask"


def sparse_encoder_modules(folder: Path, options: LoadOptions) -> OrderedDict[str, nn.Module]:
    """Transformer (task "fill-mask") + SpladePooling("max", "relu") for the MLM in ``folder``."""
    transformer = Transformer.load(str(folder), init_defaults={"transformer_task": TASK}, **options.load_kwargs())
    vocabulary = int(transformer.config.vocab_size)
    return OrderedDict([("0", transformer), ("1", SpladePooling("max", "relu", embedding_dimension=vocabulary))])
