"""embedstack vs sentence-transformers 6.2: encode throughput on the same inputs, in one run.

    .venv/bin/python benchmarks/encode_throughput.py --runs 3            # fp32, all corpora
    .venv/bin/python benchmarks/encode_throughput.py --runs 3 --int8     # also onnx, auto and int8

With --int8 the model is exported once (onnx/model.onnx and the 8-bit int8 file) into a temporary folder, and the
run adds: "embedstack onnx" (the fp32 export), "auto" (backend="auto" on that folder: what the probe picks on this
machine, among torch, native and onnx), "int8" (model.quantize("int8"): the recipe chosen for this CPU) and "int8
file" (the exported 8-bit file, run as this CPU runs it). Runs are interleaved (reference, embedstack, ...,
reference, ...) and medians are reported. The reference
runs at its default batch_size (32); embedstack at its own default (batch_size=None: the token budget decides
the rows). The fp32 matmul peak is measured in the same run; "useful" FLOPs count real tokens only (no padding).
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from corpora import CORPORA

from embedstack.backends import cpu_features
from embedstack.backends.onnx_quantize import QUANTIZED_FILES
from embedstack.defaults import default_model_path
from embedstack.engine import EncodePlan, run
from embedstack.engine.batching import longest_first, token_budget_batches

BATCH_SIZE = 32


def matmul_peak_gflops(size: int = 2048, reps: int = 10, device: str = "cpu") -> float:
    """Best of three timings of a square fp32 matmul on ``device``."""
    a, b = torch.randn(size, size, device=device), torch.randn(size, size, device=device)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    for _ in range(2):
        a @ b
    best = 0.0
    for _ in range(3):
        sync()
        start = time.perf_counter()
        for _ in range(reps):
            a @ b
        sync()
        best = max(best, 2 * size**3 * reps / (time.perf_counter() - start) / 1e9)
    return best


cpu_flags = cpu_features.flag_summary  # every benchmark prints the CPU's flags with its results


def useful_flops(config, lengths: np.ndarray) -> float:
    """Forward FLOPs of a BERT-style encoder over real tokens: the linear layers plus attention scores."""
    d, ff, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    linear = 2 * (4 * d * d + 2 * d * ff) * layers * lengths.sum()
    attention = 4 * d * layers * (lengths.astype(np.float64) ** 2).sum()
    return float(linear + attention)


def reference_padding(tokenizer, texts: list[str], max_len: int) -> float:
    """Padding overhead of sentence-transformers' batching: longest characters first, batches of 32."""
    lengths = np.array([min(len(ids), max_len) for ids in tokenizer(texts)["input_ids"]])
    order = np.argsort([-len(t) for t in texts], kind="stable")
    padded = sum(
        len(order[i : i + BATCH_SIZE]) * lengths[order[i : i + BATCH_SIZE]].max()
        for i in range(0, len(order), BATCH_SIZE)
    )
    return padded / lengths.sum() - 1


def engine_padding_before(lengths: np.ndarray) -> float:
    """Padding of the engine before issue 16: 16,384-token passes of at most 32 rows, never cut early."""
    batches = token_budget_batches(
        longest_first(lengths), lengths, max_batch_tokens=16384, batch_size=BATCH_SIZE, pass_overhead_tokens=10**9
    )
    return sum(len(b) * lengths[b].max() for b in batches) / lengths.sum() - 1


def timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def bench_corpus(
    name: str, texts: list[str], reference, systems: dict, runs: int, peak: float, notes: list[str]
) -> list[str]:
    ours = systems["embedstack"]
    tokenizer = ours.tokenizer
    lengths = np.array([min(len(ids), ours.max_seq_length) for ids in tokenizer(texts)["input_ids"]])
    flops = useful_flops(ours[0].config, lengths)
    everyone = {"reference": reference, **systems}
    times: dict[str, list[float]] = {system: [] for system in everyone}
    vectors = {}
    for _ in range(runs):  # interleaved, so drifts in machine speed hit every system alike
        for system, model in everyone.items():
            options = {"batch_size": BATCH_SIZE} if system == "reference" else {}  # each at its own default
            seconds, vectors[system] = timed(lambda model=model, options=options: model.encode(texts, **options))
            times[system].append(seconds)
    stats = run(ours, texts, EncodePlan(device=ours.device)).stats
    unique = np.array(list(dict(zip(texts, lengths)).values()))  # one length per distinct text
    notes.append(
        f"- {name}: {len(texts)} texts, median {np.median(lengths):.0f} tokens, {(lengths < 32).mean():.0%} under 32; "
        f"engine padding {engine_padding_before(unique):.1%} before issue 16, {stats.padding_overhead:.1%} now"
    )
    padding = {system: stats.padding_overhead for system in systems}
    padding["reference"] = reference_padding(tokenizer, texts, ours.max_seq_length)
    base = statistics.median(times["reference"])
    rows = []
    for system in everyone:
        seconds = statistics.median(times[system])
        if system.startswith("int8"):
            f32, q = vectors["embedstack"], vectors[system]
            cosines = (f32 * q).sum(1) / np.linalg.norm(f32, axis=1) / np.linalg.norm(q, axis=1)
            quality = f"min cos to fp32 {float(cosines.min()):.4f}"
        else:
            quality = f"max abs diff {float(np.abs(vectors[system] - vectors['reference']).max()):.1e}"
        rows.append(
            f"| {name} | {system} | {len(texts) / seconds:,.1f} | {lengths.sum() / seconds:,.0f} "
            f"| {base / seconds:.2f}x | {padding[system]:.1%} | {quality} | {flops / seconds / 1e9 / peak:.0%} |"
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--corpus", choices=[*CORPORA, "all"], default="all")
    parser.add_argument("--int8", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="cpu, or cuda for the GPU run (fp32; --int8 is CPU only)")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    warnings.simplefilter("ignore")
    torch.set_num_threads(args.threads)
    from sentence_transformers import SentenceTransformer as Reference

    import embedstack
    from embedstack import SentenceTransformer

    path = str(default_model_path())
    reference = Reference(path, device=args.device)
    systems = {
        "embedstack": SentenceTransformer(path, device=args.device),
        "embedstack native": SentenceTransformer(path, device=args.device, backend="native"),
    }
    if args.int8:
        exported = SentenceTransformer(path, device="cpu").export_onnx(
            Path(tempfile.mkdtemp(prefix="encode-throughput-")) / "exported", quantize="int8"
        )
        systems["embedstack onnx"] = SentenceTransformer(str(exported), device="cpu", backend="onnx")
        systems["auto"] = SentenceTransformer(str(exported), device="cpu", backend="auto")
        systems["int8"] = SentenceTransformer(path, device="cpu").quantize("int8")
        systems["int8 file"] = SentenceTransformer(
            str(exported), device="cpu", backend="onnx", model_kwargs={"file_name": QUANTIZED_FILES["int8"]}
        )
        print(f"auto: {systems['auto'].backend_choice.summary()}")
        print(f"int8: {systems['int8'].int8_check.summary()}")
        print(f"int8 file: {systems['int8 file'].int8_check.summary()}")
    peak = matmul_peak_gflops(device=args.device)
    import sentence_transformers
    import transformers

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, {args.threads} threads")
    print(f"CPU flags: {cpu_flags()}")
    if args.device != "cpu":
        print(f"device: {torch.cuda.get_device_name(args.device)}, fp32 peak below is that device's (TF32 off)")
    print(
        f"versions: embedstack {embedstack.__version__}, sentence-transformers {sentence_transformers.__version__}, "
        f"transformers {transformers.__version__}, torch {torch.__version__}"
    )
    print(
        f"fp32 matmul peak (2048^3 sgemm, same run): {peak:.1f} GFLOP/s; "
        f"batch_size {BATCH_SIZE}; medians of {args.runs} runs\n"
    )
    print("| corpus | system | texts/s | real tokens/s | vs reference | padding | vectors | useful FLOP/s of peak |")
    print("|---|---|---|---|---|---|---|---|")
    names = list(CORPORA) if args.corpus == "all" else [args.corpus]
    notes: list[str] = []
    for name in names:
        for row in bench_corpus(name, CORPORA[name](), reference, systems, args.runs, peak, notes):
            print(row, flush=True)
    print("\n" + "\n".join(notes))


if __name__ == "__main__":
    main()
