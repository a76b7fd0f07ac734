"""SentenceTransformerTrainingArguments: Hugging Face TrainingArguments plus what training embedding models needs."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Union

from transformers import TrainingArguments
from transformers.training_args import ParallelMode

from embedstack.training.samplers import BatchSamplers, MultiDatasetBatchSamplers

logger = logging.getLogger(__name__)


@dataclass
class SentenceTransformerTrainingArguments(TrainingArguments):
    r"""``transformers.TrainingArguments`` with sentence-transformers 6.2's additions and one of embedstack's.

    Args:
        prompts: A prompt for every column (str), per column name (dict), per dataset name, or per dataset and
            column (nested dict).
        batch_sampler: ``BatchSamplers`` member or name (``"no_duplicates"`` for in-batch negative losses), a
            batch sampler class, or a callable building one.
        multi_dataset_batch_sampler: How batches of several datasets interleave (``"proportional"``,
            ``"round_robin"``).
        router_mapping: Column name to Router route (``{"question": "query", "answer": "document"}``), or per
            dataset name.
        learning_rate_mapping: Parameter-name regular expression to learning rate, e.g.
            ``{r"2_Dense\..*": 1e-3}``.
        warmup_ratio: Deprecated spelling of a float ``warmup_steps``.
        token_budget_passes: Embed each batch's texts in length-sorted passes padded per pass (embedstack's
            speed-up; the loss and gradients are the same). False embeds each column in one padded pass.
    """

    _VALID_DICT_FIELDS = [  # noqa: RUF012 - transformers reads this class attribute
        *TrainingArguments._VALID_DICT_FIELDS,
        "learning_rate_mapping",
        "prompts",
        "router_mapping",
    ]
    prompts: Union[str, None, dict[str, str], dict[str, dict[str, str]]] = field(  # noqa: UP007 - HfArgumentParser
        default=None,
        metadata={"help": "A prompt for every column, per column, per dataset, or per dataset and column."},
    )
    batch_sampler: Union[BatchSamplers, str, Callable[..., Any]] = field(  # noqa: UP007
        default=BatchSamplers.BATCH_SAMPLER, metadata={"help": "The batch sampler to use."}
    )
    multi_dataset_batch_sampler: Union[MultiDatasetBatchSamplers, str, Callable[..., Any]] = field(  # noqa: UP007
        default=MultiDatasetBatchSamplers.PROPORTIONAL, metadata={"help": "The multi-dataset batch sampler to use."}
    )
    router_mapping: Union[str, None, dict[str, str], dict[str, dict[str, str]]] = field(  # noqa: UP007
        default_factory=dict, metadata={"help": "Column name (or dataset, then column) to Router route."}
    )
    learning_rate_mapping: Union[str, None, dict[str, float]] = field(  # noqa: UP007
        default_factory=dict, metadata={"help": "Parameter-name regular expression to learning rate."}
    )
    warmup_ratio: float | None = field(default=None, metadata={"help": "Deprecated: pass a float warmup_steps."})
    token_budget_passes: bool = field(
        default=True, metadata={"help": "Embed each batch in length-sorted passes, padded per pass."}
    )

    def __post_init__(self) -> None:
        if self.warmup_ratio is not None and not self.warmup_steps:
            self.warmup_steps = self.warmup_ratio
            self.warmup_ratio = None
        super().__post_init__()
        if isinstance(self.batch_sampler, str):
            self.batch_sampler = _member(BatchSamplers, self.batch_sampler, "batch_sampler")
        if isinstance(self.multi_dataset_batch_sampler, str):
            self.multi_dataset_batch_sampler = _member(
                MultiDatasetBatchSamplers, self.multi_dataset_batch_sampler, "multi_dataset_batch_sampler"
            )
        if isinstance(self.prompts, str):
            try:
                self.prompts = json.loads(self.prompts)
            except json.JSONDecodeError:
                pass  # a plain prompt for every column
        self.router_mapping = _json_dict(self.router_mapping, "router_mapping")
        self.learning_rate_mapping = _json_dict(self.learning_rate_mapping, "learning_rate_mapping")
        # Losses compute only a loss; there are no predictions to gather.
        self.prediction_loss_only = True
        # BERT's buffers are never changed by training; broadcasting them breaks in-place ops under DDP.
        self.ddp_broadcast_buffers = False
        if self.parallel_mode == ParallelMode.DISTRIBUTED and not self.dataloader_drop_last:
            # An uneven last batch leaves one process waiting for the others' gradients.
            logger.warning("Distributed training: setting dataloader_drop_last=True (an uneven last batch hangs).")
            self.dataloader_drop_last = True

    def to_dict(self) -> dict[str, Any]:
        """The arguments as a dict; a sampler given as a class or function is left out (it is no JSON value)."""
        values = super().to_dict()
        for key in ("batch_sampler", "multi_dataset_batch_sampler"):
            if callable(values.get(key)) and not isinstance(values[key], str):
                values.pop(key)
        return values


def _member(enum: Any, value: str, name: str) -> Any:
    try:
        return enum(value)
    except ValueError:
        valid = ", ".join(repr(member.value) for member in enum)
        raise ValueError(f"{name}={value!r} is not a known sampler; use one of {valid}.") from None


def _json_dict(value: Any, name: str) -> dict[str, Any]:
    """A dict argument, which the command line gives as a JSON string."""
    if value is None:
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise ValueError(f"{name} must be a dict, or a JSON string of one; got {value!r}.") from None
    if not isinstance(value, dict):
        raise ValueError(f"{name} must be a dict, got {type(value).__name__}.")
    return value
