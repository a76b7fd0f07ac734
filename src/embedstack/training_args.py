"""sentence-transformers' ``training_args`` module path: ``from embedstack.training_args import BatchSamplers``."""

from __future__ import annotations

from embedstack.training.args import SentenceTransformerTrainingArguments
from embedstack.training.sampler_names import BatchSamplers, MultiDatasetBatchSamplers

__all__ = ["BatchSamplers", "MultiDatasetBatchSamplers", "SentenceTransformerTrainingArguments"]
