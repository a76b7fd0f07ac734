"""A model folder's ONNX files: the fp32 export, an int8 file checked on this machine, graph-optimized files.

``model.export_onnx`` saves the model into a staging folder, calls :func:`write_onnx_files` there and moves the
folder into place only when everything succeeded, so a refused int8 file leaves nothing half-written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from embedstack.backends.int8_check import CheckKind, Int8Thresholds, check_int8
from embedstack.backends.int8_mode import EncodeWith
from embedstack.backends.onnx import OnnxTransformer
from embedstack.backends.onnx_export import ONNX_FILE, ONNX_FOLDER, export_backbone, require_onnx
from embedstack.backends.onnx_optimize import OPTIMIZED_FILES, optimize_onnx
from embedstack.backends.onnx_quantize import QUANTIZED_FILES, quantize_int8
from embedstack.backends.onnx_smooth import check_calibration_texts
from embedstack.modules.transformer.module import Transformer


@dataclass(frozen=True)
class ExportOptions:
    """What ``export_onnx`` writes besides ``onnx/model.onnx``.

    Attributes:
        quantize: An int8 recipe (onnx_quantize.RECIPES), or None.
        optimize: A graph optimization level ("O1" to "O4"), or None.
        calibration_texts: Texts to calibrate (and self-check) the int8 file on; None: the built-in set.
        thresholds: The self-check's thresholds (None fields: int8_check's defaults).
        kind: Which self-check: "vectors" (an embedding model) or "scores" (a cross-encoder).
    """

    quantize: str | None = None
    optimize: str | None = None
    calibration_texts: Sequence[str] | None = None
    thresholds: Int8Thresholds = Int8Thresholds()
    kind: CheckKind = "vectors"

    def checked(self) -> ExportOptions:
        """These options, or ValueError naming the bad one (before anything is written)."""
        if self.quantize is not None and self.quantize not in QUANTIZED_FILES:
            raise ValueError(
                f"quantize {self.quantize!r} is not supported; choose None or one of {list(QUANTIZED_FILES)}."
            )
        if self.optimize is not None and self.optimize not in OPTIMIZED_FILES:
            raise ValueError(
                f"optimize {self.optimize!r} is not supported; choose None or one of {list(OPTIMIZED_FILES)}."
            )
        texts = None if self.calibration_texts is None else check_calibration_texts(self.calibration_texts)
        thresholds = self.thresholds.checked(self.kind)
        require_onnx()
        return ExportOptions(self.quantize, self.optimize, texts, thresholds, self.kind)


def write_onnx_files(model: Any, folder: Path, options: ExportOptions, encode_with: EncodeWith) -> None:
    """Write the ONNX files of ``model`` into ``folder``, which holds the saved model.

    ``encode_with(module)`` encodes the calibration texts (pairs, for a cross-encoder) with ``module`` as the
    model's input module: the int8 file is checked with it against the model's own input module (by the rule of
    ``options.kind``), and Int8QualityError stops the export.
    """
    target = folder / ONNX_FOLDER / ONNX_FILE
    if not target.is_file():  # a model on the onnx backend saved its export already
        export_backbone(model[0], target)
    if options.quantize is not None:
        int8_file = target.with_name(QUANTIZED_FILES[options.quantize])
        quantize_int8(target, int8_file, model[0], options.quantize, options.calibration_texts)
        task = getattr(model[0], "transformer_task", "feature-extraction")
        settings = {**Transformer.load_config(str(folder)), "transformer_task": task}
        int8 = OnnxTransformer.from_folder(folder, int8_file, "CPUExecutionProvider", settings)
        what = f"{int8_file.name} ({options.quantize})"
        check = check_int8(encode_with, int8, model[0], what=what, kind=options.kind, thresholds=options.thresholds)
        if not check.passed:
            accept = "min_cosine=..." if options.kind == "vectors" else "min_rank_agreement=... or max_score_diff=..."
            raise check.error(
                "Nothing was written. Export without quantize, try another recipe (quantize='int8' runs exactly on "
                f"every CPU), calibrate on texts like yours (calibration_texts=[...]), or accept less ({accept})."
            )
    if options.optimize is not None:
        optimize_onnx(target, target.with_name(OPTIMIZED_FILES[options.optimize]), options.optimize, model[0].config)
