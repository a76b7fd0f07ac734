"""The legacy ``model.fit(train_objectives=[(dataloader, loss)], ...)`` API, run through the trainer.

The DataLoaders of ``InputExample`` become a DatasetDict (``sentence_0``, ``sentence_1``, ..., ``label``), each
loss trains on its own loader's dataset, and the loaders take turns (round robin), as in sentence-transformers.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
from datasets import Dataset, DatasetDict
from torch import nn
from torch.utils.data import DataLoader
from transformers import TrainerCallback, get_scheduler

from embedstack.training.args import SentenceTransformerTrainingArguments
from embedstack.training.samplers import BatchSamplers, MultiDatasetBatchSamplers
from embedstack.training.trainer import SentenceTransformerTrainer

logger = logging.getLogger(__name__)

SCHEDULERS = {
    "constantlr": "constant",
    "warmupconstant": "constant_with_warmup",
    "warmuplinear": "linear",
    "warmupcosine": "cosine",
    "warmupcosinewithhardrestarts": "cosine_with_hard_restarts",
}
NO_DECAY = ("bias", "LayerNorm.bias", "LayerNorm.weight")


def fit(
    model: Any,
    train_objectives: Iterable[tuple[DataLoader, nn.Module]],
    evaluator: Any = None,
    epochs: int = 1,
    steps_per_epoch: int | None = None,
    scheduler: str = "WarmupLinear",
    warmup_steps: int = 10000,
    optimizer_class: type[torch.optim.Optimizer] = torch.optim.AdamW,
    optimizer_params: dict[str, Any] | None = None,
    weight_decay: float = 0.01,
    evaluation_steps: int = 0,
    output_path: str | None = None,
    save_best_model: bool = True,
    max_grad_norm: float = 1,
    use_amp: bool = False,
    callback: Callable[[float, int, int], None] | None = None,
    show_progress_bar: bool = True,
    checkpoint_path: str | None = None,
    checkpoint_save_steps: int = 500,
    checkpoint_save_total_limit: int = 0,
    resume_from_checkpoint: bool = False,
) -> None:
    """Train ``model`` on ``(DataLoader of InputExample, loss)`` pairs; see ``SentenceTransformer.fit``."""
    loaders, losses = zip(*train_objectives)
    batch_size, sampler, datasets = _datasets(loaders)
    if steps_per_epoch and epochs > 1:
        logger.warning(
            "steps_per_epoch only applies with epochs=1 (as in sentence-transformers); training full epochs."
        )
        steps_per_epoch = None
    max_steps = steps_per_epoch if steps_per_epoch and epochs == 1 else -1
    args = SentenceTransformerTrainingArguments(
        output_dir=checkpoint_path or _default_checkpoint_dir(),
        batch_sampler=sampler,
        multi_dataset_batch_sampler=MultiDatasetBatchSamplers.ROUND_ROBIN,
        per_device_train_batch_size=batch_size,
        per_device_eval_batch_size=batch_size,
        num_train_epochs=epochs,
        max_steps=max_steps,
        eval_strategy="steps" if evaluation_steps and evaluator is not None else "no",
        eval_steps=evaluation_steps or None,
        max_grad_norm=max_grad_norm,
        fp16=use_amp,
        disable_tqdm=not show_progress_bar,
        save_strategy="steps" if checkpoint_path is not None else "no",
        save_steps=checkpoint_save_steps,
        save_total_limit=checkpoint_save_total_limit or None,
        report_to="none",
    )
    per_epoch = steps_per_epoch or min(len(dataset) // batch_size for dataset in datasets.values())
    total = max_steps if max_steps > 0 else int(per_epoch * epochs) * len(losses)
    loss_by_name = {f"_dataset_{index}": loss for index, loss in enumerate(losses, start=1)}
    named = list(nn.ModuleDict({"model": model, **loss_by_name}).named_parameters())
    optimizer = optimizer_class(
        [
            {"params": [p for n, p in named if not any(nd in n for nd in NO_DECAY)], "weight_decay": weight_decay},
            {"params": [p for n, p in named if any(nd in n for nd in NO_DECAY)], "weight_decay": 0.0},
        ],
        **(optimizer_params or {"lr": 2e-5}),
    )
    schedule = get_scheduler(
        _scheduler_name(scheduler), optimizer, num_warmup_steps=warmup_steps, num_training_steps=total
    )
    trainer = SentenceTransformerTrainer(
        model=model,
        args=args,
        train_dataset=datasets,
        loss=loss_by_name,
        evaluator=evaluator,
        optimizers=(optimizer, schedule),
        callbacks=[_LegacyCallbacks(model, evaluator, callback, output_path, save_best_model)],
    )
    trainer.train(resume_from_checkpoint=_latest_checkpoint(checkpoint_path) if resume_from_checkpoint else None)


def _datasets(loaders: tuple[DataLoader, ...]) -> tuple[int, BatchSamplers, DatasetDict]:
    """The loaders' examples as datasets, the batch size (the last loader's) and the sampler their kind implies."""
    batch_size, sampler = 8, BatchSamplers.BATCH_SAMPLER
    datasets = {}
    for index, loader in enumerate(loaders, start=1):
        if type(loader).__name__ == "NoDuplicatesDataLoader":
            sampler = BatchSamplers.NO_DUPLICATES
        batch_size = getattr(loader, "batch_size", None) or getattr(loader.batch_sampler, "batch_size", None) or 8
        examples: list[Any] = [loader.dataset[i] for i in range(len(loader.dataset))]  # type: ignore[arg-type]
        if not examples:
            raise ValueError(f"Training objective {index}'s DataLoader holds no examples.")
        columns = list(zip(*[example.texts for example in examples]))
        dataset = Dataset.from_dict({f"sentence_{column}": list(texts) for column, texts in enumerate(columns)})
        labels = [example.label for example in examples]
        if any(label != 0 for label in labels):
            dataset = dataset.add_column("label", labels)
        datasets[f"_dataset_{index}"] = dataset
    return batch_size, sampler, DatasetDict(datasets)


def _scheduler_name(name: str) -> str:
    try:
        return SCHEDULERS[name.lower()]
    except KeyError:
        raise ValueError(f"Unknown scheduler {name!r}; use one of {sorted(SCHEDULERS)} (any case).") from None


def _default_checkpoint_dir() -> str:
    folder, index = Path("checkpoints/model"), 1
    while folder.exists() and any(folder.iterdir()):
        folder, index = Path(f"checkpoints/model_{index}"), index + 1
    return str(folder)


def _latest_checkpoint(folder: str | None) -> str | None:
    steps = sorted(
        (int(path.name.split("-")[-1]), path)
        for path in Path(folder or "").glob("checkpoint-*")
        if path.name.split("-")[-1].isdigit()
    )
    if not steps:
        logger.warning("No checkpoint-* folder in %s; training from the start.", folder)
        return None
    return str(steps[-1][1])


class _LegacyCallbacks(TrainerCallback):
    """``callback(score, epoch, steps)`` after each evaluation; the model saved to ``output_path`` (best or last)."""

    def __init__(self, model: Any, evaluator: Any, callback: Any, output_path: str | None, save_best: bool) -> None:
        self.model, self.evaluator, self.callback = model, evaluator, callback
        self.output_path, self.save_best = output_path, save_best
        self.best: float | None = None

    def _score(self, metrics: dict[str, float]) -> float | None:
        primary = getattr(self.evaluator, "primary_metric", None)
        key = next((k for k in metrics if primary and k.endswith(primary)), None)
        return metrics[key] if key else None

    def on_evaluate(self, args: Any, state: Any, control: Any, metrics: Any = None, **kwargs: Any) -> None:
        score = self._score(metrics or {})
        if score is None:
            return
        if self.callback is not None:
            self.callback(score, int(state.epoch or 0), state.global_step)
        greater = getattr(self.evaluator, "greater_is_better", True)
        if self.best is None or (score > self.best if greater else score < self.best):
            self.best = score
            if self.output_path and self.save_best:
                self.model.save(self.output_path, keep_other_files=True)

    def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """The evaluator runs after every epoch too, as ``fit`` always did."""
        if self.evaluator is None:
            return
        folder = os.path.join(self.output_path, "eval") if self.output_path else None
        if folder:
            os.makedirs(folder, exist_ok=True)
        metrics = self.evaluator(self.model, output_path=folder, epoch=state.epoch, steps=state.global_step)
        metrics = metrics if isinstance(metrics, dict) else {"evaluator": metrics}
        self.on_evaluate(args, state, control, metrics={f"eval_{key}": value for key, value in metrics.items()})

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.output_path and (self.evaluator is None or not self.save_best):
            self.model.save(self.output_path, keep_other_files=True)
