"""The native backend: plain BERT encoders run with ``tokenizers`` and torch only (no transformers import).

It loads the same folders as the Transformer module and gives the same vectors, but starts faster, which is
what a one-off ``embedstack encode "hello"`` pays for. Folders it cannot run exactly make
:func:`native_input_module` return None, and the caller uses the Transformer module instead.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from embedstack.backends.native_bert import NativeBert, supports
from embedstack.backends.native_graph import GraphForward
from embedstack.backends.stand_in import TransformerStandIn
from embedstack.engine.tokenized import TokenizedTexts, pad_batch
from embedstack.errors import ModelFormatError
from embedstack.fileio import read_json
from embedstack.modules.transformer.config import FEATURES, TASK_DEFAULTS
from embedstack.modules.transformer.module import Transformer
from embedstack.modules.transformer.support import drop_preprocess_flags, split_text_inputs

if TYPE_CHECKING:
    from tokenizers import Encoding, Tokenizer

logger = logging.getLogger(__name__)
_PLAIN_CONFIG_KEYS = {"transformer_task", "modality_config", "module_output_name", "max_seq_length", "do_lower_case"}
_VERY_LARGE = int(1e30)
CLASSIFIER = "sequence-classification"
# Where sentence-transformers < 6 kept a cross-encoder's activation: read from the transformers config only.
_LEGACY_ACTIVATION_KEYS = {"sentence_transformers", "sbert_ce_default_activation_function"}


def native_input_module(folder: Path, task: str = FEATURES) -> NativeTransformer | None:
    """A NativeTransformer for the Transformer module saved in ``folder``, or None if it needs transformers.

    ``task`` is the folder's transformer_task as the loader resolved it: "feature-extraction" (an embedding
    backbone) or "sequence-classification" (a cross-encoder's ``BertForSequenceClassification``, whose logits
    become ``scores``).
    """
    config_file = folder / "config.json"
    if not (
        config_file.is_file() and (folder / "model.safetensors").is_file() and (folder / "tokenizer.json").is_file()
    ):
        return None
    config = read_json(config_file)
    module_config = _module_config(folder, task)
    if not isinstance(config, dict) or module_config is None or not supports(config, task):
        return None
    if task == CLASSIFIER and _LEGACY_ACTIVATION_KEYS & set(config):
        return None  # the CrossEncoder reads that activation from the transformers config: keep it on torch
    tokenizer_config = (
        read_json(folder / "tokenizer_config.json") if (folder / "tokenizer_config.json").is_file() else {}
    )
    if tokenizer_config.get("padding_side", "right") != "right" or tokenizer_config.get("chat_template"):
        return None
    if (folder / "chat_template.jinja").is_file():
        return None
    try:
        encoder = NativeBert.from_folder(folder, classifier=task == CLASSIFIER)
    except KeyError as exc:  # tensor names from an unusual checkpoint, or a classifier without its trained head
        logger.info("Native backend cannot map %s (%s); using the Transformer module", folder, exc)
        return None
    return NativeTransformer(folder, encoder, config, tokenizer_config, module_config, task=task)


def _module_config(folder: Path, task: str) -> dict[str, Any] | None:
    """The folder's Transformer config, read as the Transformer reads it; None for more than a text ``task`` model.

    As the onnx backend reads it: a classifier folder's saved task (a SentenceTransformer save loaded as a
    CrossEncoder says "feature-extraction") gives way to ``task``, but another output feature does not.
    """
    config = Transformer.load_config(str(folder))
    if set(config) - _PLAIN_CONFIG_KEYS or task not in TASK_DEFAULTS or task == "fill-mask":
        return None
    if task == FEATURES and config.get("transformer_task", FEATURES) != FEATURES:
        return None
    modality_config, output_feature = TASK_DEFAULTS[task]
    if config.get("modality_config", modality_config) != modality_config:
        return None
    if config.get("module_output_name", output_feature) != output_feature:
        return None
    return config


class NativeTransformer(TransformerStandIn):
    """Runs a BERT folder like the Transformer module, with ``tokenizers`` and :class:`NativeBert`."""

    backend = "native"
    exact = True  # the Transformer's vectors, so its repr is the Transformer's

    def __init__(
        self,
        folder: Path,
        encoder: NativeBert,
        config: dict[str, Any],
        tokenizer_config: dict[str, Any],
        module_config: dict[str, Any],
        *,
        task: str = FEATURES,
    ) -> None:
        super().__init__()
        from tokenizers import Tokenizer

        self.model = encoder
        self.config = config
        if task == CLASSIFIER:  # writes the classifier's logits as scores, as the Transformer module does
            assert encoder.classifier is not None
            modality_config, self.module_output_name = TASK_DEFAULTS[task]
            self.transformer_task, self.modality_config = task, {"text": dict(modality_config["text"])}
            self.config = {**config, "num_labels": encoder.classifier.out_features}
        self._output = "logits" if task == CLASSIFIER else "last_hidden_state"
        self._graph = GraphForward(encoder, self._output)  # inference through the traced graph (see native_graph)
        self._tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self._tokenizer.no_padding()
        own_limit = int(tokenizer_config.get("model_max_length", _VERY_LARGE))
        self.max_seq_length = self.limit_and_case(self._tokenizer, config, module_config, own_limit=own_limit)
        pad_token = tokenizer_config.get("pad_token", "[PAD]")
        pad_token = pad_token.get("content") if isinstance(pad_token, dict) else pad_token
        self.pad_token_id = self._tokenizer.token_to_id(pad_token) if pad_token else 0
        self.special_ids = {i for i, token in self._tokenizer.get_added_tokens_decoder().items() if token.special}

    @property
    def max_seq_length(self) -> int:
        """Tokens kept per input; setting it also sets the tokenizer's truncation."""
        return self._max_seq_length

    @max_seq_length.setter
    def max_seq_length(self, value: int) -> None:
        self._max_seq_length = int(value)
        self._tokenizer.enable_truncation(max_length=self._max_seq_length)

    @property
    def tokenizer(self) -> Tokenizer:
        """The ``tokenizers.Tokenizer`` read from ``tokenizer.json``."""
        return self._tokenizer

    def get_embedding_dimension(self) -> int:
        """The encoder's hidden size."""
        return self.config["hidden_size"]

    def _encode(self, inputs: list[Any], prompt: str | None) -> list[Encoding]:
        texts, pairs = split_text_inputs(inputs, self.modalities)
        if prompt:
            texts = [prompt + text for text in texts]
        batch = list(zip(texts, pairs)) if pairs is not None else texts
        return self._tokenizer.encode_batch(batch)

    def tokenize_unpadded(self, inputs: list[Any], prompt: str | None = None, **kwargs: Any) -> TokenizedTexts | None:
        """Token ids per input, unpadded; None when the call asks for options only the Transformer has."""
        if kwargs.get("processing_kwargs") or "max_length" in kwargs:
            return None
        encodings = self._encode(inputs, prompt)
        ids = [encoding.ids for encoding in encodings]
        return TokenizedTexts(
            input_ids=ids,
            token_type_ids=[encoding.type_ids for encoding in encodings],
            lengths=np.fromiter(map(len, ids), dtype=np.int64, count=len(ids)),
            truncated=np.fromiter((bool(e.overflowing) for e in encodings), dtype=bool, count=len(ids)),
            prompt_length=self._prompt_length(prompt) if prompt else None,
        )

    def _prompt_length(self, prompt: str) -> int:
        ids = self._tokenizer.encode(prompt).ids
        return len(ids) - 1 if ids and ids[-1] in self.special_ids else len(ids)

    def collate(self, tokenized: TokenizedTexts, indices: np.ndarray) -> dict[str, Any]:
        """Pad rows ``indices`` of ``tokenized`` into tensors, as a right-padding tokenizer would."""
        if self.pad_token_id is None:
            raise ModelFormatError(
                "This model's pad token is not in its tokenizer.json, so batches cannot be padded. Load it with "
                "backend='torch', or restore tokenizer.json from the original model."
            )
        return pad_batch(tokenized, indices, pad_id=self.pad_token_id)

    def preprocess(self, inputs: list[Any], prompt: str | None = None, **kwargs: Any) -> dict[str, Any]:
        """Tokenize and pad one batch, flagging the inputs that were truncated."""
        tokenized = self.tokenize_unpadded(inputs, prompt, **kwargs)
        if tokenized is None:
            raise ValueError("The native backend takes no processing_kwargs or max_length; use backend='torch'.")
        features = self.collate(tokenized, np.arange(len(tokenized)))
        features["truncated"] = torch.from_numpy(tokenized.truncated)
        return features

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Add ``token_embeddings`` (the encoder's last hidden state), or a classifier's logits as ``scores``."""
        drop_preprocess_flags(features)
        if self._graph.encoder is not self.model:  # the encoder was replaced
            self._graph = GraphForward(self.model, self._output)
        output = self._graph(features["input_ids"], features.get("attention_mask"), features.get("token_type_ids"))
        features[self.module_output_name] = output  # (batch, seq, hidden) token embeddings, or (batch, labels)
        return features

    def save(self, output_path: str, *args: Any, **kwargs: Any) -> None:
        """Refuse: a native model is saved from the torch backend (``backend='torch'``)."""
        raise ValueError("A model loaded with backend='native' cannot be saved; load it with backend='torch' to save.")

    @property
    def architecture(self) -> str:
        """The backbone class the folder's config names (a BERT)."""
        return (self.config.get("architectures") or ["BertModel"])[0]


__all__ = ["NativeTransformer", "native_input_module"]
