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
        return self._encode_task("query", "encode_query", inputs, prompt_name, prompt, kwargs)

    def encode_document(
        self, inputs: Any = None, prompt_name: str | None = None, prompt: str | None = None, **kwargs: Any
    ) -> Any:
        """Encode documents: the first "document", "passage" or "corpus" prompt and the Router's document route."""
        return self._encode_task("document", "encode_document", inputs, prompt_name, prompt, kwargs)

    def _encode_task(
        self, task: str, method: str, inputs: Any, prompt_name: str | None, prompt: str | None, kwargs: dict[str, Any]
    ) -> Any:
        """``encode`` with ``task``'s route, and its prompt unless one is given (``sentences=`` still accepted)."""
        inputs = legacy_inputs(inputs, kwargs, method, stacklevel=4)  # the user's encode_query/_document call
        if prompt_name is None and prompt is None:
            prompt_name = task_prompt_name(self.prompts, task)
        return self.encode(inputs=inputs, prompt_name=prompt_name, prompt=prompt, task=task, **kwargs)

    def similarity(self, embeddings1: Any, embeddings2: Any) -> torch.Tensor:
        """The (N, M) similarity matrix under ``similarity_fn_name`` (dense or sparse rows)."""
        return SimilarityFunction.to_similarity_fn(self.similarity_fn_name)(embeddings1, embeddings2)

    def similarity_pairwise(self, embeddings1: Any, embeddings2: Any) -> torch.Tensor:
        """The (N,) similarities of row i with row i under ``similarity_fn_name``."""
        return SimilarityFunction.to_similarity_pairwise_fn(self.similarity_fn_name)(embeddings1, embeddings2)
