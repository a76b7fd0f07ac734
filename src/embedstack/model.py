"""SentenceTransformer: a model that encodes inputs into embeddings; BaseModel plus the encode family."""

from __future__ import annotations

import warnings
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from torch import nn

from embedstack.base import BaseModel, default_device
from embedstack.cache import EmbeddingStore, open_cache
from embedstack.encoding import EncodeMixin
from embedstack.extras import TRAIN_PACKAGES, require_extra
from embedstack.modules.default_stack import default_modules
from embedstack.modules.pooling import Pooling
from embedstack.persistence.model_card import ModelCardData, model_card_text
from embedstack.similarity import SimilarityFunction, check_similarity_fn_name


class SentenceTransformer(EncodeMixin, BaseModel):
    """An embedding model: modules run in order over a features dict.

    Args:
        model_name_or_path: A model folder, or a Hub id resolved through the local Hub cache.
        modules: Build the model from these modules instead (a list, or an OrderedDict for custom names).
        device: "cpu", "cuda", ... (default: the best available).
        prompts: Named prompts, e.g. ``{"query": "query: "}``; they extend and override saved ones.
        default_prompt_name: The prompt applied when encode gets none.
        trust_remote_code: Allow module classes and Hugging Face code from the model folder to run.
        model_kwargs: Passed to the Hugging Face model's ``from_pretrained``.
        processor_kwargs: Passed to the processor's (tokenizer's) ``from_pretrained``.
        config_kwargs: Passed to the config's ``from_pretrained``.
        similarity_fn_name: "cosine", "dot", "euclidean" or "manhattan".
        truncate_dim: Keep only the first dimensions of each embedding (Matryoshka models).
        backend: "torch" (Hugging Face transformers), "native" (plain BERT encoders without transformers: fast
            start, same vectors, cannot be saved), "onnx" (onnxruntime: the folder's ONNX export, or the file
            ``model_kwargs={"file_name": ...}`` names), or "auto" (of those that run the folder exactly, the one
            measured fastest on this machine; the decision is remembered: ``backend_choice`` says what and why).
        cache: A file path (or an :class:`~embedstack.cache.EmbeddingStore`) for a persistent embedding cache:
            encode reads the vectors it already holds for the same model, settings and texts, and stores the rest.

    Example:
        >>> from embedstack.defaults import default_model_path
        >>> model = SentenceTransformer(str(default_model_path()))  # all-MiniLM-L6-v2, shipped as a package
        >>> embeddings = model.encode(["A cat sits on the mat.", "A cat is lying on a rug.", "Stocks fell today."])
        >>> embeddings.shape
        (3, 384)
        >>> scores = model.similarity(embeddings, embeddings)
        >>> bool(scores[0, 1] > scores[0, 2])
        True
    """

    model_type = "SentenceTransformer"
    SUPPORTED_SIMILARITY_FN_NAMES = ("cosine", "dot", "euclidean", "manhattan")

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
        use_auth_token: bool | str | None = None,
        model_kwargs: dict[str, Any] | None = None,
        processor_kwargs: dict[str, Any] | None = None,
        tokenizer_kwargs: dict[str, Any] | None = None,
        config_kwargs: dict[str, Any] | None = None,
        model_card_data: ModelCardData | None = None,
        backend: str = "torch",
        similarity_fn_name: str | SimilarityFunction | None = None,
        truncate_dim: int | None = None,
        cache: str | Path | EmbeddingStore | None = None,
    ) -> None:
        self._similarity_fn_name = check_similarity_fn_name(similarity_fn_name) if similarity_fn_name else None
        self.truncate_dim = truncate_dim
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
            use_auth_token=use_auth_token,
            model_kwargs=model_kwargs,
            processor_kwargs=processor_kwargs,
            tokenizer_kwargs=tokenizer_kwargs,
            config_kwargs=config_kwargs,
            model_card_data=model_card_data,
            backend=backend,
        )

    _default_stack = staticmethod(default_modules)  # a plain Hugging Face folder: Transformer + mean Pooling

    def _apply_saved_config(self, config: dict[str, Any], prompt_table: dict[str, str | None]) -> None:
        super()._apply_saved_config(config, prompt_table)
        if self._similarity_fn_name is None:
            self._similarity_fn_name = config.get("similarity_fn_name")  # checked when the file was read
        if self.truncate_dim is None:
            self.truncate_dim = config.get("truncate_dim")

    def _saved_settings(self) -> dict[str, Any]:
        return {"similarity_fn_name": self.similarity_fn_name, "truncate_dim": self.truncate_dim}

    def _card_text(self, model_name: str | None) -> str:
        return model_card_text(self, model_name=model_name, loaded_card=self._model_card_text)

    @property
    def similarity_fn_name(self) -> str:
        """The similarity function's name ("cosine" unless the model or the caller chose another)."""
        if self._similarity_fn_name is None:
            self._similarity_fn_name = "cosine"
        return self._similarity_fn_name

    @similarity_fn_name.setter
    def similarity_fn_name(self, value: str | SimilarityFunction) -> None:
        self._similarity_fn_name = check_similarity_fn_name(value)

    def get_embedding_dimension(self) -> int | None:
        """The output width: the last module that knows it, capped at ``truncate_dim``."""
        module: Any  # any nn.Module; its class may define get_embedding_dimension
        for module in reversed(list(self.children())):
            method = getattr(type(module), "get_embedding_dimension", None)
            if callable(method):
                try:
                    dimension = module.get_embedding_dimension()
                except ValueError:  # a backbone whose config names no width (the Transformer raises, as the reference)
                    dimension = None
                if dimension is not None:
                    return min(dimension, self.truncate_dim) if self.truncate_dim else dimension
        return None

    def get_sentence_embedding_dimension(self) -> int | None:
        """Deprecated: use :meth:`get_embedding_dimension`."""
        warnings.warn("Use get_embedding_dimension() instead.", FutureWarning, stacklevel=2)
        return self.get_embedding_dimension()

    def set_pooling_include_prompt(self, include_prompt: bool) -> None:
        """Set ``include_prompt`` on the first Pooling module."""
        for module in self.children():
            if isinstance(module, Pooling):
                module.include_prompt = include_prompt
                return

    def fit(self, train_objectives: Iterable[tuple[Any, nn.Module]], **kwargs: Any) -> None:
        """Train with the legacy API: ``train_objectives=[(DataLoader of InputExample, loss), ...]``.

        It runs :class:`~embedstack.SentenceTransformerTrainer` (the ``train`` extra), with sentence-transformers'
        ``fit`` keywords: ``evaluator``, ``epochs``, ``warmup_steps``, ``optimizer_params``, ``output_path``, ...
        """
        require_extra("train", TRAIN_PACKAGES, "fit()")
        from embedstack.training.fit import fit

        fit(self, train_objectives, **kwargs)

    def encode_multi_process(self, sentences: list[str], pool: Any, **kwargs: Any) -> Any:
        """Deprecated: use ``encode(sentences, pool=pool, ...)``."""
        warnings.warn("encode_multi_process is deprecated; use encode(..., pool=pool).", FutureWarning, stacklevel=2)
        return self.encode(sentences, pool=pool, **kwargs)

    @contextmanager
    def truncate_sentence_embeddings(self, truncate_dim: int | None) -> Iterator[None]:
        """Deprecated: use :meth:`truncate_embeddings`."""
        warnings.warn(
            "truncate_sentence_embeddings is deprecated; use truncate_embeddings.", FutureWarning, stacklevel=3
        )
        with self.truncate_embeddings(truncate_dim):
            yield

    @contextmanager
    def truncate_embeddings(self, truncate_dim: int | None) -> Iterator[None]:
        """Temporarily encode to ``truncate_dim`` dimensions."""
        original, self.truncate_dim = self.truncate_dim, truncate_dim
        try:
            yield
        finally:
            self.truncate_dim = original


__all__ = ["SentenceTransformer", "default_device"]
