"""Fresh-process wall time of a one-text encode: `embedstack encode "hello"` vs the same job in
sentence-transformers 6.2. Interleaved runs, medians.

    .venv/bin/python benchmarks/startup.py --runs 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from embedstack.defaults import default_model_path

REFERENCE = (
    "from sentence_transformers import SentenceTransformer\n"
    "model = SentenceTransformer({path!r})\n"
    "print(model.encode(['hello']).shape)\n"
)


def wall(command: list[str]) -> float:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    cli = str(Path(sys.executable).with_name("embedstack"))
    commands = {
        "sentence-transformers": [sys.executable, "-c", REFERENCE.format(path=str(default_model_path()))],
        "embedstack encode hello": [cli, "encode", "hello"],
        "embedstack encode hello --backend torch": [cli, "encode", "hello", "--backend", "torch"],
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.runs):
        for name, command in commands.items():
            times[name].append(wall(command))
    base = statistics.median(times["sentence-transformers"])
    print(f"| command | median wall s ({args.runs} runs) | share of reference |")
    print("|---|---|---|")
    for name, values in times.items():
        print(f"| {name} | {statistics.median(values):.2f} | {statistics.median(values) / base:.0%} |")


if __name__ == "__main__":
    main()
