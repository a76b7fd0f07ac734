"""Several evaluators run one after another, as one: their metrics merged, one score derived from theirs."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from embedstack.evaluation.evaluator import SentenceEvaluator


def _last(scores: list[float]) -> float:
    return scores[-1]


class SequentialEvaluator(SentenceEvaluator):
    """Run ``evaluators`` in order; their metrics merged, plus ``sequential_score`` (the primary metric).

    Args:
        evaluators: The evaluators to run.
        main_score_function: Turns the evaluators' primary scores (in order) into ``sequential_score``; the
            default takes the last one.

    Example:
        >>> from embedstack.evaluation import EmbeddingSimilarityEvaluator, SequentialEvaluator
        >>> pairs = (["A cat sleeps.", "A man eats."], ["A kitten naps.", "A plane flies."], [4.5, 0.2])
        >>> sequential = SequentialEvaluator(
        ...     [EmbeddingSimilarityEvaluator(*pairs, name="a"), EmbeddingSimilarityEvaluator(*pairs, name="b")]
        ... )
        >>> sorted(sequential(model))
        ['a_pearson_cosine', 'a_spearman_cosine', 'b_pearson_cosine', 'b_spearman_cosine', 'sequential_score']
    """

    def __init__(self, evaluators: Iterable[Any], main_score_function: Callable[[list[float]], float] = _last) -> None:
        super().__init__()
        self.evaluators = list(evaluators)
        self.main_score_function = main_score_function

    def __call__(
        self, model: Any, output_path: str | None = None, epoch: int = -1, steps: int = -1
    ) -> dict[str, float]:
        """Run every evaluator; see :class:`SentenceEvaluator`.

        An evaluator that returns a single number contributes ``evaluator_{index}``; one that returns a dict
        contributes its metrics and, as its score, its primary metric (or its first metric when it names none).
        """
        results: dict[str, float] = {}
        scores = []
        for index, evaluator in enumerate(self.evaluators):
            evaluation = evaluator(model, output_path, epoch, steps)
            if not isinstance(evaluation, dict):
                scores.append(evaluation)
                evaluation = {f"evaluator_{index}": evaluation}
            elif getattr(evaluator, "primary_metric", None) is not None:
                scores.append(evaluation[evaluator.primary_metric])
            else:
                scores.append(next(iter(evaluation.values())))
            results.update(evaluation)
        self.primary_metric = "sequential_score"
        results["sequential_score"] = self.main_score_function(scores) if scores else 0.0
        return results
