"""embedstack.evaluation's evaluators against sentence-transformers 6.2's, in the same run.

The same evaluator settings run through both libraries: on the same model the metrics agree to float rounding
(1e-9: only the evaluator differs), on each library's own MiniLM to 1e-4 (the encoders round differently). Keys,
primary metrics and the files written (CSV headers, predictions) must be identical.
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from sentence_transformers import InputExample
from sentence_transformers.base.evaluation import BaseEvaluator as BaseReference
from sentence_transformers.sentence_transformer import evaluation as reference

from embedstack.evaluation import (
    BaseEvaluator,
    EmbeddingSimilarityEvaluator,
    InformationRetrievalEvaluator,
    SentenceEvaluator,
    SequentialEvaluator,
    SimilarityFunction,
)
from embedstack.evaluation.datasets import sts_benchmark
from embedstack.persistence.model_card import ModelCardData
from embedstack.similarity import cos_sim, dot_score

PAIRS = 40
SAME_MODEL = 1e-9
OWN_MODELS = 1e-4


@pytest.fixture(scope="module")
def sts():
    pairs = sts_benchmark("dev")
    return pairs.sentences1[:PAIRS], pairs.sentences2[:PAIRS], pairs.scores[:PAIRS]


@pytest.fixture(scope="module")
def ir(sts):
    """Query i (sentence 1 of pair i) is relevant to sentence 2 of pair i; every fifth query also to the next pair's
    sentence 2; the last query to none. The corpus holds each text once: the reference embeds a repeated text a
    little differently in different batches, which would break the exact score ties that embedstack keeps."""
    sentences1, sentences2, _ = sts
    ids = {text: f"d{i:02d}" for i, text in enumerate(dict.fromkeys(sentences2))}
    queries = {f"q{i}": text for i, text in enumerate(sentences1)}
    corpus = {ids[text]: text for text in reversed(list(ids))}  # not in id order
    relevant = {
        f"q{i}": {ids[sentences2[i]], *([ids[sentences2[i + 1]]] if i % 5 == 0 else [])} for i in range(PAIRS - 1)
    }
    return queries, corpus, relevant


def assert_same_metrics(ours, theirs, ours_evaluator, their_evaluator, atol):
    assert list(ours) == list(theirs)
    np.testing.assert_allclose([ours[k] for k in theirs], list(theirs.values()), atol=atol, rtol=0)
    assert all(type(value) is float for value in ours.values())
    assert ours_evaluator.primary_metric == their_evaluator.primary_metric


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def assert_same_csv(ours_path, theirs_path, atol):
    ours, theirs = read_csv(ours_path), read_csv(theirs_path)
    assert ours[0] == theirs[0] and len(ours) == len(theirs)
    for our_row, their_row in zip(ours[1:], theirs[1:]):
        np.testing.assert_allclose(np.float64(our_row), np.float64(their_row), atol=atol, rtol=0)


SIMILARITY_SETTINGS = [
    {},
    {"similarity_fn_names": ["cosine", "dot", "euclidean", "manhattan"], "name": "sts-dev"},
    {"main_similarity": "dot", "name": "dot"},
    {"similarity_fn_names": ["euclidean", "cosine"], "main_similarity": SimilarityFunction.COSINE},
]


@pytest.mark.parametrize("settings", SIMILARITY_SETTINGS, ids=range(len(SIMILARITY_SETTINGS)))
def test_embedding_similarity_matches_the_reference(sts, minilm, reference_minilm, tmp_path, settings):
    ours = EmbeddingSimilarityEvaluator(*sts, **settings)
    theirs = reference.EmbeddingSimilarityEvaluator(*sts, **settings)
    assert ours.csv_file == theirs.csv_file
    our_results = ours(minilm, str(tmp_path / "ours"), epoch=1, steps=10)
    their_results = theirs(reference_minilm, str(tmp_path / "theirs"), epoch=1, steps=10)
    assert_same_metrics(our_results, their_results, ours, theirs, OWN_MODELS)
    our_results = ours(minilm, str(tmp_path / "ours"))  # a second row, under the same header
    their_results = theirs(reference_minilm, str(tmp_path / "theirs"))
    assert_same_metrics(our_results, their_results, ours, theirs, OWN_MODELS)
    assert_same_csv(tmp_path / "ours" / ours.csv_file, tmp_path / "theirs" / theirs.csv_file, OWN_MODELS)
    assert (ours.description, ours.get_config_dict()) == (theirs.description, theirs.get_config_dict())


@pytest.mark.parametrize("precision", ["int8", "ubinary", "binary"])
def test_quantized_similarity_matches_the_reference_on_one_model(sts, reference_minilm, tmp_path, precision):
    settings = dict(similarity_fn_names=["cosine", "manhattan"], precision=precision, truncate_dim=128, name="q")
    ours, theirs = (
        EmbeddingSimilarityEvaluator(*sts, **settings),
        reference.EmbeddingSimilarityEvaluator(*sts, **settings),
    )
    our_results = ours(reference_minilm, str(tmp_path / "ours"))
    their_results = theirs(reference_minilm, str(tmp_path / "theirs"))
    assert_same_metrics(our_results, their_results, ours, theirs, SAME_MODEL)
    assert ours.csv_file == theirs.csv_file == f"similarity_evaluation_q_{precision}_results.csv"
    assert_same_csv(tmp_path / "ours" / ours.csv_file, tmp_path / "theirs" / theirs.csv_file, SAME_MODEL)
    assert ours.get_config_dict() == theirs.get_config_dict() == {"truncate_dim": 128, "precision": precision}


def test_from_input_examples(sts):
    examples = [InputExample(texts=[a, b], label=score) for a, b, score in zip(*sts)]
    evaluator = EmbeddingSimilarityEvaluator.from_input_examples(examples, name="x", write_csv=False)
    assert (evaluator.sentences1, evaluator.sentences2, evaluator.scores) == tuple(map(list, sts))
    assert (evaluator.name, evaluator.write_csv) == ("x", False)


IR_SETTINGS = [
    {"name": "sts-ir"},
    {"mrr_at_k": [1, 5], "ndcg_at_k": [3, 10], "map_at_k": [5], "accuracy_at_k": [2], "precision_recall_at_k": [4]},
    {"score_functions": {"cos": cos_sim, "dot": dot_score}, "main_score_function": "dot", "truncate_dim": 64},
    {"query_prompt": "query: ", "corpus_prompt": "passage: ", "name": "prompted"},
]


@pytest.mark.parametrize("settings", IR_SETTINGS, ids=range(len(IR_SETTINGS)))
def test_information_retrieval_matches_the_reference(ir, minilm, reference_minilm, tmp_path, settings):
    ours = InformationRetrievalEvaluator(*ir, corpus_chunk_size=7, **settings)  # the chunking must not matter
    theirs = reference.InformationRetrievalEvaluator(*ir, **settings)
    assert (ours.queries_ids, ours.corpus_ids, ours.csv_file) == (
        theirs.queries_ids,
        theirs.corpus_ids,
        theirs.csv_file,
    )
    our_results = ours(minilm, str(tmp_path / "ours"), epoch=2, steps=5)
    their_results = theirs(reference_minilm, str(tmp_path / "theirs"), epoch=2, steps=5)
    assert_same_metrics(our_results, their_results, ours, theirs, OWN_MODELS)
    assert_same_csv(tmp_path / "ours" / ours.csv_file, tmp_path / "theirs" / theirs.csv_file, OWN_MODELS)
    assert ours.get_config_dict() == theirs.get_config_dict()
    if "name" in settings:
        assert ours.primary_metric == f"{settings['name']}_cosine_ndcg@10"


def test_information_retrieval_predictions_match_the_reference(ir, reference_minilm, tmp_path):
    settings = dict(write_predictions=True, name="p", score_functions={"cosine": cos_sim, "dot": dot_score})
    ours = InformationRetrievalEvaluator(*ir, corpus_chunk_size=13, **settings)
    theirs = reference.InformationRetrievalEvaluator(*ir, **settings)
    assert_same_metrics(
        ours(reference_minilm, str(tmp_path)), theirs(reference_minilm, str(tmp_path / "r")), ours, theirs, SAME_MODEL
    )
    for name in ("cosine", "dot"):
        file_name = f"Information-Retrieval_evaluation_p_predictions_{name}.jsonl"
        ours_rows = [json.loads(line) for line in (tmp_path / file_name).read_text().splitlines()]
        their_rows = [json.loads(line) for line in (tmp_path / "r" / file_name).read_text().splitlines()]
        # The same ids in the same order; scores to float rounding (a chunk's matrix product rounds by its shape).
        assert [[row["query_id"], row["query"]] for row in ours_rows] == [
            [row["query_id"], row["query"]] for row in their_rows
        ]
        for our_row, their_row in zip(ours_rows, their_rows):
            assert [hit["corpus_id"] for hit in our_row["results"]] == [
                hit["corpus_id"] for hit in their_row["results"]
            ]
            np.testing.assert_allclose(
                [hit["score"] for hit in our_row["results"]], [hit["score"] for hit in their_row["results"]], atol=1e-6
            )


class TableModel:
    """A model whose embedding of a text is looked up in a table: duplicates and equal scores on purpose."""

    def __init__(self, table, similarity_fn_name):
        self.table, self.similarity_fn_name = table, similarity_fn_name
        self.model_card_data = ModelCardData()

    def encode(self, inputs, convert_to_tensor=False, **kwargs):
        embeddings = torch.tensor(np.array([self.table[text] for text in inputs], dtype=np.float32))
        return embeddings if convert_to_tensor else embeddings.numpy()

    encode_query = encode_document = encode

    def similarity(self, a, b):
        return SimilarityFunction.to_similarity_fn(self.similarity_fn_name)(a, b)


def test_ties_rank_by_corpus_id_in_any_chunking_and_a_reused_evaluator_follows_each_model(tmp_path):
    rng = np.random.default_rng(0)
    corpus = {f"d{i}": f"doc {i}" for i in rng.permutation(30)}
    queries = {f"q{i}": f"query {i}" for i in range(8)}
    relevant = {f"q{i}": {f"d{(7 * i + j) % 30}" for j in range(i % 3 + 1)} for i in range(8)}
    # Five distinct document vectors over 30 documents: every cut-off falls inside a group of equal scores.
    table = {f"doc {i}": rng.integers(-2, 3, 4) for i in range(5)}
    table |= {f"doc {i}": table[f"doc {i % 5}"] for i in range(30)}
    table |= {f"query {i}": rng.integers(-2, 3, 4) for i in range(8)}
    results = {}
    # Cut-offs of at most 3 (fewer than a chunk's documents), so torch.topk has to choose among equal scores.
    cutoffs = dict(mrr_at_k=[3], ndcg_at_k=[2, 3], accuracy_at_k=[1, 3], precision_recall_at_k=[1, 3], map_at_k=[3])
    for label, evaluator, chunk in (("theirs", reference, 50000), ("ours", None, 7), ("ours1", None, 30)):
        cls = reference.InformationRetrievalEvaluator if evaluator else InformationRetrievalEvaluator
        instance = cls(queries, corpus, relevant, corpus_chunk_size=chunk, name="t", **cutoffs)
        first = instance(TableModel(table, "dot"), str(tmp_path / label))
        second = instance(TableModel(table, "euclidean"), str(tmp_path / label))
        results[label] = (instance, first, second)
    for label in ("ours", "ours1"):
        for index in (1, 2):
            assert_same_metrics(
                results[label][index], results["theirs"][index], results[label][0], results["theirs"][0], SAME_MODEL
            )
        assert_same_csv(
            tmp_path / label / results[label][0].csv_file,
            tmp_path / "theirs" / results["theirs"][0].csv_file,
            SAME_MODEL,
        )
    assert "t_euclidean_ndcg@3" in results["ours"][2] and "t_dot_ndcg@3" not in results["ours"][2]


class Constant(SentenceEvaluator):
    def __init__(self, value, as_dict=True):
        super().__init__()
        self.value, self.as_dict = value, as_dict

    def __call__(self, model, output_path=None, epoch=-1, steps=-1):
        if not self.as_dict:
            return self.value
        self.primary_metric = "score"
        return self.prefix_name_to_metrics({"other": 0.0, "score": self.value}, f"c{self.value}")


@pytest.mark.parametrize("main_score_function", [None, max])
def test_sequential_evaluator_merges_the_results_like_the_reference(sts, reference_minilm, main_score_function):
    def run(sequential_class, similarity_class):
        evaluators = [Constant(3.0), similarity_class(*sts, name="sts", write_csv=False), Constant(0.5, as_dict=False)]
        kwargs = {"main_score_function": main_score_function} if main_score_function else {}
        sequential = sequential_class(evaluators, **kwargs)
        return sequential, sequential(reference_minilm)

    ours, our_results = run(SequentialEvaluator, EmbeddingSimilarityEvaluator)
    theirs, their_results = run(reference.SequentialEvaluator, reference.EmbeddingSimilarityEvaluator)
    assert_same_metrics(our_results, their_results, ours, theirs, SAME_MODEL)
    assert our_results["sequential_score"] == (3.0 if main_score_function else 0.5)
    assert our_results["evaluator_2"] == 0.5 and ours.primary_metric == "sequential_score"
    assert SequentialEvaluator([])(reference_minilm) == {"sequential_score": 0.0}


def test_the_base_evaluator_contract():
    assert BaseEvaluator is SentenceEvaluator
    evaluator, theirs = SentenceEvaluator(), reference.SentenceEvaluator()
    assert (evaluator.greater_is_better, evaluator.primary_metric, evaluator.get_config_dict()) == (True, None, {})
    with pytest.raises(NotImplementedError):
        evaluator(None)
    evaluator.primary_metric = theirs.primary_metric = "ndcg"
    metrics = {"ndcg": np.float32(0.5), "note": "text"}
    assert evaluator.prefix_name_to_metrics(metrics, "dev") == theirs.prefix_name_to_metrics(metrics, "dev")
    assert evaluator.prefix_name_to_metrics(metrics, "dev") == {"dev_ndcg": 0.5, "dev_note": "text"}
    assert evaluator.primary_metric == theirs.primary_metric == "dev_ndcg"  # prefixed once, not twice
    assert evaluator.prefix_name_to_metrics(metrics, "") == {"ndcg": 0.5, "note": "text"}
    for cls, expected in ((EmbeddingSimilarityEvaluator, "Semantic Similarity"), (SequentialEvaluator, "Sequential")):
        assert cls.description.fget(object.__new__(cls)) == expected
    ours_ce, theirs_ce = (type("CERerankingEvaluator", (base,), {})() for base in (SentenceEvaluator, BaseReference))
    assert ours_ce.description == theirs_ce.description == "Cross Encoder Reranking"


def test_results_are_recorded_in_the_model_card_data(sts):
    table = {text: np.ones(3) * (len(text) % 7) + np.arange(3) for text in sts[0] + sts[1]}
    model = TableModel(table, "cosine")
    evaluator = EmbeddingSimilarityEvaluator(*sts, name="card", write_csv=False)
    results = evaluator(model, epoch=1, steps=4)
    (entry,) = model.model_card_data.evaluations
    assert entry == {
        "evaluator": "EmbeddingSimilarityEvaluator",
        "description": "Semantic Similarity",
        "primary_metric": "card_spearman_cosine",
        "epoch": 1,
        "step": 4,
        "metrics": results,
    }
    model.model_card_data = None
    assert evaluator(model) == results  # a model without card data is evaluated all the same


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: EmbeddingSimilarityEvaluator(["a"], ["b", "c"], [1.0]), "same length"),
        (lambda: EmbeddingSimilarityEvaluator(["a"], ["b"], [1.0], similarity_fn_names=["cos"]), "choose from"),
        (lambda: EmbeddingSimilarityEvaluator(["a"], ["b"], [1.0], main_similarity="l1"), "'l1' is not supported"),
        (lambda: InformationRetrievalEvaluator({"q": "a"}, {"d": "b"}, {"q": set()}), "nothing to measure"),
        (lambda: InformationRetrievalEvaluator({"q": "a"}, {"d": "b"}, {"q": {"d"}}, ndcg_at_k=[]), "ndcg_at_k"),
        (lambda: InformationRetrievalEvaluator({"q": "a"}, {"d": "b"}, {"q": {"d"}}, map_at_k=[0]), "map_at_k"),
        (lambda: InformationRetrievalEvaluator({"q": "a"}, {"d": "b"}, {"q": {"d"}}, corpus_chunk_size=0), "chunk"),
        (lambda: InformationRetrievalEvaluator({"q": "a"}, {"d": "b"}, {"q": {"d"}}, score_functions={}), "empty"),
        (lambda: InformationRetrievalEvaluator({"q": "a"}, {"d": "b"}, {"q": {"d"}}, main_score_function="l2"), "l2"),
    ],
)
def test_arguments_it_cannot_run_with_are_refused(build, message):
    with pytest.raises(ValueError, match=message):
        build()
