"""The onnx backend: a Transformer folder's backbone run by onnxruntime, everything else by embedstack.

``SentenceTransformer(path, backend="onnx", model_kwargs={"file_name": "onnx/model_qint8_avx512_vnni.onnx",
"provider": "CPUExecutionProvider"})`` loads the folder's ONNX file (``onnx/model.onnx`` by default; the
sentence-transformers / optimum layout) and tokenizes with the folder's tokenizer; Pooling, Dense, Normalize and
custom modules stay torch modules. A cross-encoder's classifier (``CrossEncoder(path, backend="onnx")``,
transformer_task "sequence-classification") runs the same way: its file's ``logits`` become ``features["scores"]``.
A folder without an ONNX file is exported on the fly (``"export": False`` in ``model_kwargs`` refuses instead).
Sessions follow the engine's thread policy: as many intra-op threads as the process may use, and no idle spinning
(spinning threads slowed the next model run in the same process 2x).
"""

from __future__ import annotations

import functools
import logging
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from embedstack.backends.cpu_features import int8_pairs_saturate
from embedstack.backends.int8_check import Int8Check
from embedstack.backends.onnx_export import (
    ONNX_FILE,
    ONNX_FOLDER,
    OUTPUT_RANKS,
    export_backbone,
    output_name,
    require_onnx,
)
from embedstack.backends.onnx_quantize import QUANTIZED_FILES, is_int8_file, quantize_int8
from embedstack.backends.stand_in import TransformerStandIn
from embedstack.engine.threads import available_cpus
from embedstack.errors import MissingExtraError, ModelFormatError
from embedstack.modules.base import InputModule
from embedstack.modules.transformer.backend_registry import EXPORTED_FILE_OPTIONS
from embedstack.modules.transformer.config import FEATURES, TASK_DEFAULTS
from embedstack.modules.transformer.module import Transformer
from embedstack.modules.transformer.support import drop_preprocess_flags
from embedstack.modules.transformer.text import TextTokenizing

logger = logging.getLogger(__name__)

_BACKBONE_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")
_BACKBONE_PATTERNS = ("*.model", "merges.txt", "vocab.json", "added_tokens.json", "model.safetensors")


def onnx_input_module(folder: Path, hf_kwargs: dict[str, Any], *, task: str = FEATURES) -> InputModule | None:
    """An :class:`OnnxTransformer` for the Transformer folder ``folder`` (exporting its backbone when needed).

    ``task`` is the folder's transformer_task as the loader resolved it (a plain classifier folder loaded as a
    CrossEncoder has no file that says "sequence-classification"). ``model_kwargs`` may hold ``file_name`` (the
    ONNX file, relative to the folder or its ``onnx/``), ``provider`` (an onnxruntime execution provider) and
    ``export`` (False: never export on the fly).
    """
    require_onnx()
    model_kwargs = dict(hf_kwargs.get("model_kwargs") or {})
    file_name = model_kwargs.pop("file_name", None)
    provider = model_kwargs.pop("provider", "CPUExecutionProvider")
    export = model_kwargs.pop("export", None)
    if task not in TASK_DEFAULTS:
        return None
    config = {**Transformer.load_config(str(folder)), "transformer_task": task}
    modality_config, output_feature = TASK_DEFAULTS[task]
    if config.get("modality_config", modality_config) != modality_config:
        return None  # image, audio and chat backbones stay on torch
    if config.get("module_output_name", output_feature) != output_feature:
        return None  # a module writing another feature than the export's output
    path = find_onnx_file(folder, file_name)
    if path is None:
        if export is False or file_name not in (None, ONNX_FILE):
            raise ModelFormatError(
                f"{folder} has no ONNX file {file_name or ONNX_FILE} (looked in the folder and its onnx/). Export "
                "it with `embedstack export onnx`, name an existing file with model_kwargs={'file_name': ...}, or "
                "leave out export=False to export on the fly."
            )
        return OnnxTransformer.from_folder(folder, _export_on_the_fly(folder, task), provider, config)
    return OnnxTransformer.from_folder(folder, path, provider, config)


def auto_onnx_input_module(folder: Path, hf_kwargs: dict[str, Any], *, task: str = FEATURES) -> InputModule | None:
    """What ``backend="auto"`` takes from the onnx backend, else None.

    A folder that already holds its ONNX file for ``task``, when onnxruntime is installed: never an export on the
    fly, which would cost a minute at load time, nor a file with another output (a classifier's export where an
    embedding backbone is wanted).
    """
    model_kwargs = hf_kwargs.get("model_kwargs") or {}
    other_kwargs = any(value for key, value in hf_kwargs.items() if key != "model_kwargs")
    if other_kwargs or set(model_kwargs) - EXPORTED_FILE_OPTIONS:
        return None  # Hugging Face settings (dtype, attention, ...) only mean something to transformers
    if find_onnx_file(folder, model_kwargs.get("file_name")) is None:
        return None
    try:
        require_onnx()
    except MissingExtraError:
        return None
    try:
        return onnx_input_module(folder, hf_kwargs, task=task)
    except ModelFormatError as exc:
        logger.warning("backend='auto' leaves out onnx for %s: %s", folder, exc)
        return None


