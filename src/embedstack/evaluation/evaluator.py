"""The evaluator contract: call with a model, get a dict of named metrics and the name of the one that matters.

The same contract as sentence-transformers' ``SentenceEvaluator`` (``BaseEvaluator`` in 6.x), so an evaluator
written for one library runs on the models of the other, and a trainer can pick checkpoints by
``primary_metric`` and ``greater_is_better``.
"""

from __future__ import annotations

import re
from typing import Any, Literal


class SentenceEvaluator:
    """Base class of the evaluators; subclasses implement ``__call__``.

    Attributes:
        greater_is_better: Whether a higher primary metric is better (used to choose the best checkpoint).
        primary_metric: The key of the metric that ranks models, set by the first call; None before it.
    """

    def __init__(self) -> None:
        self.greater_is_better: bool = True
        self.primary_metric: str | None = None

    def __call__(
        self, model: Any, output_path: str | None = None, epoch: int = -1, steps: int = -1
    ) -> dict[str, float]:
        """Evaluate ``model``.

        Args:
            model: The model to evaluate.
            output_path: A folder for the evaluator's files (CSV results); None writes nothing.
            epoch: The training epoch, written with the results; -1 means an evaluation outside training.
            steps: The step within the epoch; -1 means the end of the epoch.

        Returns:
            The metrics by name, ``primary_metric`` among them.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement __call__(model, output_path, epoch, steps).")

    def prefix_name_to_metrics(self, metrics: dict[str, Any], name: str) -> dict[str, Any]:
        """``metrics`` as floats (values that are not numbers stay as they are), keys prefixed by ``name + "_"``.

        The primary metric gets the same prefix, once, so that it names a key of the returned dict.
        """
        if not name:
            return {key: _maybe_float(value) for key, value in metrics.items()}
        prefixed = {f"{name}_{key}": _maybe_float(value) for key, value in metrics.items()}
        if self.primary_metric is not None and not self.primary_metric.startswith(name + "_"):
            self.primary_metric = f"{name}_{self.primary_metric}"
        return prefixed

    def store_metrics_in_model_card_data(
        self, model: Any, metrics: dict[str, Any], epoch: int = 0, step: int = 0
    ) -> None:
        """Record ``metrics`` in the model's card data, when it keeps evaluation results.

        Our ``ModelCardData`` and sentence-transformers' both have ``set_evaluation_metrics``; a model without
        card data (or with card data that keeps no results) is left as it is.
        """
        card_data = getattr(model, "model_card_data", None)
        setter = getattr(card_data, "set_evaluation_metrics", None)
        if callable(setter):
            setter(self, metrics, epoch, step)

    @property
    def description(self) -> str:
        """The class name in words, less "Evaluator": ``BinaryClassificationEvaluator`` -> "Binary Classification"."""
        class_name = type(self).__name__
        if class_name.startswith("CE"):
            class_name = "CrossEncoder" + class_name[2:]
        class_name = class_name.split("Evaluator")[0]
        return re.sub(r"([a-z])([A-Z])", r"\g<1> \g<2>", class_name)

    def get_config_dict(self) -> dict[str, Any]:
        """The settings worth showing in a model card (none by default)."""
        return {}

    def embed_inputs(
        self, model: Any, inputs: Any, encode_fn_name: Literal["query", "document"] | None = None, **kwargs: Any
    ) -> Any:
        """Embed ``inputs`` with ``model.encode`` (or ``encode_query`` / ``encode_document``).

        Subclasses override this to add their own settings (batch size, precision, ...) to ``kwargs``.

        Args:
            model: The model being evaluated.
            inputs: What to embed.
            encode_fn_name: "query" or "document" for the model's query or document encoding (their prompts and
                routes); None for plain ``encode``.
            **kwargs: Options for the encode call.

        Returns:
            What the encode call returns.
        """
        if encode_fn_name not in (None, "query", "document"):
            raise ValueError(f"encode_fn_name must be None, 'query' or 'document', got {encode_fn_name!r}.")
        encode = getattr(model, f"encode_{encode_fn_name}") if encode_fn_name else model.encode
        return encode(inputs, **kwargs)


BaseEvaluator = SentenceEvaluator
"""sentence-transformers 6's name for :class:`SentenceEvaluator`."""


def _maybe_float(value: Any) -> Any:
    try:
        return float(value)
    except (TypeError, ValueError):
        return value


def evaluation_moment(epoch: int, steps: int, truncate_dim: int | None = None) -> str:
    """When an evaluation runs, for its log line: " after epoch 1", " in epoch 1 after 10 steps" or ""."""
    text = "" if epoch == -1 else f" after epoch {epoch}" if steps == -1 else f" in epoch {epoch} after {steps} steps"
    return text + (f" (truncated to {truncate_dim})" if truncate_dim is not None else "")
