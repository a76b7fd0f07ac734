"""The modules a plain Hugging Face folder becomes when loaded as a CrossEncoder: its sequence classifier.

This is how sentence-transformers before 6 saved cross-encoders (no modules.json; the activation in config.json),
and how a classifier from the Hub (``BertForSequenceClassification``, ...) loads. A backbone without a classifier
head gets a new one-label head, as in the reference; so does the folder of another model kind (a SentenceTransformer
save), whose own modules are not used (``Transformer.load`` reads its "feature-extraction" settings as the
classifier's task asks, see ``_for_task`` in modules/transformer/module.py).
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Final

from torch import nn

from embedstack.errors import ModelFormatError
from embedstack.fileio import read_json
from embedstack.modules.module_io import LoadOptions
from embedstack.modules.transformer.module import Transformer

TASK: Final = "sequence-classification"


def cross_encoder_modules(folder: Path, options: LoadOptions) -> OrderedDict[str, nn.Module]:
    """Transformer (task "sequence-classification") for the classifier in ``folder``."""
    config_file = folder / "config.json"
    config = read_json(config_file) if config_file.is_file() else {}
    architectures = (config.get("architectures") or [""]) if isinstance(config, dict) else [""]
    if architectures[0].endswith("ForCausalLM"):
        raise ModelFormatError(
            f"{config_file} names {architectures[0]}, a causal language model: a reranker built on one scores "
            "pairs by its next-token logits (sentence-transformers' LogitScore), which embedstack does not run "
            "yet. Use a sequence-classification cross-encoder (e.g. a BERT- or XLM-R-based reranker)."
        )
    transformer = Transformer.load(str(folder), init_defaults={"transformer_task": TASK}, **options.load_kwargs())
    return OrderedDict([("0", transformer)])
