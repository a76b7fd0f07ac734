"""What the model card says about a training run: datasets, loss, hyperparameters, evaluation, framework versions."""

from __future__ import annotations

import json
import logging
from typing import Any

from transformers import TrainerCallback

logger = logging.getLogger(__name__)


class TrainingCardCallback(TrainerCallback):
    """Record a training run in ``model.model_card_data.training`` (a dict the model card renders)."""

    def __init__(self, trainer: Any) -> None:
        self.trainer = trainer

    def on_init_end(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        """Datasets, losses and the non-default hyperparameters, at the start."""
        if model is None:
            return
        trainer = self.trainer
        training = model.model_card_data.training
        training.clear()
        training["datasets"] = _datasets(trainer.train_dataset, "train") + _datasets(trainer.eval_dataset, "eval")
        losses = trainer.loss if isinstance(trainer.loss, dict) else {"": trainer.loss}
        training["losses"] = {
            name: {"class": type(loss).__name__, "config": _jsonable(_config(loss))} for name, loss in losses.items()
        }
        training["hyperparameters"] = _changed_arguments(args)

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, float] | None = None, **kwargs: Any) -> None:
        """The training and evaluation losses, by step."""
        model = kwargs.get("model")
        if model is None or not logs:
            return
        entry = {"epoch": state.epoch, "step": state.global_step, **{k: v for k, v in logs.items() if "loss" in k}}
        if len(entry) > 2:
            model.model_card_data.training.setdefault("logs", []).append(entry)

    def on_evaluate(
        self, args: Any, state: Any, control: Any, metrics: dict[str, float] | None = None, **kwargs: Any
    ) -> None:
        """The evaluator's metrics, latest first."""
        model = kwargs.get("model")
        if model is not None and metrics:
            model.model_card_data.training["evaluation"] = {k: v for k, v in metrics.items() if k.startswith("eval_")}


def _datasets(dataset: Any, split: str) -> list[dict[str, Any]]:
    if dataset is None:
        return []
    parts = dataset.items() if isinstance(dataset, dict) else [(None, dataset)]
    described = []
    for name, part in parts:
        columns = [c for c in (part.column_names or []) if c != "dataset_name"]
        entry: dict[str, Any] = {"split": split, "name": name, "columns": columns}
        try:
            entry["size"] = len(part)
        except TypeError:  # a streamed dataset
            entry["size"] = None
        described.append(entry)
    return described


def _config(loss: Any) -> dict[str, Any]:
    getter = getattr(loss, "get_config_dict", None)
    return getter() if callable(getter) else {}


def _changed_arguments(args: Any) -> dict[str, Any]:
    """The training arguments that differ from their defaults (output folders and logging aside)."""
    # use_configured_state: building arguments would otherwise reset the running trainer's accelerator state.
    defaults = type(args)(output_dir="unused", accelerator_config={"use_configured_state": True}).to_dict()
    skip = {"output_dir", "logging_dir", "hub_token", "push_to_hub_token", "run_name", "accelerator_config"}
    return {
        key: _jsonable(value) for key, value in args.to_dict().items() if key not in skip and defaults.get(key) != value
    }


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except TypeError:
        if isinstance(value, dict):
            return {str(k): _jsonable(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [_jsonable(v) for v in value]
        return str(value)
