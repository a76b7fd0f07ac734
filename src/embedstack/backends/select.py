"""``backend="auto"``: the backend measured fastest on this machine, for this model, remembered.

Which backend is fastest depends on the CPU: on a VNNI machine the fp32 ONNX export ran 1.6x our torch path, on
an AVX2-only one it was slower on long texts (benchmarks/RESULTS.md). So ``auto`` measures instead of following
a fixed order: every backend that can run the folder exactly (torch always; native for plain BERT folders and
BERT classifiers; onnx where the folder holds its export, or the file ``model_kwargs`` names) runs the same two
passes built from the calibration texts (24 short texts in one pass, one text at the full window in another),
interleaved, two rounds after a warm-up, and the faster round of each decides. The fastest is
taken; backends within ``NOISE`` of it count as tied, and of those the one that starts fastest wins (native, which
needs no transformers import, then torch). So auto is never slower than torch, nor than the fastest backend,
beyond noise. For all-MiniLM-L6-v2 the probe takes about a second on 2 cores.

The decision is stored in the user's cache folder (:func:`cache_folder`), keyed by the model's files (names,
sizes, modification times), the candidates and options, the CPU's flags, the thread count and the library
versions, so later loads on the same machine (the CLI, the server, each Ray actor) build only the chosen backend.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from embedstack._version import __version__
from embedstack.backends.calibration_texts import CALIBRATION_TEXTS
from embedstack.backends.cpu_features import flag_summary
from embedstack.engine.threads import available_cpus, limit_cpu_threads
from embedstack.modules.base import InputModule

logger = logging.getLogger(__name__)

NOISE = 0.03  # backends this close to the fastest count as tied: the probe cannot tell them apart
# Among tied backends, the one that starts fastest: native imports no transformers, torch is the reference path.
PREFERENCE = {"native": 0, "torch": 1}
ROUNDS = 2  # timed rounds after the warm-up; each candidate's fastest round counts (noise only adds time)
CHOICES_FILE = "backend-choices.json"
_SIGNATURE_FILES = ("config.json", "sentence_bert_config.json", "tokenizer.json", "model.safetensors")

Thunk = Callable[[], InputModule | None]


@dataclass(frozen=True)
class BackendChoice:
    """What ``backend="auto"`` chose and why.

    Attributes:
        backend: The backend taken.
        seconds: The time of the probe's two passes, per candidate (empty when only torch could run).
        reason: The decision in words.
        cached: Whether the decision was read from the cache file rather than measured now.
    """

    backend: str
    seconds: dict[str, float]
    reason: str
    cached: bool = False

    def summary(self) -> str:
        """One line for logs and ``embedstack info``."""
        measured = ", ".join(f"{name} {value * 1000:.0f} ms" for name, value in sorted(self.seconds.items()))
        source = "remembered from an earlier probe" if self.cached else "measured now"
        return f"{self.reason}" + (f" (probe: {measured}; {source})" if measured else "")


def cache_folder() -> Path:
    """Where embedstack keeps per-machine state.

    ``$EMBEDSTACK_CACHE``, else ``$XDG_CACHE_HOME/embedstack``, else ``~/.cache/embedstack``.
    """
    explicit = os.environ.get("EMBEDSTACK_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "embedstack"


def choose_backend(
    folder: Path,
    hf_kwargs: dict[str, Any],
    candidates: dict[str, Thunk],
    build_torch: Callable[[], InputModule],
    *,
    task: str = "feature-extraction",
) -> InputModule:
    """The input module of the backend measured fastest for ``folder`` here (see the module docstring).

    ``candidates`` build each other backend's module (None where it cannot run the folder), ``build_torch`` the
    Transformer module; ``task`` is the folder's transformer_task (one folder loaded as an embedding model and as
    a cross-encoder runs different modules, so each has its own decision).
    """
    options = hf_kwargs if task == "feature-extraction" else {**hf_kwargs, "transformer_task": task}
    key = _decision_key(folder, options, sorted(candidates))
    remembered = _read_choices().get(key)
    if remembered is not None:
        module = _build_remembered(remembered, candidates, build_torch)
        if module is not None:
            return module
    modules: dict[str, InputModule] = {}
    for name, build in candidates.items():
        module = build()
        if module is not None:
            modules[name] = module
    if not modules:
        return _with_choice(build_torch(), BackendChoice("torch", {}, "torch: no other backend runs this folder"))
    modules["torch"] = build_torch()
    seconds = probe(modules)
    choice = _decide(seconds)
    _remember(key, choice, folder)
    logger.info("backend='auto' for %s: %s", folder, choice.summary())
    return _with_choice(modules[choice.backend], choice)


def probe(modules: dict[str, InputModule]) -> dict[str, float]:
    """The time of the probe's passes for each module: the fastest of ROUNDS interleaved rounds after a warm-up.

    A module that fails on the probe's inputs is left out (and logged); the caller's own inputs would fail it too.
    """
    limit_cpu_threads()
    workloads = {name: _features(module) for name, module in modules.items()}
    times: dict[str, list[float]] = {name: [] for name in modules}
    with torch.inference_mode():
        for round_ in range(ROUNDS + 1):
            for name, module in modules.items():
                if name not in times:
                    continue
                start = time.perf_counter()
                try:
                    for features in workloads[name]:
                        module.forward(dict(features))
                except Exception as exc:  # noqa: BLE001  (any failure of a backend disqualifies it)
                    logger.warning("backend='auto': %s failed on the probe and is left out: %s", name, exc)
                    del times[name]
                    continue
                if round_:  # round 0 warms up (allocations, first-call setup)
                    times[name].append(time.perf_counter() - start)
    return {name: min(values) for name, values in times.items()}


def _features(module: InputModule) -> list[dict[str, Any]]:
    """The probe's two passes for ``module``: the 24 shortest calibration texts, and one text at the full window."""
    lengths = module.preprocess(list(CALIBRATION_TEXTS))["attention_mask"].sum(dim=1).tolist()
    short = [text for _, text in sorted(zip(lengths, CALIBRATION_TEXTS), key=lambda pair: pair[0])[:24]]
    return [module.preprocess(short), module.preprocess([" ".join(CALIBRATION_TEXTS)])]


