"""The int8 self-check: an int8 backbone is compared with fp32 on this machine before it serves any output.

The same int8 file can be exact on one CPU and degraded on another (onnxruntime's int8 kernels differ by
instruction set; see cpu_features), and a recipe can suit one model and not the next. So whenever an int8 model is
made (``quantize``, ``export_onnx``, the CLI) or loaded, the calibration inputs are run through it and through the
fp32 backbone, with the rest of the model's modules, and the two are compared. The rule depends on what the model
gives (``kind``; thresholds in :class:`Int8Thresholds`):

- **vectors** (an embedding model): the lowest cosine between the int8 and fp32 vectors of the calibration texts
  must reach ``min_cosine`` (``INT8_MIN_COSINE``, 0.99).
- **scores** (a cross-encoder: one or a few logits per pair, where a cosine says nothing; the calibration texts
  are paired, each with the next). Two things must hold, per label:

  - the *order* is kept: of every two calibration pairs that fp32 scores more than ``ORDER_MARGIN`` (0.1) logits
    apart, at least ``min_rank_agreement`` (``INT8_MIN_RANK_AGREEMENT``, 0.98) keep their order under int8. A
    logit is a log-odds, so pairs closer than 0.1 (odds within 10%) are ties to a reranker, and swapping them is no
    error; a plain rank correlation (Spearman) counts those swaps too, and reads 0.5 on a model whose scores all
    lie within 0.01 of each other however close int8 stays. The order also sees what the sigmoid hides: two top
    documents at logits 8 and 9 differ by 0.0002 in probability.
  - the *scores* are kept: the activated scores (sigmoid for one label, softmax over the row for several, as
    ``CrossEncoder.predict`` applies them by default) move by at most ``max_score_diff``
    (``INT8_MAX_SCORE_DIFF``, 0.05), which sees a shift that keeps the order but moves scores across a cut-off.

Short of the rule the int8 model is refused with :class:`Int8QualityError`, which names the figures, the CPU and
the remedy; ``backend="auto"`` runs fp32 instead, with a logged warning. For all-MiniLM-L6-v2 the check encodes 48
short texts twice: about 0.1 s.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from embedstack.backends.cpu_features import flag_summary, int8_kernel
from embedstack.errors import Int8QualityError

INT8_MIN_COSINE = 0.99  # vectors: the lowest cosine to fp32 an int8 model may give on the calibration texts
INT8_MIN_RANK_AGREEMENT = 0.98  # scores: the share of clearly ordered calibration pairs int8 must keep in order
INT8_MAX_SCORE_DIFF = 0.05  # scores: the largest change of an activated (sigmoid/softmax) score
ORDER_MARGIN = 0.1  # scores: fp32 logits closer than this (odds within 10%) are ties, whose order is not checked
_ROWS = 512  # rows of the couple matrix compared at a time

CheckKind = Literal["vectors", "scores"]


def check_kind(output_value: str | None) -> CheckKind:
    """The self-check a model gets from what it outputs: "scores" (a cross-encoder), else "vectors"."""
    return "scores" if output_value == "scores" else "vectors"


@dataclass(frozen=True)
class Int8Thresholds:
    """What the self-check holds an int8 model to; None takes the default.

    Attributes:
        min_cosine: vectors: the lowest cosine to fp32 accepted (default ``INT8_MIN_COSINE``).
        min_rank_agreement: scores: the lowest share of clearly ordered pairs kept in order (default
            ``INT8_MIN_RANK_AGREEMENT``).
        max_score_diff: scores: the largest activated-score change accepted (default ``INT8_MAX_SCORE_DIFF``).
    """

    min_cosine: float | None = None
    min_rank_agreement: float | None = None
    max_score_diff: float | None = None

    def checked(self, kind: CheckKind) -> Int8Thresholds:
        """These thresholds with ``kind``'s defaults filled in (the other kind's left None).

        Raises:
            ValueError: A value is out of range, or sets a threshold of the other kind's rule.
        """
        given = {name: getattr(self, name) for name in ("min_cosine", "min_rank_agreement", "max_score_diff")}
        foreign = ["min_rank_agreement", "max_score_diff"] if kind == "vectors" else ["min_cosine"]
        misplaced = [name for name in foreign if given[name] is not None]
        if misplaced:
            what = "embedding vectors (by cosine)" if kind == "vectors" else "a cross-encoder's scores"
            own = "min_cosine" if kind == "vectors" else "min_rank_agreement and max_score_diff"
            raise ValueError(
                f"{misplaced} set a threshold of the other int8 self-check: this model's check compares {what}, so "
                f"only {own} apply. Drop {misplaced}."
            )
        for name, value in given.items():
            if value is not None and not 0 < float(value) <= 1:
                raise ValueError(f"{name} must be in (0, 1]; got {value!r}.")
        if kind == "vectors":
            return Int8Thresholds(min_cosine=_or(given["min_cosine"], INT8_MIN_COSINE))
        return Int8Thresholds(
            min_rank_agreement=_or(given["min_rank_agreement"], INT8_MIN_RANK_AGREEMENT),
            max_score_diff=_or(given["max_score_diff"], INT8_MAX_SCORE_DIFF),
        )


def _or(value: float | None, default: float) -> float:
    return default if value is None else float(value)


@dataclass(frozen=True)
class Int8Check:
    """What the self-check measured (the module docstring states each ``kind``'s rule).

    Attributes:
        what: The int8 model checked (a recipe or a file name).
        lowest_cosine / median_cosine: vectors: between its vectors and fp32's, over ``texts`` calibration texts
            (None for scores).
        min_cosine: The cosine threshold (vectors).
        texts: How many calibration inputs were compared (texts, or pairs for scores).
        seconds: How long the check took.
        cpu: The CPU's instruction sets, and which int8 kernels they run.
        kind: "vectors" or "scores".
        rank_agreement: scores: the lowest share, over the labels, of clearly ordered pairs kept in order.
        ordered: scores: how many couples of calibration pairs fp32 orders (over all labels).
        score_diff: scores: the largest change of an activated score.
        min_rank_agreement / max_score_diff: The score thresholds (scores).
    """

    what: str
    lowest_cosine: float | None
    median_cosine: float | None
    min_cosine: float
    texts: int
    seconds: float
    cpu: str = field(default_factory=lambda: f"{flag_summary()}; {int8_kernel()}")
    kind: CheckKind = "vectors"
    rank_agreement: float | None = None
    ordered: int | None = None
    score_diff: float | None = None
    min_rank_agreement: float = INT8_MIN_RANK_AGREEMENT
    max_score_diff: float = INT8_MAX_SCORE_DIFF

    @property
    def passed(self) -> bool:
        """Whether the measured figures meet the thresholds of this kind's rule."""
        if self.kind == "scores":
            assert self.rank_agreement is not None and self.score_diff is not None  # measured for scores
            return self.rank_agreement >= self.min_rank_agreement and self.score_diff <= self.max_score_diff
        assert self.lowest_cosine is not None  # measured for vectors
        return self.lowest_cosine >= self.min_cosine

    def _score_figures(self) -> str:
        order = (
            f"keep the order of {self.rank_agreement:.2%} of the {self.ordered} couples of pairs fp32 scores more "
            f"than {ORDER_MARGIN} logits apart"
            if self.ordered
            else f"have no order to keep (fp32 scores all pairs within {ORDER_MARGIN} logits of each other)"
        )
        return (
            f"scores that {order}, and move by at most {self.score_diff:.4f} after the activation, on {self.texts} "
            f"calibration pairs; thresholds: order kept >= {self.min_rank_agreement:.2%}, move <= "
            f"{self.max_score_diff}"
        )

    def summary(self) -> str:
        """One line for logs and ``embedstack info``."""
        verdict = "passed" if self.passed else "FAILED"
        figures = (
            self._score_figures()
            if self.kind == "scores"
            else (
                f"lowest cosine {self.lowest_cosine:.4f} (median {self.median_cosine:.4f}) to fp32 on {self.texts} "
                f"calibration texts, threshold {self.min_cosine}"
            )
        )
        return f"int8 self-check {verdict}: {self.what} gives {figures}; CPU: {self.cpu}; {self.seconds:.2f} s"

    def error(self, remedy: str) -> Int8QualityError:
        """The refusal, with ``remedy`` appended."""
        if self.kind == "scores":
            return Int8QualityError(
                f"{self.what} is refused: on this machine it gives {self._score_figures()}, so its scores are too "
                f"far from fp32's. CPU: {self.cpu}. {remedy}"
            )
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
    kind: CheckKind = "vectors",
    thresholds: Int8Thresholds | None = None,
) -> Int8Check:
    """Compare ``int8_module`` with ``fp32_module`` on the calibration inputs.

    ``encode_with(module)`` runs the calibration inputs with ``module`` as the model's input module and returns
    their outputs: vectors (texts, dim) for ``kind`` "vectors", logits (pairs, labels) for "scores".
    ``thresholds`` (or ``min_cosine`` alone) overrides the defaults.
    """
    limits = (thresholds or Int8Thresholds(min_cosine=min_cosine)).checked(kind)
    start = time.perf_counter()
    reference = np.asarray(encode_with(fp32_module), dtype=np.float64)
    outputs = np.asarray(encode_with(int8_module), dtype=np.float64)
    if kind == "scores":
        reference, outputs = reference.reshape(len(reference), -1), outputs.reshape(len(outputs), -1)  # (pairs, labels)
        agreement, ordered = rank_agreement(outputs, reference)
        figures: dict[str, Any] = {
            "rank_agreement": agreement,
            "ordered": ordered,
            "score_diff": float(np.abs(activated(outputs) - activated(reference)).max(initial=0.0)),
        }
    else:
        norms = np.linalg.norm(outputs, axis=1) * np.linalg.norm(reference, axis=1)
        cosines = (outputs * reference).sum(axis=1) / np.maximum(norms, 1e-12)
        figures = {"lowest_cosine": float(cosines.min()), "median_cosine": float(np.median(cosines))}
    return Int8Check(
        what=what,
        lowest_cosine=figures.get("lowest_cosine"),
        median_cosine=figures.get("median_cosine"),
        min_cosine=_or(limits.min_cosine, INT8_MIN_COSINE),
        texts=len(reference),
        seconds=time.perf_counter() - start,
        kind=kind,
        rank_agreement=figures.get("rank_agreement"),
        ordered=figures.get("ordered"),
        score_diff=figures.get("score_diff"),
        min_rank_agreement=_or(limits.min_rank_agreement, INT8_MIN_RANK_AGREEMENT),
        max_score_diff=_or(limits.max_score_diff, INT8_MAX_SCORE_DIFF),
    )


