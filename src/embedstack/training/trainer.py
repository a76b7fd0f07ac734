"""SentenceTransformerTrainer: Hugging Face's Trainer running embedstack's losses over a module stack.

Checkpoints, resuming, gradient accumulation, mixed precision, logging callbacks and multi-GPU come from
``transformers.Trainer`` (with ``accelerate``). What is ours: the collator, the batch samplers, the losses (which
embed each batch in token-budget passes, :mod:`embedstack.losses.passes`) and the bridge from the collator's
``{column}_{feature}`` batch to the per-column features a loss takes.
"""

from __future__ import annotations

import logging
import os
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader
from transformers import Trainer, TrainerCallback
from transformers.trainer_utils import EvalLoopOutput, HubStrategy

from embedstack.errors import ModelFormatError
from embedstack.evaluation import SentenceEvaluator, SequentialEvaluator
from embedstack.losses import CoSENTLoss
from embedstack.losses.passes import passes_disabled
from embedstack.model import SentenceTransformer
from embedstack.modules.module_io import LoadOptions, load_module_as
from embedstack.modules.router import Router
from embedstack.persistence.layout import read_modules_json
from embedstack.training.args import SentenceTransformerTrainingArguments
from embedstack.training.callbacks import ZeroLossGradients
from embedstack.training.collator import SentenceTransformerDataCollator
from embedstack.training.dataloaders import build_dataloader
from embedstack.training.datasets import add_dataset_names, check_datasets
from embedstack.training.model_card import TrainingCardCallback
from embedstack.training.optimizer_groups import parameter_groups

logger = logging.getLogger(__name__)

# Feature names that mark a column's features in the collated batch: ``{column}_{suffix}``.
FEATURE_SUFFIXES = (
    "input_ids",  # text
    "sentence_embedding",  # BoW
    "pixel_values",  # images
    "input_features",  # audio (Whisper, ...)
    "input_values",  # audio (Wav2Vec2, ...)
    "pixel_values_videos",  # video
)
TRAINING_ARGS_NAME = "training_args.bin"

LossSpec = nn.Module | Callable[[SentenceTransformer], nn.Module]


