"""SentenceTransformer: an ordered stack of modules, with encode / save / load entry points."""

from __future__ import annotations

import logging
import sys
import tempfile
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any, Literal, cast

import torch
from torch import nn

import embedstack.backends  # noqa: F401  (registers the native and onnx backends with Transformer.load)
from embedstack.backends.calibration_texts import CALIBRATION_TEXTS
from embedstack.backends.int8_check import Int8Check
from embedstack.backends.int8_mode import check_loaded_int8, quantized_module
from embedstack.backends.onnx_files import ExportOptions, write_onnx_files
from embedstack.backends.onnx_smooth import check_calibration_texts
from embedstack.backends.select import BackendChoice
from embedstack.cache import EmbeddingStore, open_cache
from embedstack.encoding import EncodeMixin
from embedstack.engine import EncodePlan, run
from embedstack.modules.module_io import LoadOptions
from embedstack.modules.pooling import Pooling
from embedstack.modules.transformer.module import Transformer
from embedstack.persistence.atomic import atomic_folder
from embedstack.persistence.folder import load_folder, save_folder
from embedstack.persistence.hub import (
    HubOptions,
    HubUpload,
    push_folder,
    repo_has_file,
    resolve_code_repo,
    resolve_model_path,
)
from embedstack.persistence.layout import model_config_dict
from embedstack.persistence.model_card import ModelCardData, model_card_text
from embedstack.similarity import SimilarityFunction, check_similarity_fn_name
from embedstack.stack import ModuleStack

logger = logging.getLogger(__name__)


def default_device() -> str:
    """The best available device: CUDA, then Apple MPS, then CPU."""
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


