"""Peak memory of streaming: encode_iter over N texts in a fresh process, for N = 10,000 and 100,000.

    .venv/bin/python benchmarks/streaming_rss.py

Texts are STS-B sentences cycled with their index appended (so dedupe does not shrink the work); vectors
are consumed as they come (summed), as a writer to disk would.
"""

from __future__ import annotations

import subprocess
import sys

CHILD = """
import resource, sys, time, numpy as np
from embedstack import SentenceTransformer
from embedstack.defaults import default_model_path
from embedstack.evaluation.datasets import sts_benchmark
n = int(sys.argv[1])
base = sts_benchmark("train").sentences1
texts = (f"{base[i % len(base)]} #{i}" for i in range(n))
model = SentenceTransformer(str(default_model_path()), backend="auto")
start = time.perf_counter()
total = np.zeros(model.get_embedding_dimension(), dtype=np.float64)
count = 0
for vector in model.encode_iter(texts, batch_size=32, window_size=4096):
    total += vector
    count += 1
seconds = time.perf_counter() - start
print(count, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024, round(count / seconds, 1))
"""


def main() -> None:
    print("| texts | peak RSS MB | texts/s |")
    print("|---|---|---|")
    for n in (10_000, 100_000):
        out = subprocess.run([sys.executable, "-c", CHILD, str(n)], capture_output=True, text=True, check=True)
        count, rss, rate = out.stdout.split()
        print(f"| {int(count):,} | {rss} | {rate} |", flush=True)


if __name__ == "__main__":
    main()
