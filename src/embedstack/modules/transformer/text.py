"""The Transformer's text path: tokenizer settings per call, and tokenizing once for the engine.

``tokenize_unpadded`` and ``collate`` make the Transformer a token batcher (engine/protocol.py): texts are
tokenized once without padding, and the engine pads the rows of each batch it forms, giving the same features as
the tokenizer's own padding.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from embedstack.engine.tokenized import TokenizedTexts, pad_batch
from embedstack.modules.transformer.checks import PROCESSING_KWARGS_KEYS, warn_unknown_processing_sections
from embedstack.modules.transformer.support import split_text_inputs


class TextTokenizing:
    """Tokenizer calls of a Transformer; the module provides what is declared below."""

    modality_config: dict[Any, dict[str, Any]]
    processing_kwargs: dict[str, dict[str, Any]]
    query_length: int | None
    document_length: int | None
    _prompt_lengths: dict[tuple[Any, ...], int]

    if TYPE_CHECKING:

        @property
        def tokenizer(self) -> Any:
            """The module's tokenizer."""

    def preprocess_text(
        self,
        inputs: list[Any],
        prompt: str | None = None,
        *,
        task: str | None = None,
        processing_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Tokenize texts or text pairs (``prompt`` prepended) into padded tensors, with truncation flags."""
        texts, pairs = split_text_inputs(inputs, list(self.modality_config))
        if prompt:
            texts = [prompt + text for text in texts]
        call_kwargs = self._tokenizer_kwargs(task, self._merged_processing_kwargs(processing_kwargs), kwargs)
        encoded = (
            self.tokenizer(texts, pairs, **call_kwargs) if pairs is not None else self.tokenizer(texts, **call_kwargs)
        )
        features: dict[str, Any] = dict(encoded)
        features["modality"] = "text"
        if prompt:
            features["prompt_length"] = self._prompt_length(prompt, call_kwargs)
        encodings = getattr(encoded, "encodings", None)
        if encodings is not None and call_kwargs.get("truncation"):
            features["truncated"] = torch.tensor([bool(enc.overflowing) for enc in encodings])
        return features

    def tokenize_unpadded(
        self,
        inputs: list[Any],
        prompt: str | None = None,
        *,
        task: str | None = None,
        processing_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> TokenizedTexts | None:
        """Tokenize without padding, for the engine to batch by length; None when :meth:`preprocess` must be used.

        Combined with :meth:`collate`, this gives the same features as :meth:`preprocess` on any batch.
        """
        tokenizer = self.tokenizer
        if (
            "message" in self.modality_config
            or not getattr(tokenizer, "is_fast", False)
            or tokenizer.pad_token_id is None
        ):
            return None
        if all(isinstance(item, str) for item in inputs):
            texts, pairs = list(inputs), None
        elif all(_is_text_pair(item) for item in inputs):
            texts, pairs = [item[0] for item in inputs], [item[1] for item in inputs]  # a cross-encoder's pairs
        else:
            return None  # non-text inputs take the general path
        call_kwargs = self._tokenizer_kwargs(task, self._merged_processing_kwargs(processing_kwargs), kwargs)
        if call_kwargs.pop("padding", True) is not True or call_kwargs.pop("return_tensors", "pt") != "pt":
            return None
        if set(call_kwargs) - {"truncation", "max_length", "add_special_tokens"}:
            return None  # options such as pad_to_multiple_of need the tokenizer's own padding
        if prompt:  # before the first text of a pair, as sentence-transformers does
            texts = [prompt + text for text in texts]
        encoded = tokenizer(texts, pairs, padding=False, return_attention_mask=False, **call_kwargs)
        if set(encoded) - {"input_ids", "token_type_ids"}:
            return None
        input_ids = encoded["input_ids"]
        truncated = np.fromiter((bool(enc.overflowing) for enc in encoded.encodings), dtype=bool, count=len(texts))
        return TokenizedTexts(
            input_ids=input_ids,
            token_type_ids=encoded.get("token_type_ids"),
            lengths=np.fromiter(map(len, input_ids), dtype=np.int64, count=len(input_ids)),
            truncated=truncated if call_kwargs.get("truncation") else np.zeros(len(texts), dtype=bool),
            prompt_length=self._prompt_length(prompt, {**call_kwargs, "padding": True}) if prompt else None,
        )

    def collate(self, tokenized: TokenizedTexts, indices: np.ndarray) -> dict[str, Any]:
        """Pad the rows ``indices`` of ``tokenized`` into tensors, as the tokenizer pads a batch."""
        tokenizer = self.tokenizer
        left = getattr(tokenizer, "padding_side", "right") == "left"
        return pad_batch(
            tokenized, indices, pad_id=tokenizer.pad_token_id, pad_type_id=tokenizer.pad_token_type_id, left=left
        )

    def _tokenizer_kwargs(
        self, task: str | None, merged: dict[str, dict[str, Any]], extra: dict[str, Any]
    ) -> dict[str, Any]:
        """The tokenizer settings for one call.

        Padding and truncation defaults, the task's max_length, then the "common" and "text" sections of the
        ``merged`` processing kwargs (see :meth:`_merged_processing_kwargs`).
        """
        call_kwargs: dict[str, Any] = {"padding": True, "truncation": "longest_first", "return_tensors": "pt"}
        length = {"query": self.query_length, "document": self.document_length}.get(task or "")
        if length is not None:
            call_kwargs["max_length"] = length
        if "max_length" in extra:
            call_kwargs["max_length"] = extra["max_length"]
        call_kwargs.update(merged.get("common", {}))
        call_kwargs.update(merged.get("text", {}))
        return call_kwargs

    def _merged_processing_kwargs(self, per_call: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
        """The module's ``processing_kwargs`` with the per-call ones merged in, section by section."""
        merged = {section: dict(values) for section, values in self.processing_kwargs.items()}
        warn_unknown_processing_sections(per_call or {}, per_call=True)
        for section, values in (per_call or {}).items():
            if section in PROCESSING_KWARGS_KEYS:
                merged[section] = {**merged.get(section, {}), **values}
        return merged

    def _prompt_length(self, prompt: str, call_kwargs: dict[str, Any]) -> int:
        # The count depends on the truncation limit too, so that is part of the cache key.
        key = (prompt, call_kwargs.get("max_length"), self.tokenizer.model_max_length)
        if key not in self._prompt_lengths:
            ids = self.tokenizer([prompt], **{**call_kwargs, "padding": False})["input_ids"][0]
            length = len(ids)
            if len(ids) and int(ids[-1]) in set(self.tokenizer.all_special_ids):
                length -= 1  # the trailing [SEP]/EOS is not part of the prompt
            self._prompt_lengths[key] = length
        return self._prompt_lengths[key]


def _is_text_pair(item: Any) -> bool:
    return isinstance(item, (tuple, list)) and len(item) == 2 and all(isinstance(part, str) for part in item)
