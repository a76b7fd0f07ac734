"""Evaluation of embedding models: sentence-transformers' evaluators, and public benchmarks shipped as packages.

``from embedstack.evaluation import InformationRetrievalEvaluator`` replaces
``from sentence_transformers.evaluation import InformationRetrievalEvaluator``: same arguments, same metric keys,
same primary metric, same CSV files.
"""

from embedstack.evaluation.embedding_similarity import EmbeddingSimilarityEvaluator
from embedstack.evaluation.evaluator import BaseEvaluator, SentenceEvaluator
from embedstack.evaluation.information_retrieval import InformationRetrievalEvaluator
from embedstack.evaluation.sequential import SequentialEvaluator
from embedstack.similarity import SimilarityFunction

__all__ = [
    "BaseEvaluator",
    "EmbeddingSimilarityEvaluator",
    "InformationRetrievalEvaluator",
    "SentenceEvaluator",
    "SequentialEvaluator",
    "SimilarityFunction",
]
