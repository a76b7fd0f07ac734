"""Pearson and Spearman correlation of embedding similarities with gold scores (sentence-transformers' STS evaluator).

The metric keys, the primary metric and the CSV file are those of sentence-transformers'
``EmbeddingSimilarityEvaluator``, so results and training logs compare one to one.
"""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Sequence
from typing import Any, Literal, Protocol

import numpy as np

from embedstack.evaluation.evaluator import SentenceEvaluator, evaluation_moment
from embedstack.evaluation.sts import pearson, spearman
from embedstack.quantization import Precision
from embedstack.similarity import SIMILARITY_FN_NAMES, SimilarityFunction, check_similarity_fn_name

logger = logging.getLogger(__name__)

SimilarityName = Literal["cosine", "euclidean", "manhattan", "dot"]


class PairExample(Protocol):
    """What ``from_input_examples`` reads: sentence-transformers' ``InputExample`` or anything shaped like it."""

    texts: Sequence[str]
    label: float


class EmbeddingSimilarityEvaluator(SentenceEvaluator):
    """Spearman and Pearson correlation of the similarities of sentence pairs with their gold scores.

    Args:
        sentences1: The first sentence of each pair.
        sentences2: The second sentence of each pair.
        scores: The gold similarity of each pair.
        batch_size: Sentences per forward pass.
        main_similarity: The similarity whose Spearman correlation is the primary metric ("cosine", "dot",
            "euclidean", "manhattan" or a ``SimilarityFunction``); None: the only one computed, or the best.
        similarity_fn_names: The similarities to compute; None: ``main_similarity`` if given, otherwise the
            model's ``similarity_fn_name`` (taken from the first model evaluated).
        name: A name for the data, prefixed to the metric keys and used in the CSV file name.
        show_progress_bar: Show the encode progress bar; None: when logging is at INFO or DEBUG.
        write_csv: Append the results to ``similarity_evaluation[_{name}][_{precision}]_results.csv`` in the
            ``output_path`` of a call.
        precision: Quantize the (normalized) embeddings to "float32", "int8", "uint8", "binary" or "ubinary"
            before scoring.
        truncate_dim: Keep the first ``truncate_dim`` dimensions; None: the model's own setting.

    Example:
        >>> from embedstack.evaluation import EmbeddingSimilarityEvaluator
        >>> evaluator = EmbeddingSimilarityEvaluator(
        ...     ["A man is eating.", "A plane takes off.", "A cat sleeps."],
        ...     ["A man eats food.", "An airplane departs.", "A dog barks."],
        ...     [4.8, 4.5, 0.6],
        ...     name="sts-mini",
        ... )
        >>> results = evaluator(model)
        >>> evaluator.primary_metric
        'sts-mini_spearman_cosine'
        >>> sorted(results)
        ['sts-mini_pearson_cosine', 'sts-mini_spearman_cosine']
    """

    def __init__(
        self,
        sentences1: Sequence[str],
        sentences2: Sequence[str],
        scores: Sequence[float],
        batch_size: int = 16,
        main_similarity: str | SimilarityFunction | None = None,
        similarity_fn_names: Sequence[SimilarityName] | None = None,
        name: str = "",
        show_progress_bar: bool | None = False,
        write_csv: bool = True,
        precision: Precision | None = None,
        truncate_dim: int | None = None,
    ) -> None:
        super().__init__()
        if not len(sentences1) == len(sentences2) == len(scores):
            raise ValueError(
                f"EmbeddingSimilarityEvaluator got {len(sentences1)} sentences1, {len(sentences2)} sentences2 and "
                f"{len(scores)} scores; each pair needs one of each. Pass three lists of the same length."
            )
        unknown = [fn for fn in similarity_fn_names or [] if fn not in SIMILARITY_FN_NAMES]
        if unknown:
            raise ValueError(
                f"similarity_fn_names has {unknown}, which the evaluator cannot compute; "
                f"choose from {list(SIMILARITY_FN_NAMES)}."
            )
        self.sentences1 = sentences1
        self.sentences2 = sentences2
        self.scores = scores
        self.batch_size = batch_size
        main = check_similarity_fn_name(main_similarity) if main_similarity else None
        self.main_similarity = SimilarityFunction(main) if main else None
        self.similarity_fn_names: list[str] = list(similarity_fn_names or [])
        if not self.similarity_fn_names and self.main_similarity is not None:
            self.similarity_fn_names = [self.main_similarity.value]
        self.name = name
        if show_progress_bar is None:
            show_progress_bar = logger.getEffectiveLevel() <= logging.INFO
        self.show_progress_bar = show_progress_bar
        self.write_csv = write_csv
        self.precision = precision
        self.truncate_dim = truncate_dim
        self.csv_file = "similarity_evaluation" + (f"_{name}" if name else "") + (f"_{precision}" if precision else "")
        self.csv_file += "_results.csv"
        self.csv_headers = ["epoch", "steps", *(f"{fn}_{metric}" for fn, metric in self._csv_metrics())]

    @classmethod
    def from_input_examples(cls, examples: Sequence[PairExample], **kwargs: Any) -> EmbeddingSimilarityEvaluator:
        """An evaluator over examples with ``texts`` (two sentences) and a ``label`` (the gold score)."""
        sentences1 = [example.texts[0] for example in examples]
        sentences2 = [example.texts[1] for example in examples]
        return cls(sentences1, sentences2, [example.label for example in examples], **kwargs)

    def _csv_metrics(self) -> list[tuple[str, str]]:
        """(similarity, metric) of each CSV column after epoch and steps."""
        return [(fn, metric) for fn in self.similarity_fn_names for metric in ("pearson", "spearman")]

    def __call__(
        self, model: Any, output_path: str | None = None, epoch: int = -1, steps: int = -1
    ) -> dict[str, float]:
        """Score the pairs with ``model``; see :class:`SentenceEvaluator`."""
        moment = evaluation_moment(epoch, steps, self.truncate_dim)
        logger.info(f"EmbeddingSimilarityEvaluator: Evaluating the model on the {self.name} dataset{moment}:")
        embeddings1, embeddings2 = self._pair_embeddings(model)
        if not self.similarity_fn_names:
            self.similarity_fn_names = [model.similarity_fn_name]
            self.csv_headers = ["epoch", "steps", *(f"{fn}_{metric}" for fn, metric in self._csv_metrics())]
        labels = np.asarray(self.scores, dtype=np.float64)
        metrics: dict[str, float] = {}
        for fn_name in self.similarity_fn_names:
            pairwise = SimilarityFunction.to_similarity_pairwise_fn(fn_name)
            similarities = pairwise(embeddings1, embeddings2).detach().cpu().numpy()  # (pairs,)
            with np.errstate(invalid="ignore", divide="ignore"):
                metrics[f"pearson_{fn_name}"] = pearson(labels, similarities)
                metrics[f"spearman_{fn_name}"] = spearman(labels, similarities)
            logger.info(
                f"{fn_name.capitalize()}-Similarity:\tPearson: {metrics[f'pearson_{fn_name}']:.4f}\t"
                f"Spearman: {metrics[f'spearman_{fn_name}']:.4f}"
            )
        if output_path is not None and self.write_csv:
            self._append_csv(output_path, [epoch, steps, *(metrics[f"{m}_{fn}"] for fn, m in self._csv_metrics())])
        if len(self.similarity_fn_names) > 1:
            metrics["pearson_max"] = max(metrics[f"pearson_{fn}"] for fn in self.similarity_fn_names)
            metrics["spearman_max"] = max(metrics[f"spearman_{fn}"] for fn in self.similarity_fn_names)
        if self.main_similarity is not None:
            self.primary_metric = f"spearman_{self.main_similarity.value}"
        elif len(self.similarity_fn_names) > 1:
            self.primary_metric = "spearman_max"
        else:
            self.primary_metric = f"spearman_{self.similarity_fn_names[0]}"
        metrics = self.prefix_name_to_metrics(metrics, self.name)
        self.store_metrics_in_model_card_data(model, metrics, epoch, steps)
        return metrics

    def _pair_embeddings(self, model: Any) -> tuple[np.ndarray, np.ndarray]:
        """Both sides' embeddings as float arrays, quantized ones unpacked so every similarity can use them."""
        if self.precision in ("int8", "uint8"):
            # One call, so both sides share the quantization ranges and a sentence gets one quantized embedding.
            both = self.embed_inputs(model, [*self.sentences1, *self.sentences2])
            embeddings1, embeddings2 = both[: len(self.sentences1)], both[len(self.sentences1) :]
        else:
            embeddings1 = self.embed_inputs(model, self.sentences1)
            embeddings2 = self.embed_inputs(model, self.sentences2)
        if self.precision == "binary":
            # int8 sign bits back to uint8 (widened first: 128 does not fit in int8).
            embeddings1, embeddings2 = embeddings1.astype(np.int16) + 128, embeddings2.astype(np.int16) + 128
        if self.precision in ("binary", "ubinary"):
            embeddings1 = np.unpackbits(embeddings1.astype(np.uint8), axis=1)
            embeddings2 = np.unpackbits(embeddings2.astype(np.uint8), axis=1)
        if self.precision in ("int8", "uint8", "binary", "ubinary"):
            # The similarities normalize, subtract and square: integers would overflow or truncate.
            embeddings1, embeddings2 = embeddings1.astype(np.float32), embeddings2.astype(np.float32)
        return embeddings1, embeddings2

    def _append_csv(self, output_path: str, row: list[Any]) -> None:
        os.makedirs(output_path, exist_ok=True)
        csv_path = os.path.join(output_path, self.csv_file)
        exists = os.path.isfile(csv_path)
        with open(csv_path, newline="", mode="a" if exists else "w", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            if not exists:
                writer.writerow(self.csv_headers)
            writer.writerow(row)

    def embed_inputs(
        self, model: Any, inputs: Any, encode_fn_name: Literal["query", "document"] | None = None, **kwargs: Any
    ) -> Any:
        """``model.encode`` with the evaluator's batch size, precision and truncation, as a numpy array.

        Embeddings are normalized whenever a precision is set, so quantization sees unit vectors.
        """
        options = dict(
            batch_size=self.batch_size,
            show_progress_bar=self.show_progress_bar,
            convert_to_numpy=True,
            precision=self.precision,
            normalize_embeddings=bool(self.precision),
            truncate_dim=self.truncate_dim,
        )
        return super().embed_inputs(model, inputs, encode_fn_name, **{**options, **kwargs})

    @property
    def description(self) -> str:
        """The name model cards give this kind of evaluation."""
        return "Semantic Similarity"

    def get_config_dict(self) -> dict[str, Any]:
        """The truncation and precision, when set."""
        return {key: getattr(self, key) for key in ("truncate_dim", "precision") if getattr(self, key) is not None}
