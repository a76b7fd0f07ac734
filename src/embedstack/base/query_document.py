"""The methods every kind that encodes shares: queries and documents (their prompts and Router routes), similarity.

Mixed into ``SentenceTransformer`` (through ``EncodeMixin``) and ``SparseEncoder``; each provides ``encode``,
``prompts`` and ``similarity_fn_name``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from embedstack.encode_io import legacy_inputs
from embedstack.prompts import task_prompt_name
from embedstack.similarity import SimilarityFunction


class QueryDocumentMethods:
    """``encode_query``, ``encode_document``, ``similarity`` and ``similarity_pairwise`` over the kind's ``encode``."""

    if TYPE_CHECKING:
        prompts: dict[str, str]

        @property
        def similarity_fn_name(self) -> str:
            """The kind's similarity function name."""

        def encode(self, inputs: Any = None, **kwargs: Any) -> Any:
            """The kind's encode."""

    def encode_query(
        self, inputs: Any = None, prompt_name: str | None = None, prompt: str | None = None, **kwargs: Any
    ) -> Any:
        """Encode search queries: the "query" prompt (unless a prompt is given) and the Router's query route."""
        inputs = legacy_inputs(inputs, kwargs, "encode_query")
        if prompt_name is None and prompt is None:
            prompt_name = task_prompt_name(self.prompts, "query")
        return self.encode(inputs=inputs, prompt_name=prompt_name, prompt=prompt, task="query", **kwargs)

    def encode_document(
        self, inputs: Any = None, prompt_name: str | None = None, prompt: str | None = None, **kwargs: Any
    ) -> Any:
        """Encode documents: the first "document", "passage" or "corpus" prompt and the Router's document route."""
        inputs = legacy_inputs(inputs, kwargs, "encode_document")
        if prompt_name is None and prompt is None:
            prompt_name = task_prompt_name(self.prompts, "document")
        return self.encode(inputs=inputs, prompt_name=prompt_name, prompt=prompt, task="document", **kwargs)

    def similarity(self, embeddings1: Any, embeddings2: Any) -> torch.Tensor:
        """The (N, M) similarity matrix under ``similarity_fn_name`` (dense or sparse rows)."""
        return SimilarityFunction.to_similarity_fn(self.similarity_fn_name)(embeddings1, embeddings2)

    def similarity_pairwise(self, embeddings1: Any, embeddings2: Any) -> torch.Tensor:
        """The (N,) similarities of row i with row i under ``similarity_fn_name``."""
        return SimilarityFunction.to_similarity_pairwise_fn(self.similarity_fn_name)(embeddings1, embeddings2)
