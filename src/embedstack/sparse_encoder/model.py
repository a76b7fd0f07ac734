"""SparseEncoder: SPLADE-style sparse embeddings (vocabulary-sized, mostly zero); BaseModel plus its encode family."""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterable
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import nn

from embedstack.base import BaseModel
from embedstack.base.query_document import QueryDocumentMethods
from embedstack.cache import EmbeddingStore, cached_run, open_cache
from embedstack.encode_io import as_batch, is_singular_input, legacy_inputs, progress
from embedstack.engine import EncodePlan, run
from embedstack.engine.pass_size import sparse_max_batch_tokens
from embedstack.engine.processes import run_on_processes
from embedstack.modules.splade_pooling import SpladePooling
from embedstack.persistence.model_card import ModelCardData
from embedstack.similarity import SimilarityFunction, check_similarity_fn_name
from embedstack.sparse_encoder.default_stack import sparse_encoder_modules
from embedstack.sparse_encoder.fused import fused_splade_forward
from embedstack.sparse_encoder.sparse import decode_rows, sparsity_of, stacked_rows

logger = logging.getLogger(__name__)


class SparseEncoder(QueryDocumentMethods, BaseModel):
    """A sparse encoder: each input becomes a vocabulary-sized vector with few non-zero weights (SPLADE).

    A stack of modules on the shared base: typically a Transformer in its "fill-mask" task (an MLM's logits per
    token) and :class:`~embedstack.modules.SpladePooling`, or a Router with an inference-free
    ``SparseStaticEmbedding`` document side. Loads folders saved by sentence-transformers 5 and 6, plain Hugging Face
    MLM folders, and Hub ids in the local cache.

    Args:
        model_name_or_path: A model folder, or a Hub id (a bare name is looked up under "sparse-encoder/").
        modules: Build the model from these modules instead.
        device: "cpu", "cuda", ... (default: the best available). The other loading options are
            ``SentenceTransformer``'s.
        similarity_fn_name: "dot" (the default for sparse models), "cosine", "euclidean" or "manhattan".
        max_active_dims: Keep only each vector's largest weights (default: the saved value, else all).
        cache: A file path (or an :class:`~embedstack.cache.EmbeddingStore`) for a persistent embedding cache:
            encode reads the sparse vectors it already holds for the same model, settings (``max_active_dims``
            among them) and texts, and stores the rest.

    Example:
        >>> model = SparseEncoder(str(mlm_path))  # a folder of a masked language model
        >>> embeddings = model.encode(["The weather is lovely today.", "It's so sunny outside!"])
        >>> embeddings.is_sparse, embeddings.shape[0]
        (True, 2)
        >>> model.similarity(embeddings, embeddings).shape
        torch.Size([2, 2])
    """

    model_type = "SparseEncoder"
    default_huggingface_organization: str | None = "sparse-encoder"
    SUPPORTED_SIMILARITY_FN_NAMES = ("cosine", "dot", "euclidean", "manhattan")
    keeps_config_of = ("SentenceTransformer",)  # its modules stay, under a SparseAutoEncoder (as the reference)

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
        similarity_fn_name: str | SimilarityFunction | None = None,
        max_active_dims: int | None = None,
        cache: str | Path | EmbeddingStore | None = None,
    ) -> None:
        self._similarity_fn_name = check_similarity_fn_name(similarity_fn_name) if similarity_fn_name else None
        self.max_active_dims = _checked_active_dims(max_active_dims)
        self.embedding_cache = open_cache(cache)
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
        if self.max_active_dims is None:  # a sparse autoencoder head keeps its own k
            heads = [m for m in self.children() if type(m).__name__ == "SparseAutoEncoder"]
            self.max_active_dims = int(getattr(heads[0], "k")) if heads else None  # noqa: B009

    _default_stack = staticmethod(sparse_encoder_modules)  # a plain Hugging Face MLM folder: MLM + SpladePooling

    def _apply_saved_config(self, config: dict[str, Any], prompt_table: dict[str, str | None]) -> None:
        super()._apply_saved_config(config, prompt_table)
        saved = config.get("similarity_fn_name")
        if self._similarity_fn_name is None and saved in self.SUPPORTED_SIMILARITY_FN_NAMES:
            self._similarity_fn_name = saved
        if self.max_active_dims is None:
            self.max_active_dims = _checked_active_dims(config.get("max_active_dims"))

    def _saved_settings(self) -> dict[str, Any]:
        return {"similarity_fn_name": self._similarity_fn_name, "max_active_dims": self.max_active_dims}

    # ----- properties -------------------------------------------------------------------------------------
    @property
    def similarity_fn_name(self) -> str:
        """The similarity function's name ("dot" unless the model or the caller chose another)."""
        if self._similarity_fn_name is None:
            self._similarity_fn_name = "dot"
        return self._similarity_fn_name

    @similarity_fn_name.setter
    def similarity_fn_name(self, value: str | SimilarityFunction) -> None:
        self._similarity_fn_name = check_similarity_fn_name(value)

    @property
    def splade_pooling_chunk_size(self) -> int | None:
        """Tokens SpladePooling pools per step (None: its default), or None without a SpladePooling module."""
        pooling = self._splade_pooling()
        return pooling.chunk_size if pooling is not None else None

    @splade_pooling_chunk_size.setter
    def splade_pooling_chunk_size(self, value: int | None) -> None:
        pooling = self._splade_pooling()
        if pooling is None:
            raise ValueError("This model has no SpladePooling module, so it has no pooling chunk size to set.")
        pooling.chunk_size = value

    def _splade_pooling(self) -> SpladePooling | None:
        return next((module for module in self.modules() if isinstance(module, SpladePooling)), None)

    def get_embedding_dimension(self) -> int | None:
        """The vocabulary size: the last module that knows its output width."""
        for module in reversed(list(self.children())):
            method = getattr(module, "get_embedding_dimension", None)
            if callable(method) and method() is not None:
                return int(method())
        return None

    # ----- encoding ---------------------------------------------------------------------------------------
    def encode(
        self,
        inputs: Any = None,
        prompt_name: str | None = None,
        prompt: str | None = None,
        batch_size: int | None = None,
        show_progress_bar: bool | None = None,
        convert_to_tensor: bool = True,
        convert_to_sparse_tensor: bool = True,
        save_to_cpu: bool = False,
        device: str | list[str] | None = None,
        max_active_dims: int | None = None,
        pool: Any = None,
        chunk_size: int | None = None,
        max_batch_tokens: int | None = None,
        **kwargs: Any,
    ) -> Any:
        """Encode inputs into sparse vectors.

        Each pass's vocabulary-sized weights are kept sparse (after ``max_active_dims``) before the next pass
        runs, so memory grows with the non-zero weights, not with inputs times the vocabulary.

        Args:
            inputs: A string (gives one vector) or a list of them.
            prompt_name: The name of a prompt in ``model.prompts`` to prepend.
            prompt: A prompt string to prepend (wins over ``prompt_name``).
            batch_size: The most inputs per pass; None (the default) lets the token budget decide (as ``encode``
                of a SentenceTransformer; the reference's default is 32 rows, with the same vectors).
            show_progress_bar: Show a progress bar (default: when logging is at INFO or DEBUG).
            convert_to_tensor: One (N, vocab) tensor (default); otherwise a list of (vocab,) tensors.
            convert_to_sparse_tensor: Sparse COO tensors (default); otherwise dense ones.
            save_to_cpu: Move the result to the CPU.
            device: Run on this device; a list of devices encodes in one worker process per device.
            max_active_dims: Keep each vector's largest weights only (default: ``model.max_active_dims``).
            pool: Encode on the worker processes of ``start_multi_process_pool()``.
            chunk_size: Inputs per chunk handed to a worker.
            max_batch_tokens: Cap on padded tokens per pass.
            **kwargs: Keyword arguments for the modules' ``preprocess`` and ``forward`` (e.g. ``task``).
        """
        inputs = legacy_inputs(inputs, kwargs, "encode")
        singular = is_singular_input(inputs)
        batch = as_batch(inputs, singular)
        if batch_size is not None and batch_size <= 0:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size}.")
        k = _checked_active_dims(max_active_dims if max_active_dims is not None else self.max_active_dims)
        if show_progress_bar is None:
            show_progress_bar = logger.getEffectiveLevel() <= logging.INFO
        if batch and (pool is not None or isinstance(device, (list, tuple))):
            options = dict(
                prompt_name=prompt_name, prompt=prompt, batch_size=batch_size, max_active_dims=k,
                max_batch_tokens=max_batch_tokens, convert_to_tensor=False, save_to_cpu=True, **kwargs,
            )  # fmt: skip
            embeddings = stacked_rows(run_on_processes(self, batch, pool, device, chunk_size, options))
        else:  # no inputs with a list of devices: nothing to start workers for
            one_device = None if isinstance(device, (list, tuple)) else device
            embeddings = self._sparse_rows(batch, prompt_name, prompt, batch_size, max_batch_tokens, k, one_device,
                                           kwargs, show_progress_bar, save_to_cpu)  # fmt: skip
        if not convert_to_sparse_tensor:
            embeddings = embeddings.to_dense()
        result: Any = embeddings if convert_to_tensor else list(embeddings.unbind(0)) if len(batch) else []
        return result[0] if singular else result

    @torch.inference_mode()
    def _sparse_rows(
        self,
        inputs: list[Any],
        prompt_name: str | None,
        prompt: str | None,
        batch_size: int | None,
        max_batch_tokens: int | None,
        max_active_dims: int | None,
        device: str | torch.device | None,
        kwargs: dict[str, Any],
        show_progress_bar: bool,
        save_to_cpu: bool,
    ) -> torch.Tensor:
        """The (N, vocab) sparse COO weights of ``inputs`` in input order, through the engine."""
        run_on = self._ready_to_run(device)
        if max_batch_tokens is None:  # passes sized so their vocabulary logits stay bounded (engine/pass_size.py)
            width = self.token_batcher.get_embedding_dimension() if self.token_batcher is not None else None
            max_batch_tokens = sparse_max_batch_tokens(run_on, width, self.get_embedding_dimension())
        plan = EncodePlan(
            prompt=self._resolve_prompt(prompt, prompt_name, kwargs.get("task")),
            batch_size=batch_size,
            max_batch_tokens=max_batch_tokens,
            output_value="sparse_embedding",
            max_active_dims=max_active_dims,
            to_cpu=save_to_cpu or run_on.type == "cpu",
            device=run_on,
            preprocess_kwargs=kwargs,
            module_kwargs=self.split_forward_kwargs(kwargs),
            forward=fused_splade_forward(self),  # MLM + SpladePooling: pooled without the full logits
        )
        for name, module in self.named_children():  # a SparseAutoEncoder keeps its top k in its forward pass
            if "max_active_dims" in getattr(module, "forward_kwargs", ()):
                plan.module_kwargs.setdefault(name, {})["max_active_dims"] = max_active_dims
        if not inputs:
            return torch.empty(0, self.get_embedding_dimension() or 0).to_sparse()
        with progress(show_progress_bar, len(inputs)) as plan.progress:
            if self.embedding_cache is None:
                rows = run(self, inputs, plan).outputs
            else:  # the rows the cache holds are read, the others computed and stored
                rows = cached_run(self, self.embedding_cache, inputs, plan, {}, partial(run, self, plan=plan)).outputs
        assert isinstance(rows, torch.Tensor)  # one sparse row per input
        return rows.coalesce()

    # ----- using the vectors ------------------------------------------------------------------------------
    def decode(self, embeddings: torch.Tensor, top_k: int | None = None) -> list[Any]:
        """``[(token, weight), ...]`` by descending weight for one vector; a list of those for a batch.

        Raises:
            ValueError: ``top_k`` is not positive, or the tensor is not 1-D or 2-D.
        """
        return decode_rows(embeddings, self.tokenizer, top_k)

    @staticmethod
    def sparsity(embeddings: torch.Tensor) -> dict[str, float]:
        """``{"active_dims": mean non-zero weights per vector, "sparsity_ratio": mean share of zeros}``."""
        return sparsity_of(embeddings)


def _checked_active_dims(value: Any) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
        raise ValueError(f"max_active_dims must be a positive integer, got {value!r}.")
    return value
