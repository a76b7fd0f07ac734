"""int8 and ONNX export, for every model kind: ``quantize`` and ``export_onnx``.

Both check the int8 backbone against fp32 through the model's own stack and engine, on inputs the kind chooses
(``calibration_inputs``), before it serves or writes anything: an embedding model by the cosines of its vectors, a
cross-encoder (``calibration_output`` "scores") by the rank correlation and the activated difference of its scores
(backends/int8_check.py states both rules).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import nn

from embedstack.backends.calibration_texts import CALIBRATION_TEXTS
from embedstack.backends.int8_check import CheckKind, Int8Thresholds, check_kind
from embedstack.backends.int8_mode import quantized_module
from embedstack.backends.onnx_files import ExportOptions, write_onnx_files
from embedstack.backends.onnx_smooth import check_calibration_texts
from embedstack.engine import EncodePlan, run
from embedstack.engine.runner import OutputValue
from embedstack.modules.transformer.module import Transformer
from embedstack.persistence.atomic import atomic_folder
from embedstack.stack import ModuleStack


class OnnxMethods(ModuleStack):
    """``quantize`` and ``export_onnx``; mixed into :class:`~embedstack.base.BaseModel`."""

    calibration_output: OutputValue = "sentence_embedding"  # what the int8 self-check compares (a reranker: scores)

    if TYPE_CHECKING:  # provided by BaseModel

        @property
        def device(self) -> torch.device:
            """The device the model runs on."""

        def _resolve_prompt(self, prompt: str | None, prompt_name: str | None, task: str | None = None) -> str | None:
            """The prompt text a call uses."""

        def save(self, path: str | Path | None) -> None:
            """Save the model folder."""

    def quantize(
        self,
        mode: Literal["int8"] = "int8",
        *,
        calibration_texts: Sequence[str] | None = None,
        min_cosine: float | None = None,
        min_rank_agreement: float | None = None,
        max_score_diff: float | None = None,
    ) -> Any:
        """Switch the backbone to int8 on CPU (in place): faster encoding, nearly the same vectors (or scores).

        The Transformer's backbone is exported to ONNX and quantized with the recipe measured fastest on this CPU
        that keeps the vectors (SmoothQuant, then int8 weights per output channel, with the feed-forward
        down-projections in fp32): 8-bit weights where the CPU adds int8 products in 32 bits (VNNI, AMX, ARM),
        7-bit weights rounded with GPTQ where it adds pairs in 16 bits (x86 without VNNI), then run by onnxruntime.
        Before it serves a vector, the int8 model is compared with fp32 on the calibration texts on this machine
        (``int8_check``): below ``min_cosine`` it tries the 8-bit recipe (exact everywhere), and if that fails too
        the model stays fp32 and :class:`~embedstack.errors.Int8QualityError` says why. A cross-encoder is
        checked on its scores of the calibration texts paired instead: of the pairs fp32 scores more than 0.1
        logits apart, at least ``min_rank_agreement`` must keep their order, and the sigmoid (softmax, for
        several labels) scores must stay within ``max_score_diff`` of fp32's. Needs
        ``embedstack[onnx]``. A quantized model cannot be saved; ``export_onnx(path, quantize="int8")`` writes an
        int8 file instead.

        Args:
            mode: "int8".
            calibration_texts: Texts like the ones you will encode, to measure each activation channel's range
                and to check the result (a few dozen suffice); by default a built-in set of short and long, mostly
                English texts.
            min_cosine: The lowest cosine to the fp32 vectors the self-check accepts (default 0.99).
            min_rank_agreement: A cross-encoder's: the lowest share of fp32's clearly ordered calibration pairs
                that must keep their order (default 0.98).
            max_score_diff: A cross-encoder's: the largest change of an activated score accepted (default 0.05).

        Returns:
            The model itself.

        Example:
            >>> from embedstack import SentenceTransformer
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
        kind = self._check_kind()
        thresholds = Int8Thresholds(min_cosine, min_rank_agreement, max_score_diff).checked(kind)
        encode_with = self._calibration_encoder(texts)
        self[0] = quantized_module(module, encode_with, calibration_texts=texts, kind=kind, thresholds=thresholds)
        self._quantized = mode
        return self

    def export_onnx(
        self,
        path: str | Path,
        *,
        quantize: str | None = None,
        optimize: str | None = None,
        calibration_texts: Sequence[str] | None = None,
        min_cosine: float | None = None,
        min_rank_agreement: float | None = None,
        max_score_diff: float | None = None,
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
            min_rank_agreement: For ``quantize`` of a cross-encoder: the share of clearly ordered pairs that must
                keep their order (default 0.98; see ``quantize``).
            max_score_diff: For ``quantize`` of a cross-encoder: the largest activated-score change (default 0.05).
        """
        thresholds = Int8Thresholds(min_cosine, min_rank_agreement, max_score_diff)
        options = ExportOptions(quantize, optimize, calibration_texts, thresholds, self._check_kind()).checked()
        with atomic_folder(path) as staging:
            self.save(str(staging))
            write_onnx_files(self, staging, options, self._calibration_encoder(options.calibration_texts))
        return Path(path)

    def _check_kind(self) -> CheckKind:
        """Which int8 self-check this model gets: "scores" for a cross-encoder, "vectors" otherwise."""
        return check_kind(self.calibration_output)

    def calibration_inputs(self, texts: Sequence[str]) -> list[Any]:
        """The inputs the int8 self-check encodes, made from calibration texts (a kind taking pairs pairs them)."""
        return list(texts)

    def _calibration_encoder(self, texts: Sequence[str] | None) -> Callable[[nn.Module], Any]:
        """A function that runs the calibration inputs with the given input module in place of this model's.

        Through the engine and the rest of the stack: what the int8 self-check runs. ``texts`` defaults to the
        built-in calibration texts.
        """
        inputs = self.calibration_inputs(CALIBRATION_TEXTS if texts is None else texts)

        def encode_with(module: nn.Module) -> Any:
            stack = ModuleStack(OrderedDict([("0", module), *list(self.named_children())[1:]]))
            stack.module_kwargs = self.module_kwargs
            prompt = self._resolve_prompt(None, None)
            plan = EncodePlan(device=self.device, prompt=prompt, output_value=self.calibration_output)
            with torch.inference_mode():
                outputs = run(stack, inputs, plan).outputs
            assert isinstance(outputs, torch.Tensor)  # one output row per input
            return outputs.float().numpy()

        return encode_with
