"""Retrieval quality on a labelled query set: sentence-transformers' ``InformationRetrievalEvaluator``.

Queries are encoded with ``encode_query`` and the corpus, chunk by chunk, with ``encode_document``; each query
keeps its best documents under every score function, and the rankings are measured by
:mod:`embedstack.evaluation.ranking`. Metric keys (``{name}_{score_function}_ndcg@10``, ...), the primary metric,
the CSV file and the predictions file are those of sentence-transformers.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, Literal

import numpy as np
import torch
from tqdm import trange

from embedstack.evaluation.evaluator import SentenceEvaluator, evaluation_moment
from embedstack.evaluation.ranking import Hit, corpus_id_ranks, dcg_at_k, merge_hits, ranking_metrics, top_k_rows
from embedstack.similarity import SimilarityFunction, check_similarity_fn_name

logger = logging.getLogger(__name__)

ScoreFunction = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Scores = dict[str, dict[str, dict[int, float]]]
"""score function -> metric ("ndcg@k", ...) -> k -> value."""


class InformationRetrievalEvaluator(SentenceEvaluator):
    """Accuracy, precision, recall, MRR, NDCG and MAP at k of retrieving each query's relevant documents.

    Args:
        queries: Query id -> query.
        corpus: Document id -> document.
        relevant_docs: Query id -> the ids of its relevant documents; queries without any are left out.
        corpus_chunk_size: Documents encoded and scored at a time.
        mrr_at_k: Cut-offs of the mean reciprocal rank.
        ndcg_at_k: Cut-offs of NDCG; the largest names the primary metric.
        accuracy_at_k: Cut-offs of accuracy (a relevant document among the first k).
        precision_recall_at_k: Cut-offs of precision and recall.
        map_at_k: Cut-offs of mean average precision.
        show_progress_bar: Show progress bars while encoding and over the corpus chunks.
        batch_size: Inputs per forward pass.
        name: A name for the data, prefixed to the metric keys and used in the file names.
        write_csv: Append the results to ``Information-Retrieval_evaluation[_{name}]_results.csv`` in the
            ``output_path`` of a call.
        truncate_dim: Keep the first ``truncate_dim`` dimensions; None: the model's own setting.
        score_functions: Name -> function giving the (queries, documents) score matrix; None: the similarity of
            the model of each call, under its ``similarity_fn_name``.
        main_score_function: The score function whose NDCG is the primary metric; None: the best one.
        query_prompt: A prompt for the queries (wins over ``query_prompt_name``).
        query_prompt_name: The name of one of the model's prompts for the queries; with neither, the model's
            query prompt if it has one.
        corpus_prompt: A prompt for the documents.
        corpus_prompt_name: The name of one of the model's prompts for the documents.
        write_predictions: Also write each query's ranking to
            ``Information-Retrieval_evaluation[_{name}]_predictions_{score function}.jsonl``.

    Example:
        >>> from embedstack.evaluation import InformationRetrievalEvaluator
        >>> evaluator = InformationRetrievalEvaluator(
        ...     queries={"q1": "What do cats eat?", "q2": "How fast is a plane?"},
        ...     corpus={"d1": "Cats eat fish and mice.", "d2": "Jets fly at 900 km/h.", "d3": "Tea is a drink."},
        ...     relevant_docs={"q1": {"d1"}, "q2": {"d2"}},
        ...     name="mini",
        ... )
        >>> results = evaluator(model)
        >>> evaluator.primary_metric, results[evaluator.primary_metric]
        ('mini_cosine_ndcg@10', 1.0)
    """

    def __init__(
        self,
        queries: Mapping[Any, Any],
        corpus: Mapping[Any, Any],
        relevant_docs: Mapping[Any, Collection[Any]],
        corpus_chunk_size: int = 50000,
        mrr_at_k: Sequence[int] = (10,),
        ndcg_at_k: Sequence[int] = (10,),
        accuracy_at_k: Sequence[int] = (1, 3, 5, 10),
        precision_recall_at_k: Sequence[int] = (1, 3, 5, 10),
        map_at_k: Sequence[int] = (100,),
        show_progress_bar: bool = False,
        batch_size: int = 32,
        name: str = "",
        write_csv: bool = True,
        truncate_dim: int | None = None,
        score_functions: Mapping[str, ScoreFunction] | None = None,
        main_score_function: str | SimilarityFunction | None = None,
        query_prompt: str | None = None,
        query_prompt_name: str | None = None,
        corpus_prompt: str | None = None,
        corpus_prompt_name: str | None = None,
        write_predictions: bool = False,
    ) -> None:
        super().__init__()
        cutoffs = dict(mrr_at_k=mrr_at_k, ndcg_at_k=ndcg_at_k, accuracy_at_k=accuracy_at_k)
        cutoffs.update(precision_recall_at_k=precision_recall_at_k, map_at_k=map_at_k)
        _check_arguments(queries, relevant_docs, corpus_chunk_size, cutoffs, score_functions)
        self.queries_ids = [qid for qid in queries if qid in relevant_docs and len(relevant_docs[qid]) > 0]
        self.queries = [queries[qid] for qid in self.queries_ids]
        self.corpus_ids = list(corpus)
        self.corpus = [corpus[cid] for cid in self.corpus_ids]
        self.relevant_docs = relevant_docs
        self.corpus_chunk_size = corpus_chunk_size
        self.mrr_at_k, self.ndcg_at_k, self.accuracy_at_k = list(mrr_at_k), list(ndcg_at_k), list(accuracy_at_k)
        self.precision_recall_at_k, self.map_at_k = list(precision_recall_at_k), list(map_at_k)
        self.show_progress_bar = show_progress_bar
        self.batch_size = batch_size
        self.name = name
        self.write_csv = write_csv
        self.truncate_dim = truncate_dim
        self.score_functions = dict(score_functions) if score_functions is not None else None
        self.score_function_names: list[str] = sorted(score_functions or {})
        self._score_functions_from_model = score_functions is None
        main = check_similarity_fn_name(main_score_function) if main_score_function else None
        self.main_score_function = SimilarityFunction(main) if main else None
        self.query_prompt, self.query_prompt_name = query_prompt, query_prompt_name
        self.corpus_prompt, self.corpus_prompt_name = corpus_prompt, corpus_prompt_name
        self.write_predictions = write_predictions
        stem = "Information-Retrieval_evaluation" + (f"_{name}" if name else "")
        self.csv_file = f"{stem}_results.csv"
        self.predictions_file = f"{stem}_predictions.jsonl"
        self.csv_headers = ["epoch", "steps", *(column[0] for column in self._csv_columns())]
        self._corpus_id_ranks: np.ndarray | None = None

    def _csv_columns(self) -> list[tuple[str, str, str, int]]:
        """(header, score function, metric, k) of each CSV column after epoch and steps, in file order."""
        columns: list[tuple[str, str, str, int]] = []
        for fn in self.score_function_names:
            columns += [(f"{fn}-Accuracy@{k}", fn, "accuracy@k", k) for k in self.accuracy_at_k]
            for k in self.precision_recall_at_k:
                columns += [(f"{fn}-Precision@{k}", fn, "precision@k", k), (f"{fn}-Recall@{k}", fn, "recall@k", k)]
            columns += [(f"{fn}-MRR@{k}", fn, "mrr@k", k) for k in self.mrr_at_k]
            columns += [(f"{fn}-NDCG@{k}", fn, "ndcg@k", k) for k in self.ndcg_at_k]
            columns += [(f"{fn}-MAP@{k}", fn, "map@k", k) for k in self.map_at_k]
        return columns

    def __call__(
        self,
        model: Any,
        output_path: str | None = None,
        epoch: int = -1,
        steps: int = -1,
        corpus_model: Any = None,
        corpus_embeddings: Any = None,
    ) -> dict[str, float]:
        """Rank the corpus for every query with ``model``; see :class:`SentenceEvaluator`.

        Args:
            model: The model that encodes the queries (and the corpus, unless ``corpus_model`` is given).
            output_path: A folder for the CSV (and predictions) files; None writes nothing.
            epoch: The training epoch, written with the results.
            steps: The step within the epoch.
            corpus_model: Another model for the corpus.
            corpus_embeddings: The corpus already embedded, one row per document in ``corpus`` order.

        Returns:
            ``{f"{name}_{score function}_{metric}@{k}": value}``.
        """
        moment = evaluation_moment(epoch, steps, self.truncate_dim)
        logger.info(f"Information Retrieval Evaluation of the model on the {self.name} dataset{moment}:")
        headers_changed = False
        if self._score_functions_from_model:
            # Resolved per call, so an evaluator reused across models scores each with its own similarity.
            self.score_functions = {model.similarity_fn_name: model.similarity}
            if self.score_function_names != sorted(self.score_functions):
                headers_changed = bool(self.score_function_names)
                self.score_function_names = sorted(self.score_functions)
                self.csv_headers = ["epoch", "steps", *(column[0] for column in self._csv_columns())]
                self.primary_metric = None
        scores = self.compute_all_metrics(model, corpus_model, corpus_embeddings, output_path)
        if output_path is not None and self.write_csv:
            self._append_csv(output_path, epoch, steps, scores, headers_changed)
        if not self.primary_metric:
            at = max(self.ndcg_at_k)
            if self.main_score_function is None:
                best = max(self.score_function_names, key=lambda fn: scores[fn]["ndcg@k"][at])
            else:
                best = self.main_score_function.value
            self.primary_metric = f"{best}_ndcg@{at}"
        metrics = {
            f"{fn}_{metric.replace('@k', f'@{k}')}": value
            for fn, by_metric in scores.items()
            for metric, by_k in by_metric.items()
            for k, value in by_k.items()
        }
        metrics = self.prefix_name_to_metrics(metrics, self.name)
        self.store_metrics_in_model_card_data(model, metrics, epoch, steps)
        return metrics

    def compute_all_metrics(
        self,
        model: Any,
        corpus_model: Any = None,
        corpus_embeddings: Any = None,
        output_path: str | None = None,
    ) -> Scores:
        """Rank the corpus for every query under each score function, and measure the rankings.

        Returns:
            score function -> metric ("accuracy@k", "precision@k", "recall@k", "ndcg@k", "mrr@k", "map@k") -> k ->
            value.
        """
        hits = self._rank_corpus(model, model if corpus_model is None else corpus_model, corpus_embeddings)
        predictions = {
            fn: [[{"corpus_id": corpus_id, "score": score} for score, corpus_id in query_hits] for query_hits in ranked]
            for fn, ranked in hits.items()
        }
        if self.write_predictions and output_path is not None:
            self._write_predictions(output_path, predictions)
        logger.info(f"Queries: {len(self.queries)}")
        logger.info(f"Corpus: {len(self.corpus)}\n")
        scores = {fn: self.compute_metrics(ranked) for fn, ranked in predictions.items()}
        for fn in self.score_function_names:
            logger.info(f"Score-Function: {fn}")
            self.output_scores(scores[fn])
        return scores

    compute_metrices = compute_all_metrics
    """sentence-transformers' old name of :meth:`compute_all_metrics`."""

    def _rank_corpus(self, model: Any, corpus_model: Any, corpus_embeddings: Any) -> dict[str, list[list[Hit]]]:
        """Each query's best ``max_k`` (score, corpus id) hits under each score function, best first."""
        score_functions = self.score_functions or {}
        max_k = max(*self.mrr_at_k, *self.ndcg_at_k, *self.accuracy_at_k, *self.precision_recall_at_k, *self.map_at_k)
        query_embeddings = self.embed_inputs(
            model, self.queries, "query", prompt_name=self.query_prompt_name, prompt=self.query_prompt
        )
        hits: dict[str, list[list[Hit]]] = {fn: [[] for _ in self.queries] for fn in score_functions}
        if self._corpus_id_ranks is None:
            self._corpus_id_ranks = corpus_id_ranks(self.corpus_ids)
        chunk_size = self.corpus_chunk_size
        for start in trange(0, len(self.corpus), chunk_size, desc="Corpus Chunks", disable=not self.show_progress_bar):
            end = min(start + chunk_size, len(self.corpus))
            chunk = self._corpus_chunk(corpus_model, corpus_embeddings, start, end)  # (documents, dim)
            for fn, score_function in score_functions.items():
                pair_scores = score_function(query_embeddings, chunk)  # (queries, documents)
                top_k = min(max_k, pair_scores.shape[1])
                indices, values = top_k_rows(pair_scores, top_k, self._corpus_id_ranks[start:end])
                for row, (row_indices, row_values) in enumerate(zip(indices, values)):
                    new = [(score, self.corpus_ids[start + i]) for i, score in zip(row_indices, row_values)]
                    hits[fn][row] = merge_hits(hits[fn][row], new, max_k)
        return hits

    def _corpus_chunk(self, corpus_model: Any, corpus_embeddings: Any, start: int, end: int) -> Any:
        """Documents ``start:end``, embedded now or taken from ``corpus_embeddings`` (dense or sparse rows)."""
        if corpus_embeddings is None:
            return self.embed_inputs(
                corpus_model,
                self.corpus[start:end],
                "document",
                prompt_name=self.corpus_prompt_name,
                prompt=self.corpus_prompt,
            )
        if isinstance(corpus_embeddings, torch.Tensor) and corpus_embeddings.is_sparse:
            return corpus_embeddings.index_select(0, torch.arange(start, end, device=corpus_embeddings.device))
        return corpus_embeddings[start:end]

    def embed_inputs(
        self, model: Any, inputs: Any, encode_fn_name: Literal["query", "document"] | None = None, **kwargs: Any
    ) -> Any:
        """Encode with the evaluator's batch size and truncation, as one tensor."""
        options = dict(
            batch_size=self.batch_size,
            show_progress_bar=self.show_progress_bar,
            convert_to_tensor=True,
            truncate_dim=self.truncate_dim,
        )
        return super().embed_inputs(model, inputs, encode_fn_name, **{**options, **kwargs})

    def compute_metrics(
        self, queries_result_list: Sequence[Sequence[Mapping[str, Any]]]
    ) -> dict[str, dict[int, float]]:
        """The metrics of the queries' results (``{"corpus_id", "score"}`` dicts per query, in query order)."""
        rankings = [
            [hit["corpus_id"] for hit in sorted(results, key=lambda hit: (-hit["score"], hit["corpus_id"]))]
            for results in queries_result_list
        ]
        return ranking_metrics(
            rankings,
            [self.relevant_docs[qid] for qid in self.queries_ids[: len(rankings)]],
            accuracy_at_k=self.accuracy_at_k,
            precision_recall_at_k=self.precision_recall_at_k,
            mrr_at_k=self.mrr_at_k,
            ndcg_at_k=self.ndcg_at_k,
            map_at_k=self.map_at_k,
        )

    @staticmethod
    def compute_dcg_at_k(relevances: Sequence[float], k: int) -> float:
        """Discounted cumulative gain of the first ``k`` relevances."""
        return dcg_at_k(relevances, k)

    def output_scores(self, scores: Mapping[str, Mapping[int, float]]) -> None:
        """Log one score function's metrics."""
        for metric, label, percent in _LOG_LINES:
            for k, value in scores[metric].items():
                logger.info(f"{label}@{k}: {value * 100:.2f}%" if percent else f"{label}@{k}: {value:.4f}")

    def _append_csv(self, output_path: str, epoch: int, steps: int, scores: Scores, headers_changed: bool) -> None:
        os.makedirs(output_path, exist_ok=True)
        csv_path = os.path.join(output_path, self.csv_file)
        exists = os.path.isfile(csv_path)
        if exists and headers_changed:
            logger.warning(
                f"{self.csv_file} was written with different score function columns, so the rows appended for "
                f"{self.score_function_names} are labeled with the previous score function."
            )
        row = [epoch, steps, *(scores[fn][metric][k] for _, fn, metric, k in self._csv_columns())]
        with open(csv_path, mode="a" if exists else "w", encoding="utf-8") as handle:
            if not exists:
                handle.write(",".join(self.csv_headers) + "\n")
            handle.write(",".join(map(str, row)) + "\n")

    def _write_predictions(self, output_path: str, predictions: dict[str, list[list[dict[str, Any]]]]) -> None:
        """One JSON line per query and score function: its id, text and ranked results (a new file each call)."""
        os.makedirs(output_path, exist_ok=True)
        for fn, ranked in predictions.items():
            path = os.path.join(output_path, self.predictions_file.replace(".jsonl", f"_{fn}.jsonl"))
            with open(path, mode="w", encoding="utf-8") as handle:
                for query_id, query, results in zip(self.queries_ids, self.queries, ranked):
                    handle.write(json.dumps({"query_id": query_id, "query": query, "results": results}) + "\n")

    def get_config_dict(self) -> dict[str, Any]:
        """The truncation and prompts, when set."""
        keys = ("truncate_dim", "query_prompt", "query_prompt_name", "corpus_prompt", "corpus_prompt_name")
        return {key: getattr(self, key) for key in keys if getattr(self, key) is not None}


