"""Transformer: a Hugging Face backbone and its tokenizer, producing token embeddings."""

from __future__ import annotations

import inspect
import logging
import os
from pathlib import Path
from typing import Any, Literal

import torch

import embedstack.modules.transformer.checks as checks
from embedstack.errors import BackendOptionError, UnsupportedModalityError
from embedstack.inputs import Modality, format_modality
from embedstack.modules.base import InputModule, check_feature_name, module_dir
from embedstack.modules.transformer.backend_registry import EXPORTED_FILE_OPTIONS, auto_module, backend_module
from embedstack.modules.transformer.config import (
    CONFIG_FILE_NAMES,
    FEATURES,
    TASK_AUTO_CLASSES,
    TASK_DEFAULTS,
    for_task,
    init_kwargs_from_file,
    merge_hf_kwargs,
    normalize_file_config,
    restore_modality_config,
)
from embedstack.modules.transformer.multimodal import (
    infer_modality_config,
    is_text_batch,
    preprocess_multimodal,
    processor_modalities,
)
from embedstack.modules.transformer.support import (
    check_tokenizer_vocabulary,
    drop_preprocess_flags,
    load_processor,
    prepare_tokenizer,
    read_method_output,
    tokenizer_location,
    validate_modality_config,
)
from embedstack.modules.transformer.text import TextTokenizing
from embedstack.registry import ST, register_module

logger = logging.getLogger(__name__)

TransformerTask = Literal["feature-extraction", "sequence-classification", "fill-mask"]
_FORWARD_SAFETY_NET_KEYS = frozenset({"input_ids", "attention_mask", "token_type_ids", "inputs_embeds", "return_dict"})
_DEFAULTS_DROPPED_ON_SAVE = {"query_length": None, "document_length": None, "query_expansion": None}


