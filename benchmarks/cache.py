"""The embedding cache: encode 10,000 Wikipedia extracts cold (empty cache) and warm (every vector cached).

    .venv/bin/python benchmarks/cache.py                 # 10,000 extracts, all-MiniLM-L6-v2
    .venv/bin/python benchmarks/cache.py --n 2000

Prints the cold and warm wall times, their ratio, whether the warm vectors are bit-identical to the cold ones
(and to an encode without a cache), and the cache file's size. A fresh model object is loaded for the warm run,
so the model fingerprint is computed from its weights as a new process would.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from corpora import wiki
from encode_throughput import cpu_flags

from embedstack import SentenceTransformer
from embedstack.cache import EmbeddingStore
from embedstack.defaults import default_model_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--backend", default="torch")
    args = parser.parse_args()
    texts = wiki(args.n)
    path = default_model_path()
    print(f"# embedding cache: {len(texts)} Wikipedia extracts, all-MiniLM-L6-v2, backend {args.backend}")
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; {cpu_flags()}; load average {os.getloadavg()[0]:.2f}")  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        cache = Path(folder) / "cache.sqlite"
        model = SentenceTransformer(str(path), device="cpu", backend=args.backend, cache=cache)
        start = time.perf_counter()
        cold = model.encode(texts, batch_size=32)
        cold_s = time.perf_counter() - start
        model.embedding_cache.close()
        warm_model = SentenceTransformer(str(path), device="cpu", backend=args.backend, cache=cache)
        start = time.perf_counter()
        warm = warm_model.encode(texts, batch_size=32)
        warm_s = time.perf_counter() - start
        info = EmbeddingStore(cache).info()
    uncached = SentenceTransformer(str(path), device="cpu", backend=args.backend).encode(texts[:500], batch_size=32)
    print(f"cold {cold_s:.2f} s ({len(texts) / cold_s:.0f} texts/s), warm {warm_s:.3f} s "
          f"({len(texts) / warm_s:.0f} texts/s): warm is {cold_s / warm_s:.1f}x faster")  # fmt: skip
    print(f"warm == cold bit for bit: {warm.tobytes() == cold.tobytes()}; first 500 == no cache (allclose 1e-6): "
          f"{np.allclose(cold[:500], uncached, atol=1e-6)}")  # fmt: skip
    print(f"cache: {info.vectors} vectors, {info.file_bytes / 1e6:.1f} MB on disk")


if __name__ == "__main__":
    main()
