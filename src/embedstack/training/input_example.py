"""InputExample: one training example of the legacy ``model.fit`` API (texts and a label)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class InputExample:
    """Texts (an anchor and its pair, or more columns) and a label, as sentence-transformers' ``InputExample``.

    Args:
        guid: An id, for the user's own bookkeeping.
        texts: The example's texts, in column order.
        label: A score or class (0 when the loss takes none).
    """

    guid: str = ""
    texts: list[Any] = field(default_factory=list)
    label: int | float = 0

    def __str__(self) -> str:
        return f"<InputExample> label: {self.label}, texts: {'; '.join(map(str, self.texts))}"
