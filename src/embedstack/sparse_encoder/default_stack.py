"""The modules a folder not saved as a SparseEncoder becomes when loaded as one, as in sentence-transformers 6.2.

* A plain Hugging Face masked language model (``config.json`` names a ``*ForMaskedLM`` architecture): the
  Transformer in its "fill-mask" task (an ``AutoModelForMaskedLM``, whose vocabulary logits per token SpladePooling
  max-pools after ``log(1 + relu(.))``): SPLADE.
* Any other plain Hugging Face folder (or the save of another model kind, e.g. a MultiVectorEncoder): CSR, the
  Transformer, mean Pooling and a new ``SparseAutoEncoder(dim, 4 * dim, k=256, k_aux=512)`` (k at most 4 * dim).
* A SentenceTransformer save: its own modules, then a new ``SparseAutoEncoder(dim, 4 * dim, k=dim // 4,
  k_aux=dim // 2)`` on its output: CSR.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path

from torch import nn

from embedstack.modules.module_io import LoadOptions
from embedstack.modules.pooling import Pooling
from embedstack.modules.sparse_auto_encoder import SparseAutoEncoder
from embedstack.modules.splade_pooling import SpladePooling
from embedstack.modules.transformer.module import Transformer
from embedstack.persistence.folder import load_folder
from embedstack.persistence.layout import MODEL_TYPE, read_modules_json, saved_model_type

TASK = "fill-mask"


def sparse_encoder_modules(folder: Path, options: LoadOptions) -> OrderedDict[str, nn.Module]:
    """SPLADE for a masked language model, CSR for anything else (see the module docstring)."""
    if read_modules_json(folder) is not None and saved_model_type(folder) == MODEL_TYPE:
        modules = load_folder(folder, options, model_type=MODEL_TYPE).modules
        dimension = _output_dimension(modules.values())
        modules[str(len(modules))] = SparseAutoEncoder(dimension, 4 * dimension, k=dimension // 4, k_aux=dimension // 2)
        return modules
    if _is_masked_lm(folder):
        transformer = Transformer.load(str(folder), init_defaults={"transformer_task": TASK}, **options.load_kwargs())
        vocabulary = int(transformer.config.vocab_size)
        return OrderedDict([("0", transformer), ("1", SpladePooling("max", "relu", embedding_dimension=vocabulary))])
    transformer = Transformer.load(str(folder), **options.load_kwargs())
    dimension = int(transformer.get_embedding_dimension())
    return OrderedDict(
        [
            ("0", transformer),
            ("1", Pooling(dimension, "mean")),
            # k at most the hidden width: the reference's k=256 cannot apply to a backbone under 64 wide
            ("2", SparseAutoEncoder(dimension, 4 * dimension, k=min(256, 4 * dimension), k_aux=512)),
        ]
    )


def _is_masked_lm(folder: Path) -> bool:
    """Whether ``config.json`` names a ``*ForMaskedLM`` architecture (older configs name none: not detected)."""
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    architectures = config.get("architectures") if isinstance(config, dict) else None
    return any(str(name).endswith("ForMaskedLM") for name in architectures or [])


def _output_dimension(modules: Iterable[nn.Module]) -> int:
    for module in reversed(list(modules)):
        method = getattr(module, "get_embedding_dimension", None)
        if callable(method) and method() is not None:
            return int(method())
    raise ValueError("Cannot add a SparseAutoEncoder: no module of this SentenceTransformer reports its output width.")