def activated(logits: np.ndarray) -> np.ndarray:
    """Scores as a cross-encoder reports them by default: sigmoid of one label, softmax over several (pairs, labels)."""
    if logits.shape[1] == 1:
        return 1 / (1 + np.exp(-logits))
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def rank_agreement(scores: np.ndarray, reference: np.ndarray, margin: float = ORDER_MARGIN) -> tuple[float, int]:
    """How much of ``reference``'s order ``scores`` keeps: (share of ordered couples kept, ordered couples).

    ``scores`` and ``reference`` are (pairs, labels) logits; a couple is ordered where its two ``reference``
    values lie more than ``margin`` apart. The share is the lowest over the labels; 1 where ``reference`` orders
    none (all ties: no order to keep).
    """
    lowest, total = 1.0, 0
    for column in range(reference.shape[1]):
        kept = ordered = 0
        for start in range(0, len(reference), _ROWS):  # (rows, pairs) at a time: any number of calibration texts
            expected = reference[start : start + _ROWS, column, None] - reference[None, :, column]
            measured = scores[start : start + _ROWS, column, None] - scores[None, :, column]
            above = expected > margin  # each ordered couple once: the row above the column
            ordered += int(above.sum())
            kept += int((measured[above] > 0).sum())
        if ordered:
            lowest = min(lowest, kept / ordered)
        total += ordered
    return lowest, total