def find_onnx_file(folder: Path, file_name: str | None) -> Path | None:
    """``folder/file_name`` or ``folder/onnx/file_name`` (default ``model.onnx``), when it exists."""
    name = file_name or ONNX_FILE
    for candidate in (folder / name, folder / ONNX_FOLDER / name):
        if candidate.is_file():
            return candidate
    return None


def _export_on_the_fly(folder: Path, task: str) -> bytes:
    """The ONNX export of the folder's backbone for ``task``, as bytes (saving the model writes it, nothing else)."""
    logger.warning("%s has no ONNX file; exporting its backbone (save the model to keep the export).", folder)
    transformer = Transformer.load(str(folder), init_defaults={"transformer_task": task})
    with tempfile.TemporaryDirectory(prefix="embedstack-onnx-") as staging:
        return export_backbone(transformer, Path(staging) / ONNX_FILE).read_bytes()


def inference_session(model: Path | bytes, provider: str) -> Any:
    """An onnxruntime session with full graph optimizations, the engine's thread count and no spinning.

    On a CPU whose int8-weight kernels add pairs of products in 16 bits (x86 without VNNI or AMX; cpu_features),
    onnxruntime is told to run 8-bit int8 weights as uint8 (``session.x64quantprecision``: weights + 128, zero
    point + 128, the same values), whose kernels widen before multiplying: exact, where the int8 kernels would
    saturate (lowest cosine to fp32 0.96 on all-MiniLM-L6-v2). Weights already within [-64, 64] keep the faster
    int8 kernels, which cannot overflow with them. Elsewhere the option would only cost speed, so it stays off.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = available_cpus()
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    if provider == "CPUExecutionProvider" and int8_pairs_saturate():
        options.add_session_config_entry("session.x64quantprecision", "1")
    return ort.InferenceSession(model if isinstance(model, bytes) else str(model), options, providers=[provider])


class OnnxTransformer(TextTokenizing, TransformerStandIn):
    """Runs a text Transformer folder with its tokenizer and an ONNX export of its backbone (or classifier).

    An embedding backbone's ``last_hidden_state`` is written as ``token_embeddings``; a classifier's ``logits``
    (transformer_task "sequence-classification" in ``settings``) as ``scores``, as the Transformer module does.
    """

    saves_as = Transformer  # saved in the Transformer's layout, so any reader loads it with either backend
    backend = "onnx"

    def __init__(
        self,
        tokenizer: Any,
        config: Any,
        onnx_model: Path | bytes,
        settings: dict[str, Any],
        *,
        provider: str = "CPUExecutionProvider",
        folder: Path | None = None,
    ) -> None:
        """Run ``onnx_model`` (a file, or the bytes of one) with ``tokenizer``.

        ``config`` is the backbone's Hugging Face config, ``settings`` the Transformer module config
        (transformer_task, max_seq_length, processing_kwargs, ...), ``folder`` the model folder it came from (what
        saving copies).

        Raises:
            ModelFormatError: the ONNX file lacks the output its task reads (``logits`` for a classifier).
        """
        super().__init__()
        self.transformer_task = str(settings.get("transformer_task") or FEATURES)
        self.output_name = output_name(self.transformer_task)
        modality_config, self.module_output_name = TASK_DEFAULTS[self.transformer_task]
        self.modality_config = {key: dict(value) for key, value in modality_config.items()}
        self.folder, self.onnx_model, self.provider = folder, onnx_model, provider
        self.config = config
        self.processor = tokenizer
        self.processing_kwargs = dict(settings.get("processing_kwargs") or {})
        self.query_length, self.document_length = settings.get("query_length"), settings.get("document_length")
        self._prompt_lengths = {}
        self.tokenizer.model_max_length = self.limit_and_case(self.tokenizer, config, settings)
        self.session = inference_session(onnx_model, provider)
        self.input_names = [node.name for node in self.session.get_inputs()]
        self._check_output(folder)
        self.int8_check: Int8Check | None = None  # set where an int8 model was checked (int8_mode)

    @functools.cached_property
    def is_int8(self) -> bool:
        """Whether the ONNX file holds int8 MatMuls."""
        return is_int8_file(self.onnx_model)

    def _check_output(self, folder: Path | None) -> None:
        """ModelFormatError unless the session writes the output this module's task reads."""
        outputs = [node.name for node in self.session.get_outputs()]
        ranks = {node.name: len(node.shape) for node in self.session.get_outputs()}
        if self.output_name not in outputs or ranks[self.output_name] != OUTPUT_RANKS[self.transformer_task]:
            where = self.onnx_model if isinstance(self.onnx_model, Path) else f"the ONNX model of {folder}"
            raise ModelFormatError(
                f"{where} has the outputs {outputs} (ranks {ranks}), not the {self.output_name!r} of rank "
                f"{OUTPUT_RANKS[self.transformer_task]} a {self.transformer_task!r} Transformer reads: it was exported "
                "for another task (an embedding backbone's last_hidden_state, a classifier's logits, or an MLM's "
                "logits per token). Load the folder as the kind of model it was exported from, or export it "
                "again from this one with model.export_onnx(path)."
            )

    @classmethod
    def from_folder(
        cls, folder: Path, onnx_model: Path | bytes, provider: str, settings: dict[str, Any]
    ) -> OnnxTransformer:
        """The module for a Transformer folder: its tokenizer and config, and ``onnx_model``."""
        from transformers import AutoConfig, AutoTokenizer

        tokenizer, config = AutoTokenizer.from_pretrained(str(folder)), AutoConfig.from_pretrained(str(folder))
        return cls(tokenizer, config, onnx_model, settings, provider=provider, folder=folder)

    @property
    def tokenizer(self) -> Any:
        """The folder's tokenizer."""
        return self.processor

    @property
    def max_seq_length(self) -> int:
        """Inputs are truncated to this many tokens."""
        return int(self.tokenizer.model_max_length)

    @max_seq_length.setter
    def max_seq_length(self, value: int) -> None:
        self.tokenizer.model_max_length = value

    def get_embedding_dimension(self) -> int:
        """The backbone's hidden size."""
        return int(self.config.hidden_size)

    def preprocess(self, inputs: list[Any], prompt: str | None = None, **kwargs: Any) -> dict[str, Any]:
        """Tokenize texts (``prompt`` prepended), as the Transformer module does."""
        kwargs.pop("modality", None)
        return self.preprocess_text(inputs, prompt, **kwargs) if inputs else {}

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Run the ONNX file: write ``token_embeddings`` (batch, seq, dim), or a classifier's ``scores``."""
        drop_preprocess_flags(features)
        feed = {name: _int64(features[name]) for name in self.input_names if name in features}
        if "token_type_ids" in self.input_names and "token_type_ids" not in feed:
            feed["token_type_ids"] = np.zeros_like(feed["input_ids"])
        (output,) = self.session.run([self.output_name], feed)
        features[self.module_output_name] = torch.from_numpy(output)
        return features

    def save(self, output_path: str, *args: Any, safe_serialization: bool = True, **kwargs: Any) -> None:
        """Copy the backbone's files and its ONNX file (under ``onnx/``), and write the module config."""
        if self.folder is None:
            raise ValueError(
                "This model runs an int8 ONNX backbone made in memory (model.quantize), which has no folder to save "
                "from. Save the float model, or write an int8 export with model.export_onnx(path, quantize='int8')."
            )
        target = Path(output_path)
        for name in _BACKBONE_FILES:
            if (self.folder / name).is_file():
                shutil.copyfile(self.folder / name, target / name)
        for pattern in _BACKBONE_PATTERNS:
            for file in self.folder.glob(pattern):
                shutil.copyfile(file, target / file.name)
        (target / ONNX_FOLDER).mkdir(exist_ok=True)
        if isinstance(self.onnx_model, bytes):  # exported on the fly
            (target / ONNX_FOLDER / ONNX_FILE).write_bytes(self.onnx_model)
        else:
            shutil.copyfile(self.onnx_model, target / ONNX_FOLDER / self.onnx_model.name)
        self.save_config(output_path, "sentence_bert_config.json")

    @property
    def architecture(self) -> str:
        """The backbone class the folder's config names."""
        return (getattr(self.config, "architectures", None) or ["?"])[0]


def int8_input_module(transformer: Any, recipe: str, calibration_texts: Sequence[str] | None = None) -> OnnxTransformer:
    """The int8 ONNX stand-in for a loaded Transformer module, made with ``recipe`` (onnx_quantize.RECIPES).

    Its backbone is exported and quantized, calibrated on ``calibration_texts`` (default: the built-in set); its
    tokenizer and settings are kept. Nothing is written to the model's folder.
    """
    with tempfile.TemporaryDirectory(prefix="embedstack-int8-") as staging:
        exported = export_backbone(transformer, Path(staging) / ONNX_FILE)
        target = Path(staging) / QUANTIZED_FILES[recipe]
        int8 = quantize_int8(exported, target, transformer, recipe, calibration_texts).read_bytes()
    logger.info("Quantized the backbone to int8 with the %s recipe", recipe)
    settings = {**transformer.get_config_dict(), "max_seq_length": transformer.max_seq_length}
    return OnnxTransformer(transformer.tokenizer, transformer.config, int8, settings)


def _int64(value: Any) -> np.ndarray:
    array = value.cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
    return array.astype(np.int64, copy=False)