def _decide(seconds: dict[str, float]) -> BackendChoice:
    """The fastest backend; among those within NOISE of it, the one that starts fastest (PREFERENCE)."""
    if "torch" not in seconds or len(seconds) == 1:
        return BackendChoice("torch", seconds, "torch: the other backends could not run the probe")
    best = min(seconds.values())
    tied = [name for name, value in seconds.items() if value <= best * (1 + NOISE)]
    chosen = min(tied, key=lambda name: (PREFERENCE.get(name, len(PREFERENCE)), seconds[name]))
    ratio = seconds["torch"] / seconds[chosen]
    if len(tied) == 1:
        reason = f"{chosen}: the fastest here, {ratio:.2f}x torch's speed"
    else:
        reason = f"{chosen}: within {NOISE:.0%} of the fastest here ({', '.join(sorted(tied))}), and it starts fastest"
    return BackendChoice(chosen, seconds, reason)


def _with_choice(module: InputModule, choice: BackendChoice) -> InputModule:
    module.backend_choice = choice  # type: ignore[assignment]  # read by the model and `embedstack info`
    return module


def _build_remembered(record: dict[str, Any], candidates: dict[str, Thunk], build_torch: Callable[[], Any]) -> Any:
    try:
        choice = BackendChoice(record["backend"], dict(record["seconds"]), str(record["reason"]), cached=True)
    except (KeyError, TypeError, ValueError):
        return None
    if choice.backend == "torch":
        return _with_choice(build_torch(), choice)
    build = candidates.get(choice.backend)
    module = build() if build is not None else None
    return _with_choice(module, choice) if module is not None else None  # the folder changed: measure again


def _decision_key(folder: Path, hf_kwargs: dict[str, Any], candidates: list[str]) -> str:
    files = []
    for name in sorted({*_SIGNATURE_FILES, *(str(p.relative_to(folder)) for p in folder.glob("onnx/*.onnx"))}):
        path = folder / name
        if path.is_file():
            stat = path.stat()
            files.append((name, stat.st_size, stat.st_mtime_ns))
    described = {
        "folder": str(folder.resolve()),
        "files": files,
        "options": json.dumps(hf_kwargs, sort_keys=True, default=str),
        "candidates": candidates,
        "cpu": flag_summary(),
        "threads": [limit_cpu_threads(), available_cpus()],  # the threads encode will use here
        "versions": [__version__, torch.__version__, _onnxruntime_version()],
    }
    return hashlib.blake2b(json.dumps(described, sort_keys=True).encode(), digest_size=16).hexdigest()


def _onnxruntime_version() -> str | None:
    try:
        from importlib.metadata import version

        return version("onnxruntime")
    except Exception:  # not installed: the onnx backend is no candidate then anyway
        return None


def _read_choices() -> dict[str, Any]:
    path = cache_folder() / CHOICES_FILE
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):  # absent, unreadable or damaged: measure again and rewrite it
        return {}


def _remember(key: str, choice: BackendChoice, folder: Path) -> None:
    """Add the decision to the cache file (written whole and renamed into place; a failure only logs)."""
    record = {**asdict(choice), "folder": str(folder), "measured": time.strftime("%Y-%m-%dT%H:%M:%S")}
    record.pop("cached")
    choices = {**_read_choices(), key: record}
    target = cache_folder() / CHOICES_FILE
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=target.parent, suffix=".tmp", delete=False, encoding="utf-8") as out:
            json.dump(choices, out, indent=1)
        os.replace(out.name, target)
    except OSError as exc:
        logger.debug("Could not remember the backend choice in %s: %s", target, exc)