_LOG_LINES = [
    ("accuracy@k", "Accuracy", True),
    ("precision@k", "Precision", True),
    ("recall@k", "Recall", True),
    ("mrr@k", "MRR", False),
    ("ndcg@k", "NDCG", False),
    ("map@k", "MAP", False),
]


def _check_arguments(
    queries: Mapping[Any, Any],
    relevant_docs: Mapping[Any, Collection[Any]],
    corpus_chunk_size: int,
    cutoffs: dict[str, Sequence[int]],
    score_functions: Mapping[str, ScoreFunction] | None,
) -> None:
    """Raise ValueError for arguments the evaluation could not run with, naming the argument and the fix."""
    for argument, ks in cutoffs.items():
        if not ks or any(not isinstance(k, int) or isinstance(k, bool) or k <= 0 for k in ks):
            raise ValueError(f"{argument} must be a non-empty list of positive integers, got {ks!r}.")
    if not isinstance(corpus_chunk_size, int) or corpus_chunk_size <= 0:
        raise ValueError(f"corpus_chunk_size must be a positive integer, got {corpus_chunk_size!r}.")
    if score_functions is not None and not score_functions:
        raise ValueError("score_functions is empty; pass at least one name -> function, or None for the model's.")
    if not any(qid in relevant_docs and len(relevant_docs[qid]) > 0 for qid in queries):
        raise ValueError(
            f"None of the {len(queries)} queries has a relevant document in relevant_docs, so there is nothing to "
            "measure. relevant_docs maps a query id (a key of queries) to a set of corpus ids."
        )