class SentenceTransformer(EncodeMixin):
    """An embedding model: modules run in order over a features dict.

    Args:
        model_name_or_path: A model folder, or a Hub id resolved through the local Hub cache.
        modules: Build the model from these modules instead (a list, or an OrderedDict for custom names).
        device: "cpu", "cuda", ... (default: the best available).
        prompts: Named prompts, e.g. ``{"query": "query: "}``; they extend and override saved ones.
        default_prompt_name: The prompt applied when encode gets none.
        trust_remote_code: Allow module classes and Hugging Face code from the model folder to run.
        model_kwargs / processor_kwargs / config_kwargs: Passed to the Hugging Face ``from_pretrained`` calls.
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
        # None marks a prompt the saved config may fill; what stays None becomes "".
        prompt_table: dict[str, str | None] = {"query": None, "document": None, **(prompts or {})}
        self.default_prompt_name = default_prompt_name
        self._similarity_fn_name = check_similarity_fn_name(similarity_fn_name) if similarity_fn_name else None
        self.truncate_dim = truncate_dim
        self.embedding_cache = open_cache(cache)
        self.module_kwargs: dict[str, list[str]] = {}
        self._model_card_text: str | None = None
        self.model_card_data = model_card_data or ModelCardData()
        if use_auth_token is not None:
            warnings.warn("use_auth_token is deprecated; use token.", FutureWarning, stacklevel=2)
            if token is not None:
                raise ValueError("Both token and use_auth_token were given; pass only token.")
            token = use_auth_token
        if tokenizer_kwargs is not None:
            warnings.warn("tokenizer_kwargs is deprecated; use processor_kwargs.", FutureWarning, stacklevel=2)
            processor_kwargs = {**tokenizer_kwargs, **(processor_kwargs or {})}

        target_device = device or default_device()
        if model_name_or_path is not None:
            if modules is not None:
                logger.warning(
                    "Both model_name_or_path and modules were given. The modules are loaded from model_name_or_path, "
                    "so the modules argument is ignored."
                )
            # The Hub is resolved here, once, with the caller's options; modules read local folders only.
            model_kwargs = dict(model_kwargs) if model_kwargs else None  # the caller's dict stays as it was
            code_revision = model_kwargs.pop("code_revision", None) if model_kwargs else None
            hub = HubOptions(token, revision, cache_folder, local_files_only, code_revision)
            folder = resolve_model_path(model_name_or_path, hub, backend=backend)
            logger.info("Loading %s from %s", model_name_or_path, folder)
            options = LoadOptions(
                trust_remote_code=trust_remote_code,
                model_kwargs=model_kwargs,
                processor_kwargs=processor_kwargs,
                config_kwargs=config_kwargs,
                backend=backend,
                resolve_repo=partial(resolve_code_repo, options=hub),
                device=str(target_device),
            )
            modules = self._load(folder, options, prompt_table)
        super().__init__(_ordered_modules(modules))
        self._cast_to_input_dtype()
        self.to(target_device)
        self.prompts = {name: prompt if prompt is not None else "" for name, prompt in prompt_table.items()}
        if self.default_prompt_name is not None and self.default_prompt_name not in self.prompts:
            raise ValueError(
                f"default_prompt_name {self.default_prompt_name!r} is not one of the prompts {list(self.prompts)}."
            )
        for module in self.children():
            hook = getattr(module, "on_model_ready", None)
            if callable(hook):
                hook(self)
        if model_name_or_path is not None:  # an int8 file is checked against fp32 before it serves a vector
            check_loaded_int8(self, self._calibration_encoder(None), backend=backend, hf_kwargs=options.hf_kwargs())

    def _load(
        self, folder: Path, options: LoadOptions, prompt_table: dict[str, str | None]
    ) -> OrderedDict[str, nn.Module]:
        """Build the modules saved in ``folder`` and take the model settings the caller left unset from it."""
        loaded = load_folder(folder, options)
        self.module_kwargs = loaded.module_kwargs
        self._model_card_text = loaded.card_text
        self._apply_saved_config(loaded.config, prompt_table)
        return loaded.modules

    def _apply_saved_config(self, config: dict[str, Any], prompt_table: dict[str, str | None]) -> None:
        for name, prompt in (config.get("prompts") or {}).items():
            if prompt_table.get(name) is None:
                prompt_table[name] = prompt
        if self.default_prompt_name is None:
            self.default_prompt_name = config.get("default_prompt_name")
        if self._similarity_fn_name is None:
            self._similarity_fn_name = config.get("similarity_fn_name")  # checked when the file was read
        if self.truncate_dim is None:
            self.truncate_dim = config.get("truncate_dim")

    def _cast_to_input_dtype(self) -> None:
        first = next(iter(self.children()))
        dtype = next((p.dtype for p in first.parameters()), None)
        if dtype is not None:
            for module in list(self.children())[1:]:
                module.to(dtype)

    # ----- properties -------------------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        """The device of the model's parameters (CPU for a model without any)."""
        for tensor in (*self.parameters(), *self.buffers()):
            return tensor.device
        return torch.device("cpu")

    @property
    def dtype(self) -> torch.dtype | None:
        """The dtype of the model's parameters, or None without any."""
        return next((p.dtype for p in self.parameters()), None)

    @property
    def similarity_fn_name(self) -> str:
        """The similarity function's name ("cosine" unless the model or the caller chose another)."""
        if self._similarity_fn_name is None:
            self._similarity_fn_name = "cosine"
        return self._similarity_fn_name

    @similarity_fn_name.setter
    def similarity_fn_name(self, value: str | SimilarityFunction) -> None:
        self._similarity_fn_name = check_similarity_fn_name(value)

    @property
    def transformers_model(self) -> Any:
        """The first Hugging Face ``PreTrainedModel`` in the model, or None."""
        pretrained = _pretrained_model_class()
        for module in self.modules():
            if isinstance(module, Transformer):
                return module.model
            if pretrained is not None and isinstance(module, pretrained):
                return module
        return None

    @property
    def config(self) -> Any:
        """The Hugging Face config of the first backbone (None without one); integrations read it."""
        model = self.transformers_model
        return model.config if model is not None else None

    @config.setter
    def config(self, value: Any) -> None:
        model = self.transformers_model
        if model is not None:
            model.config = value

    def get_backend(self) -> str:
        """The backend the input module runs on: "torch", "native", ..."""
        return getattr(self.input_module, "backend", "torch")

    @property
    def backend_choice(self) -> BackendChoice | None:
        """What ``backend="auto"`` measured and chose for this model, or None when another backend was asked for."""
        return getattr(self.input_module, "backend_choice", None)

    @property
    def int8_check(self) -> Int8Check | None:
        """The int8 self-check of this model's backbone (``quantize``, or an int8 file loaded), or None."""
        return getattr(self.input_module, "int8_check", None)

    def get_embedding_dimension(self) -> int | None:
        """The output width: the last module that knows it, capped at ``truncate_dim``."""
        module: Any  # any nn.Module; its class may define get_embedding_dimension
        for module in reversed(list(self.children())):
            method = getattr(type(module), "get_embedding_dimension", None)
            if callable(method):
                dimension = module.get_embedding_dimension()
                if dimension is not None:
                    return min(dimension, self.truncate_dim) if self.truncate_dim else dimension
        return None

    def get_sentence_embedding_dimension(self) -> int | None:
        """Deprecated: use :meth:`get_embedding_dimension`."""
        warnings.warn("Use get_embedding_dimension() instead.", FutureWarning, stacklevel=2)
        return self.get_embedding_dimension()

    def get_max_seq_length(self) -> int | None:
        """Deprecated: use the ``max_seq_length`` property."""
        warnings.warn("Use the max_seq_length property instead.", FutureWarning, stacklevel=2)
        return self.max_seq_length

    def set_pooling_include_prompt(self, include_prompt: bool) -> None:
        """Set ``include_prompt`` on the first Pooling module."""
        for module in self.children():
            if isinstance(module, Pooling):
                module.include_prompt = include_prompt
                return

    @contextmanager
    def truncate_embeddings(self, truncate_dim: int | None) -> Iterator[None]:
        """Temporarily encode to ``truncate_dim`` dimensions."""
        original, self.truncate_dim = self.truncate_dim, truncate_dim
        try:
            yield
        finally:
            self.truncate_dim = original

    # ----- persistence ------------------------------------------------------------------------------------
    def model_config_dict(self) -> dict[str, Any]:
        """The contents of ``config_sentence_transformers.json``."""
        return model_config_dict(self.prompts, self.default_prompt_name, self.similarity_fn_name, self.truncate_dim)

    def quantize(
        self,
        mode: Literal["int8"] = "int8",
        *,
        calibration_texts: Sequence[str] | None = None,
        min_cosine: float | None = None,
    ) -> SentenceTransformer:
        """Switch the backbone to int8 on CPU (in place): faster encoding, nearly the same vectors.

        The Transformer's backbone is exported to ONNX and quantized with the recipe measured fastest on this CPU
        that keeps the vectors (SmoothQuant, then int8 weights per output channel, with the feed-forward
        down-projections in fp32): 8-bit weights where the CPU adds int8 products in 32 bits (VNNI, AMX, ARM),
        7-bit weights rounded with GPTQ where it adds pairs in 16 bits (x86 without VNNI), then run by onnxruntime.
        Before it serves a vector, the int8 model is compared with fp32 on the calibration texts on this machine
        (``int8_check``): below ``min_cosine`` it tries the 8-bit recipe (exact everywhere), and if that fails too
        the model stays fp32 and :class:`~embedstack.errors.Int8QualityError` says why. Needs
        ``embedstack[onnx]``. A quantized model cannot be saved; ``export_onnx(path, quantize="int8")`` writes an
        int8 file instead.

        Args:
            mode: "int8".
            calibration_texts: Texts like the ones you will encode, to measure each activation channel's range
                and to check the result (a few dozen suffice); by default a built-in set of short and long, mostly
                English texts.
            min_cosine: The lowest cosine to the fp32 vectors the self-check accepts (default 0.99).

        Example:
            >>> from embedstack.defaults import default_model_path
            >>> model = SentenceTransformer(str(default_model_path()), device="cpu").quantize("int8")
            >>> model.encode(["A cat sits on the mat."]).shape
            (1, 384)
            >>> model.int8_check.passed
            True
        """
        if mode != "int8":
            raise ValueError(f"quantize mode {mode!r} is not supported; use 'int8'.")
        if self.device.type != "cpu":
            raise ValueError(f"int8 mode runs on CPU; this model is on {self.device}. Call model.to('cpu') first.")
        module = self.input_module
        if not isinstance(module, Transformer) or list(module.modality_config) != ["text"]:
            raise ValueError("int8 mode needs a text Transformer input module (loaded with backend='torch').")
        texts = None if calibration_texts is None else check_calibration_texts(calibration_texts)
        encode_with = self._calibration_encoder(texts)
        self[0] = quantized_module(module, encode_with, calibration_texts=texts, min_cosine=min_cosine)
        self._quantized = mode
        return self

    def _calibration_encoder(self, texts: Sequence[str] | None) -> Callable[[nn.Module], Any]:
        """A function that encodes ``texts`` with the given input module in place of this model's.

        Through the engine and the rest of the stack: what the int8 self-check runs. ``texts`` defaults to the
        built-in calibration texts.
        """
        inputs = list(CALIBRATION_TEXTS if texts is None else texts)

        def encode_with(module: nn.Module) -> Any:
            stack = ModuleStack(OrderedDict([("0", module), *list(self.named_children())[1:]]))
            stack.module_kwargs = self.module_kwargs
            plan = EncodePlan(device=self.device, prompt=self._resolve_prompt(None, None))
            with torch.inference_mode():
                outputs = run(stack, inputs, plan).outputs
            assert isinstance(outputs, torch.Tensor)  # sentence embeddings of text inputs
            return outputs.float().numpy()

        return encode_with

    def save(
        self,
        path: str | Path | None,
        model_name: str | None = None,
        create_model_card: bool = True,
        train_datasets: list[str] | None = None,
        safe_serialization: bool = True,
        *,
        legacy_layout: bool = False,
    ) -> None:
        """Save the model folder atomically, in the layout sentence-transformers 6.2 reads.

        Args:
            path: The folder to write (replaced whole if it holds a model); None saves nothing.
            model_name: The model id shown in the model card.
            create_model_card: Write README.md.
            train_datasets: Unused; accepted for compatibility.
            safe_serialization: Write safetensors (True) or pickled ``pytorch_model.bin`` module weights.
            legacy_layout: Write old type names and config keys for readers older than sentence-transformers 5.
        """
        if path is None:
            return
        if getattr(self, "_quantized", None):
            raise ValueError(
                f"This model was quantized to {self._quantized} in memory, which the sentence-transformers format "
                "cannot store. Save the float model (before calling quantize) instead."
            )
        card = (
            model_card_text(self, model_name=model_name, loaded_card=self._model_card_text)
            if create_model_card
            else None
        )
        save_folder(self, path, safe_serialization=safe_serialization, legacy_layout=legacy_layout, card_text=card)

    save_pretrained = save

    def push_to_hub(
        self,
        repo_id: str,
        token: str | None = None,
        private: bool | None = None,
        safe_serialization: bool = True,
        commit_message: str | None = None,
        local_model_path: str | None = None,
        exist_ok: bool = False,
        replace_model_card: bool = False,
        train_datasets: list[str] | None = None,
        revision: str | None = None,
        create_pr: bool = False,
    ) -> str:
        """Upload the model to a Hub repository, creating the repository when needed.

        The model is saved into a temporary folder (or ``local_model_path`` is uploaded as it is). The model card is
        written unless the repository already has one (``replace_model_card`` overwrites it).

        Returns:
            The commit URL, or the pull request's with ``create_pr``.
        """
        upload = HubUpload(repo_id, token, private, exist_ok, revision, create_pr, commit_message)
        if local_model_path:
            return push_folder(Path(local_model_path), upload, model_repr=repr(self))
        with tempfile.TemporaryDirectory() as staging:
            folder = Path(staging) / "model"
            card = replace_model_card or not repo_has_file(upload, "README.md")
            self.save(str(folder), model_name=repo_id, create_model_card=card, safe_serialization=safe_serialization)
            return push_folder(folder, upload, model_repr=repr(self))

    def export_onnx(
        self,
        path: str | Path,
        *,
        quantize: str | None = None,
        optimize: str | None = None,
        calibration_texts: Sequence[str] | None = None,
        min_cosine: float | None = None,
    ) -> Path:
        """Save the model with an ONNX export of its backbone, loadable with ``backend="onnx"``.

        Writes ``onnx/model.onnx`` beside the saved modules, and with ``quantize`` an int8 export under
        sentence-transformers' name for the recipe: "int8" (8-bit weights, exact on every CPU; written as
        ``model_qint8_avx512_vnni.onnx``), "qint8_avx512_vnni" (the same), "qint8_avx2" (7-bit weights: the fast
        int8 kernels on every CPU, a little coarser) or "quint8_avx2"; with ``optimize`` ("O1" to "O4", optimum's
        levels) ``model_O1.onnx`` ... ``model_O4.onnx``. Load one with ``model_kwargs={"file_name": "onnx/<file>"}``.
        The int8 file is checked against fp32 on this machine first (see ``quantize``); if it falls short,
        :class:`~embedstack.errors.Int8QualityError` is raised and nothing is written. The folder appears whole
        or not at all. Needs ``embedstack[onnx]``.

        Args:
            path: The folder to write.
            quantize: The int8 recipe, or None.
            optimize: The graph optimization level, or None.
            calibration_texts: For ``quantize``: texts like the ones you will encode (see ``quantize``).
            min_cosine: For ``quantize``: the self-check's threshold (default 0.99).
        """
        options = ExportOptions(quantize, optimize, calibration_texts, min_cosine).checked()
        with atomic_folder(path) as staging:
            self.save(str(staging))
            write_onnx_files(self, staging, options, self._calibration_encoder(options.calibration_texts))
        return Path(path)

    def gradient_checkpointing_enable(self, gradient_checkpointing_kwargs: dict[str, Any] | None = None) -> None:
        """Turn on gradient checkpointing in every Hugging Face backbone of the model (for training)."""
        pretrained = _pretrained_model_class()
        for module in self.modules():
            if pretrained is not None and isinstance(module, pretrained) and module.supports_gradient_checkpointing:
                enable = cast("Callable[..., None]", module.gradient_checkpointing_enable)
                enable(gradient_checkpointing_kwargs=gradient_checkpointing_kwargs)

    @staticmethod
    def load(path: str, **kwargs: Any) -> SentenceTransformer:
        """Deprecated: use ``SentenceTransformer(path)``."""
        warnings.warn(
            "SentenceTransformer.load is deprecated; use SentenceTransformer(path).", FutureWarning, stacklevel=2
        )
        return SentenceTransformer(path, **kwargs)


def _pretrained_model_class() -> type | None:
    """Transformers' ``PreTrainedModel`` when transformers is loaded, else None.

    Without transformers loaded no module can be one, and a model on the native backend never imports it.
    """
    transformers = sys.modules.get("transformers")
    return getattr(transformers, "PreTrainedModel", None) if transformers is not None else None


def _ordered_modules(modules: Iterable[nn.Module] | OrderedDict[str, nn.Module] | None) -> OrderedDict[str, nn.Module]:
    """The model's modules by name: an OrderedDict as given, any other iterable named "0", "1", ..."""
    if modules is None:
        raise ValueError("SentenceTransformer needs a model_name_or_path or a non-empty list of modules.")
    if not isinstance(modules, OrderedDict):
        modules = OrderedDict((str(index), module) for index, module in enumerate(modules))
    if not modules:
        raise ValueError("SentenceTransformer needs at least one module; modules=[] was given.")
    return modules


__all__ = ["SentenceTransformer", "default_device"]
