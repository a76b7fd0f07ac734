"""The int8 self-check: an int8 backbone is compared with fp32 on this machine before it serves any vector.

The same int8 file can be exact on one CPU and degraded on another (onnxruntime's int8 kernels differ by
instruction set; see cpu_features), and a recipe can suit one model and not the next. So whenever an int8 model is
made (``quantize``, ``export_onnx``, the CLI) or loaded, the calibration texts are encoded with it and with the fp32
backbone, through the rest of the model's modules, and the lowest cosine between the two is taken. Below the
threshold (``INT8_MIN_COSINE`` unless the caller sets another) the int8 model is refused with
:class:`Int8QualityError`, which names the figure, the CPU and the remedy; ``backend="auto"`` runs fp32 instead,
with a logged warning. For all-MiniLM-L6-v2 the check encodes 48 short texts twice: about 0.1 s.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from embedstack.backends.cpu_features import flag_summary, int8_kernel
from embedstack.errors import Int8QualityError

INT8_MIN_COSINE = 0.99  # the lowest cosine to fp32 an int8 model may give on the calibration texts


@dataclass(frozen=True)
class Int8Check:
    """What the self-check measured.

    Attributes:
        what: The int8 model checked (a recipe or a file name).
        lowest_cosine / median_cosine: Between its vectors and fp32's, over ``texts`` calibration texts.
        min_cosine: The threshold it was held to.
        seconds: How long the check took.
        cpu: The CPU's instruction sets, and which int8 kernels they run.
    """

    what: str
    lowest_cosine: float
    median_cosine: float
    min_cosine: float
    texts: int
    seconds: float
    cpu: str = field(default_factory=lambda: f"{flag_summary()}; {int8_kernel()}")

    @property
    def passed(self) -> bool:
        """Whether the lowest cosine reached the threshold."""
        return self.lowest_cosine >= self.min_cosine

    def summary(self) -> str:
        """One line for logs and ``embedstack info``."""
        verdict = "passed" if self.passed else "FAILED"
        return (
            f"int8 self-check {verdict}: {self.what} gives lowest cosine {self.lowest_cosine:.4f} (median "
            f"{self.median_cosine:.4f}) to fp32 on {self.texts} calibration texts, threshold {self.min_cosine}; "
            f"CPU: {self.cpu}; {self.seconds:.2f} s"
        )

    def error(self, remedy: str) -> Int8QualityError:
        """The refusal, with ``remedy`` appended."""
        return Int8QualityError(
            f"{self.what} is refused: on this machine its vectors reach only cosine {self.lowest_cosine:.4f} to the "
            f"fp32 ones (median {self.median_cosine:.4f}, {self.texts} calibration texts), below the threshold "
            f"{self.min_cosine}. CPU: {self.cpu}. {remedy}"
        )


def check_int8(
    encode_with: Callable[[Any], np.ndarray],
    int8_module: Any,
    fp32_module: Any,
    *,
    what: str,
    min_cosine: float | None = None,
) -> Int8Check:
    """Compare ``int8_module`` with ``fp32_module`` on the calibration texts.

    ``encode_with(module)`` encodes the calibration texts with ``module`` as the model's input module and returns
    their vectors (texts, dim).
    """
    threshold = INT8_MIN_COSINE if min_cosine is None else float(min_cosine)
    if not 0 < threshold <= 1:
        raise ValueError(f"min_cosine must be in (0, 1]; got {min_cosine!r}.")
    start = time.perf_counter()
    reference = np.asarray(encode_with(fp32_module), dtype=np.float64)
    vectors = np.asarray(encode_with(int8_module), dtype=np.float64)
    norms = np.linalg.norm(vectors, axis=1) * np.linalg.norm(reference, axis=1)
    cosines = (vectors * reference).sum(axis=1) / np.maximum(norms, 1e-12)
    return Int8Check(
        what=what,
        lowest_cosine=float(cosines.min()),
        median_cosine=float(np.median(cosines)),
        min_cosine=threshold,
        texts=len(cosines),
        seconds=time.perf_counter() - start,
    )
