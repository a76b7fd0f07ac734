"""BaseModel: what every model kind shares.

A stack of modules loaded from a folder (or a Hub id, resolved once), placed on a device, run on a backend, with
prompts, save and push.

A kind subclasses it and adds its inputs, head and public methods. It declares ``model_type`` and its own
settings through hooks: ``_default_stack`` (what a plain Hugging Face folder becomes), ``_apply_saved_config``
(take what the caller left unset from ``config_sentence_transformers.json``), ``_saved_settings`` (its keys
written there), ``calibration_inputs`` (what the int8 self-check encodes) and ``_card_text`` (its README.md).
"""

from __future__ import annotations

import itertools
import logging
import sys
import tempfile
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn

from embedstack.backends.int8_check import Int8Check
from embedstack.backends.int8_mode import check_loaded_int8
from embedstack.backends.registration import register_backends
from embedstack.backends.select import BackendChoice
from embedstack.base.devices import default_device
from embedstack.base.onnx import OnnxMethods
from embedstack.engine.processes import Pool, start_pool, stop_pool
from embedstack.engine.threads import limit_cpu_threads
from embedstack.modules.module_io import LoadOptions
from embedstack.modules.transformer.module import Transformer
from embedstack.persistence.folder import load_folder, save_folder
from embedstack.persistence.hub import (
    DEFAULT_ORGANIZATION,
    HubOptions,
    HubUpload,
    hub_repo_id,
    push_folder,
    repo_has_file,
    resolve_code_repo,
    resolve_model_path,
    snapshot_revision,
)
from embedstack.persistence.layout import model_config_dict
from embedstack.persistence.model_card import ModelCardData, kind_card_text
from embedstack.prompts import resolve_prompt

logger = logging.getLogger(__name__)
register_backends()  # the native and onnx backends, for Transformer.load


