"""What the engine needs of a model, stated as protocols: the engine knows no module, file or format."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np


class TokenBatcher(Protocol):
    """An input module that tokenizes without padding and pads any subset of rows later (the Transformer)."""

    def tokenize_unpadded(self, inputs: list[Any], prompt: str | None = None, **kwargs: Any) -> Any:
        """Token ids per input (an object with ``lengths`` and ``truncated`` arrays), or None when it cannot."""
        ...

    def collate(self, tokenized: Any, indices: np.ndarray) -> dict[str, Any]:
        """The padded features of rows ``indices`` of ``tokenized``."""
        ...

    def get_embedding_dimension(self) -> int | None:
        """The backbone's hidden size (the engine sizes CPU passes by it): None, or a ValueError, when unknown."""
        ...


class Encoder(Protocol):
    """A model the engine can run: ``SentenceTransformer`` is one."""

    @property
    def token_batcher(self) -> TokenBatcher | None:
        """The input module when it tokenizes once for batching by length, else None."""
        ...

    def preprocess_batch(self, inputs: list[Any], prompt: str | None = None, **kwargs: Any) -> dict[str, Any]:
        """Features for one batch of inputs whose modality was already checked."""
        ...

    def __call__(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Run the model on one batch's features; the keywords go to the modules that take them.

        The engine calls the model itself (``nn.Module.__call__``), so forward hooks and ``model.compile()`` apply.
        """
        ...
