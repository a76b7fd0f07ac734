"""embedstack's SparseEncoder vs sentence-transformers 6.2's: encode speed, and peak memory against a dense model.

    .venv/bin/python benchmarks/sparse_throughput.py speed --runs 3            # MiniLM-sized MLM, STS-B and Wikipedia
    .venv/bin/python benchmarks/sparse_throughput.py memory --texts 10000      # BERT-base-sized MLM, peak RSS

speed: all-MiniLM-L6-v2's backbone with a new, random masked-language-model head (BertForMaskedLM; speed does not
depend on the weights), loaded by both libraries from one folder; the STS Benchmark test sentences and 1,000
English Wikipedia extracts; interleaved runs, medians; the reference at batch_size 32, embedstack at its default
(token budget); both with max_active_dims=256, as a trained SPLADE model's few hundred non-zero weights (a random
head gives ~20,000).

memory: a random BERT-base-sized MLM (12 layers, width 768), each system in a fresh process encoding the first
``--texts`` extracts: peak RSS (VmHWM) of the dense model (the same backbone with mean pooling, embedstack), of
embedstack's SparseEncoder and of the reference's. The CPU's flags are printed with the results.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch
from corpora import sts_test, wiki
from encode_throughput import cpu_flags

from embedstack.defaults import default_model_path

ACTIVE_DIMS = 256


def minilm_mlm(folder: Path) -> Path:
    """all-MiniLM-L6-v2's backbone with a random MLM head, as a plain Hugging Face folder."""
    from transformers import AutoTokenizer, BertForMaskedLM

    torch.manual_seed(0)
    BertForMaskedLM.from_pretrained(str(default_model_path())).save_pretrained(folder)
    AutoTokenizer.from_pretrained(str(default_model_path())).save_pretrained(folder)
    return folder


def base_mlm(folder: Path) -> Path:
    """A random BERT-base-sized MLM (12 x 768, 30,522 tokens) with the MiniLM tokenizer."""
    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM

    torch.manual_seed(0)
    BertForMaskedLM(BertConfig()).save_pretrained(folder)
    AutoTokenizer.from_pretrained(str(default_model_path())).save_pretrained(folder)
    return folder


def speed(runs: int) -> None:
    from sentence_transformers import SparseEncoder as Reference

    from embedstack import SparseEncoder

    with tempfile.TemporaryDirectory() as staging:
        folder = str(minilm_mlm(Path(staging) / "mlm"))
        systems = {"reference": Reference(folder, device="cpu"), "embedstack": SparseEncoder(folder, device="cpu")}
        print("| corpus | system | texts/s | vs reference | max abs diff to reference |")
        print("|---|---|---|---|---|")
        for name, texts in {"sts": sts_test(), "wiki 1000": wiki(1000)}.items():
            times: dict[str, list[float]] = {system: [] for system in systems}
            vectors = {}
            for _ in range(runs):  # interleaved
                for system, model in systems.items():
                    options = {"batch_size": 32} if system == "reference" else {}
                    start = time.perf_counter()
                    vectors[system] = model.encode(texts, max_active_dims=ACTIVE_DIMS, **options)
                    times[system].append(time.perf_counter() - start)
            base = statistics.median(times["reference"])
            for system in systems:
                seconds = statistics.median(times[system])
                diff = float((vectors[system].to_dense() - vectors["reference"].to_dense()).abs().max())
                print(f"| {name} | {system} | {len(texts) / seconds:,.1f} | {base / seconds:.2f}x | {diff:.1e} |")


def one_run(system: str, folder: str, texts: int) -> None:
    """Encode in this process and print its peak RSS (a child of ``memory``)."""
    corpus = wiki(texts)
    if system == "dense":
        from embedstack import SentenceTransformer

        SentenceTransformer(folder, device="cpu").encode(corpus)
    elif system == "embedstack":
        from embedstack import SparseEncoder

        SparseEncoder(folder, device="cpu").encode(corpus, max_active_dims=ACTIVE_DIMS)
    else:
        from sentence_transformers import SparseEncoder as Reference

        Reference(folder, device="cpu").encode(corpus, max_active_dims=ACTIVE_DIMS, batch_size=32)
    status = Path("/proc/self/status").read_text()
    peak = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
    print(json.dumps({"system": system, "peak_mb": peak / 1024}))


def memory(texts: int) -> None:
    with tempfile.TemporaryDirectory() as staging:
        folder = str(base_mlm(Path(staging) / "mlm"))
        print(f"| system ({texts} extracts, BERT-base-sized MLM) | peak RSS (MB) | seconds |")
        print("|---|---|---|")
        for system in ("dense", "embedstack", "reference"):
            start = time.perf_counter()
            done = subprocess.run(
                [sys.executable, __file__, "one", system, folder, str(texts)],
                capture_output=True,
                text=True,
                check=True,
            )
            result = json.loads(done.stdout.strip().splitlines()[-1])
            print(f"| {system} | {result['peak_mb']:,.0f} | {time.perf_counter() - start:.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["speed", "memory", "one"])
    parser.add_argument("rest", nargs="*")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--texts", type=int, default=10000)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    warnings.simplefilter("ignore")
    torch.set_num_threads(args.threads)
    if args.what == "one":
        one_run(args.rest[0], args.rest[1], int(args.rest[2]))
        return
    print(f"CPU flags: {cpu_flags()}; {args.threads} threads")
    if args.what == "speed":
        speed(args.runs)
    else:
        memory(args.texts)


if __name__ == "__main__":
    main()
