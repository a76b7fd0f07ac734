"""Training (the ``train`` extra: ``accelerate`` and ``datasets``): the trainer, its arguments, collator, samplers."""

from __future__ import annotations

from embedstack.training.args import SentenceTransformerTrainingArguments
from embedstack.training.collator import SentenceTransformerDataCollator
from embedstack.training.input_example import InputExample
from embedstack.training.samplers import BatchSamplers, MultiDatasetBatchSamplers
from embedstack.training.trainer import SentenceTransformerTrainer

__all__ = [
    "BatchSamplers",
    "InputExample",
    "MultiDatasetBatchSamplers",
    "SentenceTransformerDataCollator",
    "SentenceTransformerTrainer",
    "SentenceTransformerTrainingArguments",
]