@register_module(f"{ST}.base.modules.transformer.Transformer", legacy=True)
class Transformer(TextTokenizing, InputModule):
    """A Hugging Face model (``AutoModel``) with its tokenizer, writing ``features["token_embeddings"]``.

    Args:
        model_name_or_path: A local folder or a Hub id.
        transformer_task: "feature-extraction" (an ``AutoModel`` backbone writing token embeddings, the default) or
            "sequence-classification" (an ``AutoModelForSequenceClassification`` writing its logits as ``scores``:
            a cross-encoder; a backbone saved without a classifier head gets one label) or "fill-mask" (an
            ``AutoModelForMaskedLM`` writing its vocabulary logits as ``token_embeddings``: a SPLADE backbone).
        model_kwargs: Passed to ``AutoModel.from_pretrained`` (e.g. ``{"dtype": torch.bfloat16}``).
        processor_kwargs: Passed to the tokenizer's ``from_pretrained``.
        config_kwargs: Passed to ``AutoConfig.from_pretrained``.
        processing_kwargs: Defaults for the tokenizer call, by section ("common", "text", ...).
        backend: Only "torch".
        modality_config: Which backbone method and output serve each modality.
        module_output_name: The feature this module writes (default "token_embeddings").
        max_seq_length: Truncate inputs to this many tokens (default: the tokenizer's limit, capped at the
            model's position embeddings).
        do_lower_case: Lowercase inputs before tokenizing (legacy option).

    Example:
        >>> transformer = Transformer(tiny_bert_path, max_seq_length=64)  # a folder (or Hub id) of a BERT
        >>> transformer.get_embedding_dimension(), transformer.max_seq_length
        (32, 64)
        >>> features = transformer.preprocess(["Hello world"])  # [CLS] hello world [SEP]
        >>> transformer(features)["token_embeddings"].shape
        torch.Size([1, 4, 32])
    """

    config_file_name = CONFIG_FILE_NAMES[0]  # "sentence_bert_config.json"
    legacy_config_file_names = CONFIG_FILE_NAMES[1:]
    config_keys = [
        "transformer_task",
        "modality_config",
        "module_output_name",
        "processing_kwargs",
        "unpad_inputs",
        "query_length",
        "document_length",
        "query_expansion",
    ]

    def __init__(
        self,
        model_name_or_path: str,
        *,
        transformer_task: TransformerTask = "feature-extraction",
        model_kwargs: dict[str, Any] | None = None,
        processor_kwargs: dict[str, Any] | None = None,
        config_kwargs: dict[str, Any] | None = None,
        processing_kwargs: dict[str, Any] | None = None,
        backend: str = "torch",
        modality_config: dict[str, dict[str, Any]] | None = None,
        module_output_name: str | None = None,
        unpad_inputs: bool | None = None,
        query_length: int | None = None,
        document_length: int | None = None,
        query_expansion: dict[str, Any] | None = None,
        max_seq_length: int | None = None,
        do_lower_case: bool = False,
        tokenizer_name_or_path: str | None = None,
        **legacy_kwargs: Any,
    ) -> None:
        super().__init__()
        checks.check_task_and_backend(transformer_task, backend)
        checks.check_custom_modality_config(modality_config, module_output_name)
        model_kwargs, processor_kwargs, config_kwargs = merge_hf_kwargs(
            model_kwargs, processor_kwargs, config_kwargs, legacy_kwargs
        )
        self.transformer_task = transformer_task
        self.backend = backend
        self.processing_kwargs = dict(processing_kwargs or {})
        checks.warn_unknown_processing_sections(self.processing_kwargs, per_call=False)
        self.unpad_inputs = unpad_inputs
        self.query_length = query_length
        self.document_length = document_length
        self.query_expansion = query_expansion
        self.do_lower_case = do_lower_case
        self._prompt_lengths: dict[tuple, int] = {}
        self._suffix_cache: dict[str, list[int]] = {}  # chat template closing tokens, see chat_suffix.py

        # A local folder, or a Hub id that transformers resolves itself (a user building a model from a backbone).
        path = str(model_name_or_path)
        import transformers

        config = transformers.AutoConfig.from_pretrained(path, **config_kwargs)
        checks.warn_unsupported_attention(config, transformers.__version__)
        if "use_cache" not in config_kwargs and hasattr(config, "use_cache"):
            config.use_cache = False
        if transformer_task == "sequence-classification" and "num_labels" not in config_kwargs:
            if not any(name.endswith("ForSequenceClassification") for name in config.architectures or []):
                config.num_labels = 1  # a bare backbone becomes a one-score cross-encoder, as in the reference
        auto_class = getattr(transformers, TASK_AUTO_CLASSES[transformer_task])
        self.model = auto_class.from_pretrained(path, config=config, **model_kwargs)
        signature = inspect.signature(self.model.forward).parameters
        self._forward_params = set(signature)
        self._forward_takes_kwargs = any(p.kind is p.VAR_KEYWORD for p in signature.values())
        # As sentence-transformers: the declared inputs (plus the usual ones), or None when forward takes **kwargs.
        self.model_forward_params: set[str] | None = (
            None if self._forward_takes_kwargs else self._forward_params | _FORWARD_SAFETY_NET_KEYS
        )
        # Inputs are never concatenated without padding here (that needs flash attention's variable-length
        # kernels); the engine removes padding by batching inputs of similar token counts instead.
        self.can_flatten_inputs = False

        if max_seq_length is not None and "model_max_length" not in processor_kwargs:
            processor_kwargs["model_max_length"] = max_seq_length
        if tokenizer_name_or_path is not None:
            checks.warn_tokenizer_name_or_path()
        tokenizer_path = str(tokenizer_name_or_path) if tokenizer_name_or_path else path
        self.processor = load_processor(tokenizer_path, processor_kwargs)
        check_tokenizer_vocabulary(self.tokenizer, self.config, tokenizer_path)
        self._configure_tokenizer(processor_kwargs, do_lower_case)

        if modality_config is None and transformer_task != FEATURES:
            task_config, default_output_name = TASK_DEFAULTS[transformer_task]
            modality_config = {key: dict(value) for key, value in task_config.items()}
            module_output_name = module_output_name or default_output_name
        if modality_config is None:
            inferred_config, inferred_output_name = infer_modality_config(self.model, self.processor)
            self.modality_config = validate_modality_config(inferred_config, self.model)
            module_output_name = module_output_name or inferred_output_name
        else:
            self.modality_config = validate_modality_config(modality_config, self.model)
        check_feature_name("Transformer", "module_output_name", module_output_name, optional=True)
        self.module_output_name = module_output_name or "token_embeddings"

    # ----- properties -------------------------------------------------------------------------------------
    @property
    def auto_model(self) -> torch.nn.Module:
        """The Hugging Face backbone (the name sentence-transformers uses)."""
        return self.model

    @property
    def config(self) -> Any:
        """The backbone's Hugging Face config (the one the model holds, so a replaced config is seen here too)."""
        return self.model.config

    @property
    def tokenizer(self) -> Any:
        """The tokenizer: the processor itself, or its ``tokenizer`` part; None for an image or audio processor."""
        if hasattr(self.processor, "convert_tokens_to_ids"):
            return self.processor
        return getattr(self.processor, "tokenizer", None)

    @tokenizer.setter
    def tokenizer(self, value: Any) -> None:
        if hasattr(self, "processor"):
            self.processor = value

    @property
    def modalities(self) -> list[str | tuple[str, ...]]:
        """The modalities of ``modality_config``."""
        return list(self.modality_config)

    @property
    def max_seq_length(self) -> int | None:
        """The tokenizer's ``model_max_length`` (without a tokenizer, the position limit)."""
        if self.tokenizer is not None:
            return self.tokenizer.model_max_length
        return getattr(self.config, "max_position_embeddings", None)

    @max_seq_length.setter
    def max_seq_length(self, value: int) -> None:
        if self.tokenizer is None:  # an image or audio backbone: nothing to truncate (as sentence-transformers)
            logger.warning("This Transformer has no tokenizer; max_seq_length=%s has no effect.", value)
            return
        self.tokenizer.model_max_length = value

    def infer_modalities_from_processor(self, processor: Any) -> list[Modality]:
        """The modalities ``processor`` handles (tokenizer -> text, image processor -> image, ...)."""
        return list(processor_modalities(processor))

    @property
    def unpad_inputs(self) -> bool | None:
        """Whether inputs should skip padding (None: decide automatically); they never do here, see checks.py."""
        return self._unpad_inputs

    @unpad_inputs.setter
    def unpad_inputs(self, value: bool | None) -> None:
        checks.warn_unpad_inputs(value)
        self._unpad_inputs = value

    def get_embedding_dimension(self) -> int:
        """The backbone's width (a CLIP-style projected sentence embedding's ``projection_dim``), from its config.

        Raises:
            ModelFormatError: (a ValueError) The config names no width.
        """
        return checks.embedding_dimension(self.config, self.module_output_name)

    # ----- preprocessing ----------------------------------------------------------------------------------
    def preprocess(
        self,
        inputs: list[Any],
        prompt: str | None = None,
        *,
        task: str | None = None,
        processing_kwargs: dict[str, Any] | None = None,
        modality: Modality | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Turn inputs into the backbone's features (``prompt`` prepended to texts, or a system message).

        Texts and text pairs go through the tokenizer, which also reports which inputs were truncated; images,
        audio, video, multimodal dicts and chat messages (and every input of a chat model) through the
        processor, see multimodal.py. ``processing_kwargs`` overrides the module's per call. ``modality`` is the
        batch's modality when the caller already decided it (encode does), so it is not worked out again.
        """
        if not inputs:
            return {}
        if "message" in self.modality_config or not is_text_batch(inputs):
            merged = self._merged_processing_kwargs(processing_kwargs)
            text_kwargs = self._tokenizer_kwargs(task, merged, kwargs)
            multimodal = preprocess_multimodal(self, inputs, prompt, merged, text_kwargs, modality=modality)
            if prompt and multimodal["modality"] == "text":
                multimodal["prompt_length"] = self._prompt_length(prompt, text_kwargs)
            return multimodal
        return self.preprocess_text(inputs, prompt, task=task, processing_kwargs=processing_kwargs, **kwargs)

    # ----- forward ----------------------------------------------------------------------------------------
    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Run the backbone method of the features' modality; write its output to ``module_output_name``."""
        drop_preprocess_flags(features)
        modality = features.get("modality", "text")
        settings = self.modality_config.get(modality) or self.modality_config.get("text")
        if settings is None:
            raise UnsupportedModalityError(
                f"The Transformer module has no modality_config entry for {modality!r} inputs; it takes "
                f"{', '.join(map(str, self.modality_config))}."
            )
        method = checks.backbone_method(self.model, settings["method"], modality)
        params = self._forward_params if settings["method"] == "forward" else set(inspect.signature(method).parameters)
        model_inputs = {key: value for key, value in features.items() if key in params and key != "modality"}
        output_path = settings["method_output_name"]
        output_path = [output_path] if isinstance(output_path, (str, int)) else list(output_path or [])
        takes = params.__contains__ if settings["method"] != "forward" or not self._forward_takes_kwargs else None
        wants_hidden = "hidden_states" in output_path or getattr(self.config, "output_hidden_states", False)
        if wants_hidden and (takes is None or takes("output_hidden_states")):
            model_inputs["output_hidden_states"] = True
        if takes is None or takes("return_dict"):
            model_inputs["return_dict"] = True
        output = method(**model_inputs)
        where = f"modality_config[{modality!r}] reads {settings['method_output_name']!r} from {settings['method']}()"
        features[self.module_output_name] = read_method_output(output, output_path, self.module_output_name, where)
        hidden_states = getattr(output, "hidden_states", None)
        if hidden_states is not None:
            features["all_layer_embeddings"] = hidden_states
        return features

    # ----- persistence ------------------------------------------------------------------------------------
    def get_config_dict(self) -> dict[str, Any]:
        """The config, without the keys a default value leaves out of the file."""
        config = super().get_config_dict()
        config["modality_config"] = {format_modality(key): value for key, value in self.modality_config.items()}
        if not self.processing_kwargs:
            del config["processing_kwargs"]
        if self.unpad_inputs is None:
            del config["unpad_inputs"]
        for key, default in _DEFAULTS_DROPPED_ON_SAVE.items():
            if config.get(key) == default:
                del config[key]
        return config

    def legacy_config(self) -> tuple[str | None, dict[str, Any]]:
        """What sentence-transformers < 5 read: the sequence length and lowercasing only."""
        return "sentence_bert_config.json", {
            "max_seq_length": self.max_seq_length,
            "do_lower_case": bool(self.do_lower_case),
        }

    def save(self, output_path: str, *args: Any, safe_serialization: bool = True, **kwargs: Any) -> None:
        """Write the backbone, its processor and ``sentence_bert_config.json``."""
        self.model.save_pretrained(output_path)
        self.processor.save_pretrained(output_path)
        super().save(output_path, safe_serialization=safe_serialization, **kwargs)

    @classmethod
    def adapt_config(cls, config: dict[str, Any]) -> dict[str, Any]:
        """The config file, legacy keys renamed, forbidden keys dropped, modality keys restored (config.py)."""
        return restore_modality_config(normalize_file_config(config))

    @classmethod
    def load(
        cls,
        model_name_or_path: str | os.PathLike[str],
        subfolder: str = "",
        *,
        trust_remote_code: bool = False,
        model_kwargs: dict[str, Any] | None = None,
        processor_kwargs: dict[str, Any] | None = None,
        config_kwargs: dict[str, Any] | None = None,
        backend: str = "torch",
        init_defaults: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> InputModule:
        """Build the Transformer from a local folder, reading ``sentence_bert_config.json`` (or a legacy name).

        ``backend`` "native" (or "auto", or another registered backend) returns that backend's input module
        when it runs the folder exactly; see backend_registry.py.
        """
        folder = module_dir(model_name_or_path, subfolder)
        caller_kwargs = {
            "model_kwargs": model_kwargs,
            "processor_kwargs": processor_kwargs,
            "config_kwargs": config_kwargs,
        }

        # The file read once, as the task asks (a plain classifier folder loaded as a CrossEncoder says its task
        # only through init_defaults).
        config = {**(init_defaults or {}), **for_task(cls.load_config(folder), init_defaults)}
        task = config.get("transformer_task", FEATURES)

        def build_torch() -> Transformer:
            torch_kwargs = caller_kwargs
            if backend == "auto":  # the exported-file options are for the other candidates
                kept = {k: v for k, v in (model_kwargs or {}).items() if k not in EXPORTED_FILE_OPTIONS}
                torch_kwargs = {**caller_kwargs, "model_kwargs": kept or None}
            return cls._load_torch(folder, backend, torch_kwargs, trust_remote_code, config)

        device = getattr(kwargs.get("load_options"), "device", None)
        if backend == "auto" and (device is None or str(device).startswith("cpu")):
            return auto_module(folder, caller_kwargs, build_torch, task=task)  # measured here (backends/select.py)
        if backend == "auto" and not set(model_kwargs or {}) & EXPORTED_FILE_OPTIONS:
            return build_torch()  # on a GPU: the other backends run on the CPU
        alternative = backend_module(folder, "onnx" if backend == "auto" else backend, caller_kwargs, task=task)
        return alternative if alternative is not None else build_torch()

    @classmethod
    def _load_torch(
        cls,
        folder: Path,
        backend: str,
        caller_kwargs: dict[str, Any],
        trust_remote_code: bool,
        config: dict[str, Any],
    ) -> Transformer:
        """The Transformer module itself (Hugging Face transformers on torch) for ``folder``.

        ``config`` holds its settings: the folder's file over the caller's defaults.
        """
        model_kwargs = caller_kwargs["model_kwargs"]
        exported_only = sorted(set(model_kwargs or {}) & EXPORTED_FILE_OPTIONS)
        if exported_only:
            wanted = (model_kwargs or {}).get("file_name") or "the ONNX export"
            raise BackendOptionError(
                f"model_kwargs {exported_only} choose an exported file or its runtime, which the {backend!r} backend "
                f"cannot use here: it loads the Hugging Face weights of {folder}. Pass backend='onnx' to run "
                f"{wanted} (it says what is missing, if anything), or drop {exported_only}."
            )
        accepted = set(inspect.signature(cls.__init__).parameters)
        init_kwargs = init_kwargs_from_file(
            config, accepted, folder / cls.config_file_name, trust_remote_code, caller_kwargs
        )
        if init_kwargs.get("tokenizer_name_or_path") is not None:
            init_kwargs["tokenizer_name_or_path"] = tokenizer_location(folder, init_kwargs["tokenizer_name_or_path"])
        return cls(str(folder), **init_kwargs)

    def _configure_tokenizer(self, processor_kwargs: dict[str, Any], do_lower_case: bool) -> None:
        tokenizer = self.tokenizer
        if tokenizer is not None:
            tokenizer.model_max_length = prepare_tokenizer(
                tokenizer, self.config, max_seq_length=processor_kwargs.get("model_max_length"),
                do_lower_case=do_lower_case,
            )  # fmt: skip

    def __repr__(self) -> str:
        return f"Transformer({dict(self.get_config_dict(), architecture=type(self.model).__name__)})"