class BaseModel(OnnxMethods):
    """A model: modules run in order over a features dict. Subclassed by each model kind.

    Args:
        model_name_or_path: A model folder, or a Hub id resolved through the local Hub cache.
        modules: Build the model from these modules instead (a list, or an OrderedDict for custom names).
        device: "cpu", "cuda", ... (default: the best available).
        prompts: Named prompts, e.g. ``{"query": "query: "}``; they extend and override saved ones.
        default_prompt_name: The prompt applied when the caller gives none.
        trust_remote_code: Allow module classes and Hugging Face code from the model folder to run.
        model_kwargs: Passed to the Hugging Face model's ``from_pretrained``.
        processor_kwargs: Passed to the processor's (tokenizer's) ``from_pretrained``.
        config_kwargs: Passed to the config's ``from_pretrained``.
        backend: "torch", "native", "onnx" or "auto" (see ``SentenceTransformer``).
    """

    model_type = "BaseModel"
    model_card_data_class = ModelCardData
    default_huggingface_organization: str | None = (
        DEFAULT_ORGANIZATION  # where a bare Hub name like "all-MiniLM-L6-v2" lives
    )
    keeps_config_of: tuple[str, ...] = ()  # kinds whose saved prompts and similarity survive a conversion to this one

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
    ) -> None:
        # None marks a prompt the saved config may fill; what stays None becomes "".
        prompt_table: dict[str, str | None] = {"query": None, "document": None, **(prompts or {})}
        self.default_prompt_name = default_prompt_name
        self.module_kwargs: dict[str, list[str]] = {}
        self._model_card_text: str | None = None
        self.model_card_data = model_card_data or self.model_card_data_class(local_files_only=local_files_only)
        token = _deprecated_token(token, use_auth_token)
        if tokenizer_kwargs is not None:
            warnings.warn("tokenizer_kwargs is deprecated; use processor_kwargs.", FutureWarning, stacklevel=3)
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
            organization = self.default_huggingface_organization
            folder = resolve_model_path(model_name_or_path, hub, backend=backend, organization=organization)
            logger.info("Loading %s from %s", model_name_or_path, folder)
            if not Path(model_name_or_path).expanduser().is_dir() and not local_files_only:  # a Hub id
                self.model_card_data.set_base_model(
                    hub_repo_id(model_name_or_path, organization), snapshot_revision(folder)
                )
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
        super().__init__(_ordered_modules(modules, type(self).__name__))
        self._cast_to_input_dtype()
        self.to(target_device)
        self.prompts = {name: prompt if prompt is not None else "" for name, prompt in prompt_table.items()}
        if self.default_prompt_name is not None and self.default_prompt_name not in self.prompts:
            raise ValueError(
                f"Default prompt name {self.default_prompt_name!r} not found in the configured prompts dictionary "
                f"with keys {list(self.prompts)}. Pass one of those names, or add the prompt to prompts=."
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
        loaded = load_folder(
            folder,
            options,
            model_type=self.model_type,
            default_stack=self._default_stack,
            keeps_config_of=self.keeps_config_of,
        )
        self.module_kwargs = loaded.module_kwargs
        self._model_card_text = loaded.card_text
        self._apply_saved_config(loaded.config, prompt_table)
        return loaded.modules

    @staticmethod
    def _default_stack(folder: Path, options: LoadOptions) -> OrderedDict[str, nn.Module]:
        """The modules of a folder saved without modules.json (a plain Hugging Face folder); each kind has its own."""
        raise NotImplementedError("A model kind defines the modules a plain Hugging Face folder becomes.")

    def _apply_saved_config(self, config: dict[str, Any], prompt_table: dict[str, str | None]) -> None:
        """Take the saved prompts and default prompt the caller left unset; a kind extends it with its settings."""
        for name, prompt in (config.get("prompts") or {}).items():
            if prompt_table.get(name) is None:
                prompt_table[name] = prompt
        if self.default_prompt_name is None:
            self.default_prompt_name = config.get("default_prompt_name")

    def _cast_to_input_dtype(self) -> None:
        first = next(iter(self.children()))
        dtype = next((p.dtype for p in first.parameters()), None)
        if dtype is not None:
            for module in list(self.children())[1:]:
                module.to(dtype)

    def _resolve_prompt(self, prompt: str | None, prompt_name: str | None, task: str | None = None) -> str | None:
        """The prompt text a call uses (see :mod:`embedstack.prompts`)."""
        return resolve_prompt(self.prompts, self.default_prompt_name, prompt=prompt, prompt_name=prompt_name, task=task)

    # ----- properties -------------------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        """The device of the model's parameters (CPU for a model without any)."""
        # The first tensor only: listing them all took ~1 ms per call, several times per encode.
        tensor = next(itertools.chain(self.parameters(), self.buffers()), None)
        return torch.device("cpu") if tensor is None else tensor.device

    def _ready_to_run(self, device: str | torch.device | None) -> torch.device:
        """Before an inference call: move to ``device`` if asked, cap CPU threads, eval mode; the device it runs on.

        ``eval()`` only when some module is in training mode: setting it on every module took ~1 ms per call.
        """
        if device is not None and torch.device(device) != self.device:
            self.to(device)
        current = self.device
        if current.type == "cpu":
            limit_cpu_threads()
        if any(module.training for module in self.modules()):
            self.eval()
        return current

    @property
    def dtype(self) -> torch.dtype | None:
        """The dtype of the model's parameters, or None without any."""
        return next((p.dtype for p in self.parameters()), None)

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

    def start_multi_process_pool(self, target_devices: list[str] | None = None) -> Pool:
        """Start worker processes that each hold a copy of the model.

        One worker per device (default: every CUDA device, else four CPU workers). Pass the pool to the kind's
        ``encode`` or ``predict`` (``pool=pool``); stop it with :meth:`stop_multi_process_pool`.
        """
        return start_pool(self, target_devices)

    @staticmethod
    def stop_multi_process_pool(pool: Pool) -> None:
        """Stop the workers of ``pool``."""
        stop_pool(pool)

    def get_max_seq_length(self) -> int | None:
        """Deprecated: use the ``max_seq_length`` property."""
        warnings.warn("Use the max_seq_length property instead.", FutureWarning, stacklevel=2)
        return self.max_seq_length

    def evaluate(self, evaluator: Callable[..., Any], output_path: str | None = None) -> Any:
        """Run ``evaluator(model, output_path)`` (creating ``output_path``) and return its results."""
        if output_path is not None:
            Path(output_path).mkdir(parents=True, exist_ok=True)
        return evaluator(self, output_path)

    # ----- persistence ------------------------------------------------------------------------------------
    def model_config_dict(self) -> dict[str, Any]:
        """The contents of ``config_sentence_transformers.json``."""
        settings = self._saved_settings()
        return model_config_dict(self.prompts, self.default_prompt_name, model_type=self.model_type, settings=settings)

    def _saved_settings(self) -> dict[str, Any]:
        """The kind's own keys in ``config_sentence_transformers.json`` (None values are left out)."""
        return {}

    def save(
        self,
        path: str | Path | None,
        model_name: str | None = None,
        create_model_card: bool = True,
        train_datasets: list[str] | None = None,
        safe_serialization: bool = True,
        *,
        legacy_layout: bool = False,
        keep_other_files: bool = False,
    ) -> None:
        """Save the model folder atomically, in the layout sentence-transformers 6.2 reads.

        Args:
            path: The folder to write (replaced whole if it holds a model); None saves nothing.
            model_name: The model id shown in the model card.
            create_model_card: Write README.md.
            train_datasets: Unused; accepted for compatibility.
            safe_serialization: Write safetensors (True) or pickled ``pytorch_model.bin`` module weights.
            legacy_layout: Write old type names and config keys for readers older than sentence-transformers 5.
            keep_other_files: Keep the other files of the folder (a trainer's output folder with its checkpoints);
                each file of the model still replaces its namesake atomically.
        """
        if path is None:
            return
        if getattr(self, "_quantized", None):
            raise ValueError(
                f"This model was quantized to {self._quantized} in memory, which the sentence-transformers format "
                "cannot store. Save the float model (before calling quantize) instead."
            )
        card = self._card_text(model_name) if create_model_card else None
        save_folder(
            self,
            path,
            safe_serialization=safe_serialization,
            legacy_layout=legacy_layout,
            card_text=card,
            keep_other_files=keep_other_files,
        )

    save_pretrained = save

    def _card_text(self, model_name: str | None) -> str:
        """The README.md a save writes: the loaded card, or a new one (a kind with a card template overrides it)."""
        return kind_card_text(self, model_name=model_name, loaded_card=self._model_card_text)

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

    def save_to_hub(
        self,
        repo_id: str,
        organization: str | None = None,
        token: str | None = None,
        private: bool | None = None,
        safe_serialization: bool = True,
        commit_message: str | None = None,
        local_model_path: str | None = None,
        exist_ok: bool = False,
        replace_model_card: bool = False,
        train_datasets: list[str] | None = None,
    ) -> str:
        """Deprecated: use :meth:`push_to_hub` (``organization`` goes into ``repo_id``: "organization/name")."""
        warnings.warn("save_to_hub is deprecated; use push_to_hub.", FutureWarning, stacklevel=2)
        if organization and "/" not in repo_id:
            repo_id = f"{organization}/{repo_id}"
        elif organization and repo_id.split("/")[0] != organization:
            raise ValueError(
                f"save_to_hub got organization={organization!r} and repo_id={repo_id!r}, which names another owner. "
                "Pass the full id as repo_id alone."
            )
        return self.push_to_hub(
            repo_id, token=token, private=private, safe_serialization=safe_serialization,
            commit_message=commit_message, local_model_path=local_model_path, exist_ok=exist_ok,
            replace_model_card=replace_model_card, train_datasets=train_datasets,
        )  # fmt: skip

    def gradient_checkpointing_enable(self, gradient_checkpointing_kwargs: dict[str, Any] | None = None) -> None:
        """Turn on gradient checkpointing in every Hugging Face backbone of the model (for training)."""
        pretrained = _pretrained_model_class()
        for module in self.modules():
            if pretrained is not None and isinstance(module, pretrained) and module.supports_gradient_checkpointing:
                enable = cast("Callable[..., None]", module.gradient_checkpointing_enable)
                enable(gradient_checkpointing_kwargs=gradient_checkpointing_kwargs)

    @classmethod
    def load(cls, path: str, **kwargs: Any) -> Any:
        """Deprecated: use ``SentenceTransformer(path)`` (or the kind's class)."""
        warnings.warn(f"{cls.__name__}.load is deprecated; use {cls.__name__}(path).", FutureWarning, stacklevel=2)
        return cls(path, **kwargs)


def _deprecated_token(token: bool | str | None, use_auth_token: bool | str | None) -> bool | str | None:
    if use_auth_token is None:
        return token
    warnings.warn("use_auth_token is deprecated; use token.", FutureWarning, stacklevel=4)
    if token is not None:
        raise ValueError("Both token and use_auth_token were given; pass only token.")
    return use_auth_token


def _pretrained_model_class() -> type | None:
    """Transformers' ``PreTrainedModel`` when transformers is loaded, else None.

    Without transformers loaded no module can be one, and a model on the native backend never imports it.
    """
    transformers = sys.modules.get("transformers")
    return getattr(transformers, "PreTrainedModel", None) if transformers is not None else None


def _ordered_modules(
    modules: Iterable[nn.Module] | OrderedDict[str, nn.Module] | None, kind: str
) -> OrderedDict[str, nn.Module]:
    """The model's modules by name: an OrderedDict as given, any other iterable named "0", "1", ..."""
    if modules is None:
        raise ValueError(f"{kind} needs a model_name_or_path or a non-empty list of modules.")
    if not isinstance(modules, OrderedDict):
        modules = OrderedDict((str(index), module) for index, module in enumerate(modules))
    if not modules:
        raise ValueError(f"{kind} needs at least one module; modules=[] was given.")
    return modules
