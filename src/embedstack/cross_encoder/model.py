"""CrossEncoder: a reranker that scores (query, document) pairs read together; BaseModel plus predict and rank."""

from __future__ import annotations

import logging
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from embedstack.base import BaseModel
from embedstack.cross_encoder.activation import default_activation_fn, resolve_activation_fn, saved_activation_path
from embedstack.cross_encoder.default_stack import cross_encoder_modules
from embedstack.cross_encoder.legacy import legacy_init_args, legacy_predict_args
from embedstack.cross_encoder.scoring import as_pairs, finish_scores, is_singular_pair, predict_on_processes
from embedstack.encode_io import progress
from embedstack.engine import EncodePlan, run
from embedstack.modules.dense import Dense
from embedstack.persistence.model_card import ModelCardData
from embedstack.util import fullname

logger = logging.getLogger(__name__)
_UNSET_PROMPTS = ("query", "document")  # the prompts BaseModel adds for every kind (as None until set)


class CrossEncoder(BaseModel):
    """A cross-encoder (reranker): each (query, document) pair is read together and gets a score.

    A stack of modules like :class:`~embedstack.SentenceTransformer`: a Transformer in its
    "sequence-classification" task (pairs tokenized together, its logits written as ``features["scores"]``), then
    whatever the folder's modules.json lists. Loads folders saved by sentence-transformers 6, plain Hugging Face
    classifier folders (how sentence-transformers saved cross-encoders before), and Hub ids in the local cache.

    Args:
        model_name_or_path: A model folder, or a Hub id (a bare name is looked up under "cross-encoder/").
        modules: Build the model from these modules instead.
        device: "cpu", "cuda", ... (default: the best available). The other loading options (``prompts``,
            ``default_prompt_name``, ``cache_folder``, ``trust_remote_code``, ``revision``, ``local_files_only``,
            ``token``, ``model_kwargs``, ``processor_kwargs``, ``config_kwargs``, ``model_card_data``) are
            ``SentenceTransformer``'s.
        backend: "torch", "onnx" (onnxruntime: the folder's ONNX export of the classifier, exported on the fly when
            missing; ``model_kwargs={"file_name": ...}`` picks an int8 file, self-checked at load) or "auto" (of
            those that run the folder, the one measured fastest here; onnx only where the export exists).
        num_labels: The classifier's labels: 1 gives one score per pair, more give a row of scores per pair.
            Default: the folder's (a backbone without a classifier head gets 1).
        max_length: Truncate each pair to this many tokens (default: the tokenizer's limit).
        activation_fn: Applied to the logits in :meth:`predict` (default: the saved one, else ``nn.Sigmoid()``
            for one label and ``nn.Identity()`` for several).

    Example:
        >>> model = CrossEncoder(str(cross_encoder_path))  # a folder of a sequence classifier
        >>> scores = model.predict([("How many people live in Berlin?", "Berlin has 3.5 million people."),
        ...                         ("How many people live in Berlin?", "Berlin is known for its museums.")])
        >>> scores.shape
        (2,)
        >>> hits = model.rank("a cat", ["a dog", "a cat", "stocks fell"])  # best first
        >>> scores = [hit.get("score") for hit in hits]
        >>> sorted(hits[0]), scores == sorted(scores, reverse=True)
        (['corpus_id', 'score'], True)
    """

    model_type = "CrossEncoder"
    default_huggingface_organization: str | None = "cross-encoder"
    calibration_output = "scores"

    @legacy_init_args
    def __init__(
        self,
        model_name_or_path: str | None = None,
        *,
        modules: Iterable[nn.Module] | OrderedDict[str, nn.Module] | None = None,
        device: str | None = None,
        prompts: dict[str, str] | None = None,
        default_prompt_name: str | None = None,
        cache_folder: str | None = None,
        trust_remote_code: bool = False,
        revision: str | None = None,
        local_files_only: bool = False,
        token: bool | str | None = None,
        model_kwargs: dict[str, Any] | None = None,
        processor_kwargs: dict[str, Any] | None = None,
        config_kwargs: dict[str, Any] | None = None,
        model_card_data: ModelCardData | None = None,
        backend: str = "torch",
        num_labels: int | None = None,
        max_length: int | None = None,
        activation_fn: Callable[..., Any] | None = None,
    ) -> None:
        self.activation_fn = activation_fn
        self.trust_remote_code = trust_remote_code
        if num_labels is not None:
            config_kwargs = {**(config_kwargs or {}), "num_labels": num_labels}
        if max_length is not None:
            processor_kwargs = {**(processor_kwargs or {}), "model_max_length": max_length}
        super().__init__(
            model_name_or_path,
            modules=modules,
            device=device,
            prompts=prompts,
            default_prompt_name=default_prompt_name,
            cache_folder=cache_folder,
            trust_remote_code=trust_remote_code,
            revision=revision,
            local_files_only=local_files_only,
            token=token,
            model_kwargs=model_kwargs,
            processor_kwargs=processor_kwargs,
            config_kwargs=config_kwargs,
            model_card_data=model_card_data,
            backend=backend,
        )
        if model_name_or_path is None:  # built from modules: the caller's prompts only (see _apply_saved_config)
            kept = {*(prompts or {}), self.default_prompt_name}
            self.prompts = {name: prompt for name, prompt in self.prompts.items() if name in kept}
        if self.activation_fn is None:  # a folder of sentence-transformers < 6 keeps it in config.json
            self.activation_fn = self._saved_activation({}, self.config) or default_activation_fn(self.num_labels)
        if getattr(self.tokenizer, "chat_template", None):
            logger.warning(
                "This cross-encoder's tokenizer has a chat template. sentence-transformers 6 renders each (query, "
                "document) pair through it; embedstack tokenizes pairs as plain text pairs, so the scores differ "
                "from the reference's. Chat-template rerankers are not supported yet."
            )

    _default_stack = staticmethod(cross_encoder_modules)  # a plain Hugging Face folder: its classifier

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "activation_fn":  # a plain attribute, never a submodule saved as part of the stack
            object.__setattr__(self, name, value)
            return
        super().__setattr__(name, value)

    def _apply_saved_config(self, config: dict[str, Any], prompt_table: dict[str, str | None]) -> None:
        super()._apply_saved_config(config, prompt_table)
        for name in _UNSET_PROMPTS:  # the reference's CrossEncoder has no "query"/"document" prompts by default
            if prompt_table.get(name, "") is None:
                del prompt_table[name]
        if self.activation_fn is None and config.get("activation_fn"):
            self.activation_fn = self._saved_activation(config, None)  # the modules are not attached yet

    def _saved_activation(self, model_config: dict[str, Any], hf_config: Any) -> Callable[..., Any] | None:
        path, where = saved_activation_path(model_config, hf_config)
        if path is None:
            return None
        return resolve_activation_fn(path, trust_remote_code=self.trust_remote_code, where=where)

    def _saved_settings(self) -> dict[str, Any]:
        return {"activation_fn": fullname(self.activation_fn) if self.activation_fn is not None else None}

    def calibration_inputs(self, texts: Sequence[str]) -> list[Any]:
        """Pairs of calibration texts (each with the next), what the int8 self-check scores."""
        texts = list(texts)
        return [(text, texts[(index + 1) % len(texts)]) for index, text in enumerate(texts)]

    # ----- properties -------------------------------------------------------------------------------------
    @property
    def num_labels(self) -> int:
        """Scores per pair: the last scoring module's width (a Dense writing "scores", or the classifier's labels)."""
        for module in reversed(list(self.children())):
            if isinstance(module, Dense) and getattr(module, "module_output_name", None) == "scores":
                return int(module.out_features)
            config = getattr(module, "config", None)
            labels = config.get("num_labels") if isinstance(config, dict) else getattr(config, "num_labels", None)
            if labels is not None and getattr(module, "module_output_name", None) == "scores":
                return int(labels)
        return 1

    @property
    def model(self) -> Any:
        """The Hugging Face classifier (``transformers_model``)."""
        return self.transformers_model

    @property
    def max_length(self) -> int | None:
        """Deprecated: use ``max_seq_length``."""
        logger.warning("CrossEncoder.max_length is deprecated; use max_seq_length.")
        return self.max_seq_length

    @max_length.setter
    def max_length(self, value: int) -> None:
        logger.warning("CrossEncoder.max_length is deprecated; use max_seq_length.")
        self.max_seq_length = value

    @property
    def default_activation_function(self) -> Callable[..., Any] | None:
        """Deprecated: use ``activation_fn``."""
        warnings.warn(
            "The `default_activation_function` property was renamed and is now deprecated. Please use "
            "`activation_fn` instead.",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.activation_fn

    # ----- scoring ----------------------------------------------------------------------------------------
    def is_singular_input(self, inputs: Any) -> bool:
        """Whether ``inputs`` is one pair (``predict`` then returns one score or row) rather than a list of pairs.

        A list or tuple (or dataset column) whose first item is not itself a list or tuple is one pair; a 1-D
        string array is one pair, a 2-D one (or an empty one) a batch; anything else counts as one input.
        """
        return is_singular_pair(inputs)

    @legacy_predict_args
    def predict(
        self,
        inputs: Any = None,
        prompt_name: str | None = None,
        prompt: str | None = None,
        batch_size: int | None = None,
        show_progress_bar: bool | None = None,
        activation_fn: Callable[..., Any] | None = None,
        apply_softmax: bool | None = False,
        convert_to_numpy: bool = True,
        convert_to_tensor: bool = False,
        device: str | list[str] | None = None,
        pool: Any = None,
        chunk_size: int | None = None,
        max_batch_tokens: int | None = None,
        **kwargs: Any,
    ) -> Any:
        """Score pairs: one score per pair with one label, a row of scores with several.

        Args:
            inputs: A pair ``(query, document)`` (gives one result) or a list of pairs.
            prompt_name: The name of a prompt in ``model.prompts``, prepended to the first text of each pair.
            prompt: A prompt string (wins over ``prompt_name``).
            batch_size: The most pairs per forward pass. None (the default) lets the token budget decide: pairs
                are tokenized once (duplicates once), sorted by token count and cut into passes of at most
                ``max_batch_tokens`` padded tokens. A number caps the rows as in sentence-transformers (whose
                default is 32); the scores are the same either way, up to float rounding.
            show_progress_bar: Show a progress bar (default: when logging is at INFO or DEBUG).
            activation_fn: Applied to the logits (default: ``model.activation_fn``).
            apply_softmax: With several labels, softmax each row so it sums to 1.
            convert_to_numpy: Return an ndarray (default); otherwise a list of tensors.
            convert_to_tensor: Return one tensor (overrides ``convert_to_numpy``).
            device: Run on this device; a list of devices scores in one worker process per device.
            pool: Score on the worker processes of ``start_multi_process_pool()``.
            chunk_size: Pairs per chunk handed to a worker.
            max_batch_tokens: Cap on padded tokens per pass (see ``SentenceTransformer.encode``).
            **kwargs: Keyword arguments for the modules' ``preprocess`` and ``forward``.

        Returns:
            (N,) scores for one label, (N, labels) for several; one score (or row) for a single pair.
        """
        if batch_size is not None and batch_size <= 0:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size}.")
        pairs, singular = as_pairs(inputs)
        if isinstance(device, (list, tuple)) and not pairs:
            device = None  # nothing to spread over processes
        activation = self.activation_fn if activation_fn is None else activation_fn
        if show_progress_bar is None:
            show_progress_bar = logger.getEffectiveLevel() <= logging.INFO
        if pairs and (pool is not None or isinstance(device, (list, tuple))):
            options = dict(
                prompt_name=prompt_name, prompt=prompt, batch_size=batch_size, activation_fn=activation,
                apply_softmax=apply_softmax, max_batch_tokens=max_batch_tokens, **kwargs,
            )  # fmt: skip
            scores = torch.from_numpy(predict_on_processes(self, pairs, pool, device, chunk_size, options))
        else:
            assert not isinstance(device, (list, tuple))  # a list of devices (with pairs) took the branch above
            scores = self._scores(
                pairs, prompt_name, prompt, batch_size, max_batch_tokens, device, show_progress_bar, kwargs
            )
            scores = finish_scores(scores, activation, self.num_labels, apply_softmax)
        return _converted(scores, singular, convert_to_tensor, convert_to_numpy)

    @torch.inference_mode()
    def _scores(
        self,
        pairs: list[Any],
        prompt_name: str | None,
        prompt: str | None,
        batch_size: int | None,
        max_batch_tokens: int | None,
        device: str | torch.device | None,
        show_progress_bar: bool,
        kwargs: dict[str, Any],
    ) -> torch.Tensor:
        """The logits of ``pairs`` in input order, through the engine (token-budget batches, duplicates once)."""
        run_on = self._ready_to_run(device)
        plan = EncodePlan(
            prompt=self._resolve_prompt(prompt, prompt_name),
            batch_size=batch_size,
            max_batch_tokens=max_batch_tokens,
            output_value="scores",
            device=run_on,
            preprocess_kwargs=kwargs,
            module_kwargs=self.split_forward_kwargs(kwargs),
        )
        if not pairs:
            return torch.empty(0, device=run_on)
        with progress(show_progress_bar, len(pairs)) as plan.progress:
            scores = run(self, pairs, plan).outputs
        assert isinstance(scores, torch.Tensor)  # one row of logits per pair
        return scores

    @legacy_predict_args
    def rank(
        self,
        query: Any,
        documents: Sequence[Any],
        top_k: int | None = None,
        return_documents: bool = False,
        prompt_name: str | None = None,
        prompt: str | None = None,
        batch_size: int | None = None,
        show_progress_bar: bool | None = None,
        activation_fn: Callable[..., Any] | None = None,
        device: str | list[str] | None = None,
        pool: Any = None,
        chunk_size: int | None = None,
        max_batch_tokens: int | None = None,
    ) -> list[dict[str, Any]]:
        """Score ``documents`` against ``query`` and sort them, best first.

        Returns:
            One dict per document, best first: ``corpus_id`` (its index), ``score`` (a float) and, with
            ``return_documents``, ``text``; the ``top_k`` best (all by default). Equal scores keep the documents'
            order.

        Raises:
            ValueError: The model gives several scores per pair (``num_labels`` > 1): rank needs one.
        """
        if self.num_labels != 1:
            raise ValueError(
                "CrossEncoder.rank() only works for models with num_labels=1. Consider using CrossEncoder.predict() "
                f"with input pairs instead. (This model has num_labels={self.num_labels}.)"
            )
        scores = self.predict(
            [[query, document] for document in documents], prompt_name=prompt_name, prompt=prompt,
            batch_size=batch_size, show_progress_bar=show_progress_bar, activation_fn=activation_fn,
            convert_to_tensor=True, device=device, pool=pool, chunk_size=chunk_size, max_batch_tokens=max_batch_tokens,
        ).tolist()  # fmt: skip
        results: list[dict[str, Any]] = []
        for index, score in enumerate(scores):
            results.append({"corpus_id": index, "score": score})
            if return_documents:
                results[-1]["text"] = documents[index]
        results.sort(key=lambda hit: hit["score"], reverse=True)
        return results[:top_k]


def _converted(scores: torch.Tensor, singular: bool, to_tensor: bool, to_numpy: bool) -> Any:
    """What predict returns: a tensor, an ndarray, or a list of tensors; the first item for a single pair."""
    result: Any
    if to_tensor:
        result = scores
    elif to_numpy:
        result = scores.float().cpu().numpy() if len(scores) else np.array([])
    else:
        result = list(scores)
    return result[0] if singular else result
