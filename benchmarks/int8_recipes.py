"""Quality of each int8 ONNX recipe on all-MiniLM-L6-v2: lowest and median cosine to the fp32 vectors per corpus,
and STS Benchmark test Spearman.

    .venv/bin/python benchmarks/int8_recipes.py                          # int8, qint8_avx2, quint8_avx2
    .venv/bin/python benchmarks/int8_recipes.py --recipes int8 --rows 32  # one recipe, 32 rows per pass

Every recipe quantizes one fp32 export with what ``export_onnx(quantize=...)`` runs (SmoothQuant on the built-in
calibration texts) and is compared with the fp32 export of the same run, on the whole benchmark corpora. No
timing: see encode_throughput.py.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import warnings
from pathlib import Path

import numpy as np
from corpora import CORPORA
from encode_throughput import cpu_flags

from embedstack import SentenceTransformer
from embedstack.backends.cpu_features import int8_recipe_for_this_cpu
from embedstack.backends.onnx_quantize import QUANTIZED_FILES, quantize_int8
from embedstack.defaults import default_model_path
from embedstack.evaluation.datasets import sts_benchmark
from embedstack.evaluation.sts import evaluate_sts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", default="int8,qint8_avx2,quint8_avx2", help="comma-separated QUANTIZED_FILES keys")
    parser.add_argument("--rows", type=int, help="rows per pass (default: the token budget decides)")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    warnings.simplefilter("ignore")
    print(f"CPU flags: {cpu_flags()}; int8 mode's recipe here: {int8_recipe_for_this_cpu()}")
    model = SentenceTransformer(str(default_model_path()), device="cpu")
    texts = {name: corpus() for name, corpus in CORPORA.items()}
    pairs = sts_benchmark("test")
    with tempfile.TemporaryDirectory(prefix="int8-recipes-") as staging:
        folder = Path(staging) / "fp32"
        model.export_onnx(folder)
        fp32 = SentenceTransformer(str(folder), device="cpu", backend="onnx")
        reference = {name: fp32.encode(corpus, batch_size=args.rows) for name, corpus in texts.items()}
        spearman = evaluate_sts(fp32, pairs).cosine_spearman
        print(f"| recipe | {' | '.join(texts)} (lowest / median cosine) | STS-B Spearman |")
        print(f"|---|{'---|' * len(texts)}---|")
        print(f"| fp32 export | {' | '.join('1 / 1' for _ in texts)} | {spearman:.2f} |")
        for recipe in args.recipes.split(","):
            exported = folder / "onnx" / "model.onnx"  # the fp32 export above, quantized in place
            quantize_int8(exported, exported.with_name(QUANTIZED_FILES[recipe]), model[0], recipe)
            int8 = SentenceTransformer(
                str(folder), device="cpu", backend="onnx", model_kwargs={"file_name": QUANTIZED_FILES[recipe]}
            )
            cells = []
            for name, corpus in texts.items():
                ours, ref = int8.encode(corpus, batch_size=args.rows), reference[name]
                cosines = (ours * ref).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(ref, axis=1)
                cells.append(f"{cosines.min():.4f} / {np.median(cosines):.5f}")
            spearman = evaluate_sts(int8, pairs, batch_size=args.rows).cosine_spearman
            print(f"| {recipe} | {' | '.join(cells)} | {spearman:.2f} |", flush=True)


if __name__ == "__main__":
    main()