class SentenceTransformerTrainer(Trainer):
    """Train a :class:`~embedstack.SentenceTransformer` with a loss on Hugging Face datasets.

    Args:
        model: The model to train (or ``model_init``, called at the start of every training run).
        args: The training arguments (default: ``output_dir="tmp_trainer"``).
        train_dataset / eval_dataset: A Dataset, a DatasetDict (several datasets, each possibly with its own loss),
            or an IterableDataset. Text columns in the order the loss reads them; a ``label``/``score`` column.
        loss: A loss, a function of the model returning one, or a dict of them by dataset name (default: CoSENT).
        evaluator: An evaluator, or a list run in order, called at every evaluation.
        callbacks: More ``transformers.TrainerCallback`` objects.

    Example:
        ```python
        from datasets import Dataset
        from embedstack import SentenceTransformer, SentenceTransformerTrainer, losses

        model = SentenceTransformer("all-MiniLM-L6-v2")
        data = Dataset.from_dict({"anchor": ["It is sunny."], "positive": ["The sun shines."]})
        trainer = SentenceTransformerTrainer(model=model, train_dataset=data,
                                             loss=losses.MultipleNegativesRankingLoss(model))
        trainer.train()
        ```
    """

    def __init__(
        self,
        model: SentenceTransformer | None = None,
        args: SentenceTransformerTrainingArguments | None = None,
        train_dataset: Any = None,
        eval_dataset: Any = None,
        loss: LossSpec | dict[str, LossSpec] | None = None,
        evaluator: SentenceEvaluator | list[SentenceEvaluator] | None = None,
        data_collator: SentenceTransformerDataCollator | None = None,
        processing_class: Any = None,
        model_init: Callable[[], SentenceTransformer] | None = None,
        compute_metrics: Callable[..., dict[str, Any]] | None = None,
        callbacks: list[TrainerCallback] | None = None,
        optimizers: tuple[Any, Any] = (None, None),
        optimizer_cls_and_kwargs: tuple[type[torch.optim.Optimizer], dict[str, Any]] | None = None,
        preprocess_logits_for_metrics: Callable[..., Any] | None = None,
    ) -> None:
        args = _checked_args(args)
        if model is None:
            if model_init is None:
                raise ValueError("SentenceTransformerTrainer needs a model= (or a model_init= that builds one).")
            model = model_init()
        if compute_metrics is not None:
            logger.warning("compute_metrics is not used by SentenceTransformerTrainer; pass an evaluator= instead.")
        if args.hub_model_id and not model.model_card_data.model_id:
            model.model_card_data.set_model_id(args.hub_model_id)
        if data_collator is None:
            data_collator = self.get_data_collator(model, args)
        train_dataset, eval_dataset = check_datasets(train_dataset, eval_dataset)
        if eval_dataset is None and evaluator is None and args.eval_strategy != "no":
            raise ValueError(
                f"eval_strategy is {args.eval_strategy!r}, but there is no eval_dataset and no evaluator to evaluate "
                "with. Pass one of them, or set eval_strategy='no'."
            )
        super().__init__(
            model=None if model_init else model,
            args=args,
            data_collator=data_collator,
            train_dataset=train_dataset,
            eval_dataset=eval_dataset if eval_dataset is not None or evaluator is None else "dummy",
            processing_class=processing_class,
            model_init=model_init,  # type: ignore[arg-type]  # any nn.Module factory works
            callbacks=callbacks,
            optimizers=optimizers,
            optimizer_cls_and_kwargs=optimizer_cls_and_kwargs,
            preprocess_logits_for_metrics=preprocess_logits_for_metrics,
        )
        if isinstance(self.eval_dataset, str):
            self.eval_dataset = None
        self.can_return_loss = True
        self.model: SentenceTransformer
        self.args: SentenceTransformerTrainingArguments
        self.loss = self._prepare_losses(loss if loss is not None else CoSENTLoss(self.model), train_dataset)
        self.evaluator = SequentialEvaluator(evaluator) if isinstance(evaluator, list) else evaluator
        self.train_dataset = add_dataset_names(self.train_dataset, args, self.loss)
        self.eval_dataset = add_dataset_names(self.eval_dataset, args, self.loss)
        card = TrainingCardCallback(self)
        self.add_callback(card)
        card.on_init_end(self.args, self.state, self.control, model=self.model)
        self.add_callback(ZeroLossGradients())

    # ----- setup ------------------------------------------------------------------------------------------
    def get_data_collator(
        self, model: SentenceTransformer, args: SentenceTransformerTrainingArguments
    ) -> SentenceTransformerDataCollator:
        """The collator: ``model.preprocess`` per column, with the prompts and Router routes of ``args``."""
        if any(isinstance(module, Router) for module in model.children()) and not args.router_mapping:
            raise ValueError(
                "The model has a Router module, but the training arguments have no router_mapping, so the Router "
                "cannot tell which route each column takes. Pass router_mapping={'question': 'query', 'answer': "
                "'document'} (column name to route)."
            )
        routes = args.router_mapping if isinstance(args.router_mapping, dict) else {}
        prompts = args.prompts
        return SentenceTransformerDataCollator(preprocess_fn=model.preprocess, router_mapping=routes, prompts=prompts)

    def _prepare_losses(self, loss: Any, train_dataset: Any) -> nn.Module | dict[str, nn.Module]:
        if not isinstance(loss, dict):
            return self._prepare_loss(loss)
        for kind, dataset in (("train", train_dataset), ("eval", self.eval_dataset)):
            if dataset is None:
                continue
            if not isinstance(dataset, dict):
                raise ValueError(
                    f"loss is a dict of losses by dataset name, so the {kind}_dataset must be a DatasetDict."
                )
            missing = sorted(set(dataset) - set(loss))
            if missing:
                raise ValueError(f"The {kind}_dataset has datasets {missing} that the loss dict has no loss for.")
        return {name: self._prepare_loss(value) for name, value in loss.items()}

    def _prepare_loss(self, loss: LossSpec) -> nn.Module:
        module = loss if isinstance(loss, nn.Module) else loss(self.model)
        return module.to(self.model.device)

    def call_model_init(self, trial: Any = None) -> Any:
        """A fresh model from ``model_init``; losses built around the old model are pointed at it."""
        model = super().call_model_init(trial)
        if hasattr(self, "loss"):
            losses = self.loss if isinstance(self.loss, dict) else {"": self.loss}
            for loss in losses.values():
                _point_at(loss, model)
        return model

    # ----- loss -------------------------------------------------------------------------------------------
    def compute_loss(
        self,
        model: nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: Any = None,
    ) -> Any:
        """The loss of one collated batch (the dataset's own loss when the loss is a dict)."""
        dataset_name = inputs.pop("dataset_name", None)
        features, labels = self.collect_features(inputs)
        loss_fn = self.loss[dataset_name] if isinstance(self.loss, dict) and dataset_name else self.loss
        if isinstance(loss_fn, dict):
            raise ValueError("loss is a dict by dataset name, but the batch names no dataset; pass a DatasetDict.")
        if model is self.model_wrapped and getattr(loss_fn, "model", model) is not model:
            _point_at(loss_fn, model)  # the distributed or compiled wrapper, once per process
        with passes_disabled(not self.args.token_budget_passes):
            loss = loss_fn(features, labels)
        if isinstance(loss, dict):
            loss = torch.stack(list(loss.values())).sum()
        return (loss, {}) if return_outputs else loss

    @staticmethod
    def collect_features(inputs: dict[str, Any]) -> tuple[list[dict[str, Any]], torch.Tensor | None]:
        """Split a collated batch into one features dict per column (in column order) and the labels."""
        features: list[dict[str, Any]] = []
        prefixes: set[str] = set()
        for key in inputs:
            suffix = next((s for s in FEATURE_SUFFIXES if key.endswith("_" + s)), None)
            if suffix is None:
                continue
            prefix = key[: -len(suffix)]
            if prefix not in prefixes:
                prefixes.add(prefix)
                features.append(
                    {name[len(prefix) :]: value for name, value in inputs.items() if name.startswith(prefix)}
                )
        return features, inputs.get("label")

    def get_optimizer_cls_and_kwargs(self, args: Any, model: Any = None) -> tuple[Any, Any]:  # type: ignore[override]
        """The optimizer over the model and the loss's own parameters, with ``learning_rate_mapping`` groups."""
        loss_model: Any = nn.Sequential(OrderedDict(self.loss)) if isinstance(self.loss, dict) else self.loss
        optimizer_cls, kwargs = Trainer.get_optimizer_cls_and_kwargs(args, loss_model)
        decay = set(self.get_decay_parameter_names(loss_model))
        named = [(name, p) for name, p in loss_model.named_parameters() if p.requires_grad]
        rates = self.args.learning_rate_mapping if isinstance(self.args.learning_rate_mapping, dict) else {}
        groups = parameter_groups(named, decay, self.args.weight_decay, rates)
        if not {"params", "model", "optimizer_dict"} & set(kwargs):
            kwargs["optimizer_dict"] = groups
        return optimizer_cls, kwargs

    # ----- data -------------------------------------------------------------------------------------------
    def get_train_dataloader(self) -> DataLoader:
        """The training batches, from ``args.batch_sampler`` (uneven last batches allowed)."""
        if self.train_dataset is None:
            raise ValueError("Training needs a train_dataset; pass one to SentenceTransformerTrainer.")
        return self._prepared(self.train_dataset, "train")

    def get_eval_dataloader(self, eval_dataset: Any = None) -> DataLoader:
        """The evaluation batches (an empty loader when only an evaluator evaluates)."""
        if isinstance(eval_dataset, str):
            eval_dataset = self.eval_dataset[eval_dataset]  # type: ignore[index]
        dataset = eval_dataset if eval_dataset is not None else self.eval_dataset
        if dataset is None:
            if self.evaluator is not None:
                return DataLoader([])  # type: ignore[arg-type]  # nothing to batch: the evaluator evaluates
            raise ValueError(
                "Evaluation needs an eval_dataset or an evaluator; pass one to SentenceTransformerTrainer."
            )
        return self._prepared(dataset, "eval")

    def get_test_dataloader(self, test_dataset: Any) -> DataLoader:
        """The batches of a test dataset."""
        return self._prepared(test_dataset, "test")

    def _prepared(self, dataset: Any, kind: str) -> DataLoader:
        """The DataLoader of ``dataset``, prepared by accelerate.

        Training allows an uneven last batch across processes (even ones would break multi-dataset batches);
        evaluation keeps them even (uneven ones hang).
        """
        self.accelerator.even_batches = kind != "train"
        size = self.args.train_batch_size if kind == "train" else self.args.eval_batch_size
        return self.accelerator.prepare(
            build_dataloader(self.args, dataset, self.data_collator, batch_size=size, kind=kind)
        )

    def evaluation_loop(
        self,
        dataloader: DataLoader,
        description: str,
        prediction_loss_only: bool | None = None,
        ignore_keys: list[str] | None = None,
        metric_key_prefix: str = "eval",
    ) -> EvalLoopOutput:
        """The evaluation loss (if there is an eval dataset) and the evaluator's metrics, prefixed ``eval_``."""
        output = super().evaluation_loop(dataloader, description, prediction_loss_only, ignore_keys, metric_key_prefix)
        if self.evaluator is None:
            return output
        if self.is_in_train and isinstance(self.eval_dataset, dict) and metric_key_prefix.startswith("eval_"):
            if metric_key_prefix[5:] != next(iter(self.eval_dataset)):
                return output  # the evaluator runs once per evaluation, with the first dataset
            metric_key_prefix = "eval"
        output_path = None
        if self.is_world_process_zero():
            output_path = os.path.join(str(self.args.output_dir), "eval")
            os.makedirs(output_path, exist_ok=True)
        epoch: Any = self.state.epoch  # fractional within an epoch, as the reference passes it
        metrics = self.evaluator(self.model, output_path=output_path, epoch=epoch, steps=self.state.global_step)
        if not isinstance(metrics, dict):
            metrics = {"evaluator": metrics}
        gathered = dict(output.metrics or {})
        for key, value in metrics.items():
            gathered[key if key.startswith(f"{metric_key_prefix}_") else f"{metric_key_prefix}_{key}"] = value
        output = EvalLoopOutput(output.predictions, output.label_ids, gathered, output.num_samples)
        return output

    # ----- saving -----------------------------------------------------------------------------------------
    def _save(self, output_dir: str | None = None, state_dict: Any = None) -> None:
        """Save the model folder into ``output_dir``, keeping the checkpoints and logs already there."""
        output_dir = str(output_dir if output_dir is not None else self.args.output_dir)
        os.makedirs(output_dir, exist_ok=True)
        self.model.save(output_dir, keep_other_files=True)
        torch.save(self.args, os.path.join(output_dir, TRAINING_ARGS_NAME))

    def _push_from_checkpoint(self, checkpoint_folder: str) -> None:
        """Push to the Hub during training with the whole folder layout (modules.json, module folders, card).

        transformers copies only its own files (config, weights) from the checkpoint into the output folder before
        uploading it; the model (as it is at this checkpoint) is saved there in full first.
        """
        pushing = self.is_world_process_zero() and self.args.hub_strategy != HubStrategy.END
        previous = getattr(self, "push_in_progress", None)  # set once a Hub repository is initialized
        if pushing and (self.args.hub_always_push or previous is None or previous.is_done()):
            self.model.save(str(self.args.output_dir), keep_other_files=True)
        super()._push_from_checkpoint(checkpoint_folder)

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: Any = None) -> None:
        """Resume: the weights of a checkpoint folder into the model being trained.

        Each module is read by the live module's own class (no class named in the folder is imported, no code from
        the folder runs), then its weights are copied in.
        """
        target = getattr(self.model, "_orig_mod", self.model)
        folder = Path(resume_from_checkpoint)
        entries = read_modules_json(folder)
        children = list(target.children())
        if entries is None or len(entries) != len(children):
            raise ModelFormatError(
                f"{folder} is not a checkpoint of this model: it lists {len(entries or [])} modules in modules.json, "
                f"the model has {len(children)}. Resume from a checkpoint-* folder this training run wrote."
            )
        options = LoadOptions(trust_remote_code=False, device="cpu")
        for entry, module in zip(entries, children):
            loaded = load_module_as(type(module), folder, entry.path, options=options)
            module.load_state_dict(loaded.state_dict())

    def _load_best_model(self) -> None:
        checkpoint = self.state.best_model_checkpoint
        if checkpoint:
            logger.info("Loading the best model from %s (score %s).", checkpoint, self.state.best_metric)
            try:
                self._load_from_checkpoint(checkpoint)
            except (OSError, ValueError) as exc:  # training is done: keep the last model rather than lose the run
                logger.error("Could not load the best model from %s (%s); keeping the last one.", checkpoint, exc)

    def evaluate(
        self, eval_dataset: Any = None, ignore_keys: list[str] | None = None, metric_key_prefix: str = "eval"
    ) -> dict[str, float]:
        """The evaluation loss and the evaluator's metrics; a dataset passed here is prepared as eval_dataset is."""
        if eval_dataset is not None and not isinstance(eval_dataset, str):
            _, eval_dataset = check_datasets(None, eval_dataset)
            eval_dataset = add_dataset_names(eval_dataset, self.args, self.loss)
        return super().evaluate(eval_dataset, ignore_keys, metric_key_prefix)

    def create_model_card(self, *args: Any, **kwargs: Any) -> None:
        """Write the model card (with the training details) into the output folder."""
        if not self.is_world_process_zero():
            return
        for key in ("language", "license"):
            if kwargs.get(key):
                setattr(self.model.model_card_data, key, kwargs[key])
        if kwargs.get("tags"):
            tags = kwargs["tags"]
            self.model.model_card_data.tags.extend([tags] if isinstance(tags, str) else tags)
        path = os.path.join(str(self.args.output_dir), "README.md")
        with open(path, "w", encoding="utf-8") as file:
            file.write(self.model._card_text(kwargs.get("model_name")))


def _checked_args(args: Any) -> SentenceTransformerTrainingArguments:
    if args is None:
        return SentenceTransformerTrainingArguments(output_dir="tmp_trainer")
    if not isinstance(args, SentenceTransformerTrainingArguments):
        raise ValueError(
            f"args is a {type(args).__name__}; pass an embedstack.SentenceTransformerTrainingArguments (it takes every "
            "transformers.TrainingArguments option)."
        )
    return args


def _point_at(loss: nn.Module, model: nn.Module) -> None:
    """Make ``loss`` (and the losses it wraps) train ``model``."""
    for name, child in list(loss.named_children()):
        if name == "model":
            loss.model = model
        elif isinstance(child, nn.Module):
            _point_at(child, model)
