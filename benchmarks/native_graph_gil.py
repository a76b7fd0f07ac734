"""The native backend's traced graph against its eager forward, alone and beside a thread that runs Python.

    .venv/bin/python benchmarks/native_graph_gil.py              # 6 s per cell, 3 runs, rounds of 6 sentences

Two model threads (one torch thread each, as the server's two CPU workers) run all-MiniLM-L6-v2 (native backend)
on rounds of STS-B sentences, eagerly or through the traced graph, with and without a third thread that runs
pure Python a quarter of the time (1 ms of work, 3 ms asleep: an event loop answering requests). Eager torch
takes the GIL back after every operation, so while the Python thread holds it both model threads stall at their
next operation; the traced graph runs every operation without the GIL. Reported: texts/s and the cores the
process kept busy (medians of the runs, cells interleaved), and the CPU's flags.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time

import torch
from encode_throughput import cpu_flags

from embedstack import SentenceTransformer
from embedstack.backends.native import NativeTransformer
from embedstack.backends.native_graph import GraphForward
from embedstack.defaults import default_model_path
from embedstack.evaluation.datasets import sts_benchmark


def busy_python(stop: threading.Event) -> None:
    while not stop.is_set():
        started = time.perf_counter()
        while time.perf_counter() - started < 0.001:
            sum(range(200))
        time.sleep(0.003)


def cell(module: NativeTransformer, batches: list[dict], traced: bool, python: bool, seconds: float) -> tuple:
    forward = GraphForward(module.model)
    forward._failed = not traced  # the eager forward, as when tracing is not possible
    stop = threading.Event()
    counts: list[int] = []

    def worker(offset: int) -> None:
        torch.set_num_threads(1)
        done = 0
        with torch.inference_mode():
            while not stop.is_set():
                features = batches[(offset + done) % len(batches)]
                forward(features["input_ids"], features["attention_mask"], features["token_type_ids"])
                done += 1
        counts.append(done)

    threads = [threading.Thread(target=worker, args=(k * len(batches) // 2,)) for k in range(2)]
    if python:
        threads.append(threading.Thread(target=busy_python, args=(stop,)))
    with torch.inference_mode():  # traced (or warmed up) before the window
        forward(batches[0]["input_ids"], batches[0]["attention_mask"], batches[0]["token_type_ids"])
    cpu, wall = time.process_time(), time.perf_counter()
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - wall
    texts = sum(counts) * len(batches[0]["input_ids"])
    return texts / wall, (time.process_time() - cpu) / wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--round", type=int, default=6, help="sentences per forward pass")
    args = parser.parse_args()
    print(f"CPU flags: {cpu_flags()}; torch {torch.__version__}", flush=True)
    model = SentenceTransformer(str(default_model_path()), backend="native", device="cpu")
    module = model[0]
    assert isinstance(module, NativeTransformer)
    pairs = sts_benchmark("test")
    texts = list(dict.fromkeys(pairs.sentences1 + pairs.sentences2))
    batches = [module.preprocess(texts[i : i + args.round]) for i in range(0, 600, args.round)]
    cells = [(traced, python) for python in (False, True) for traced in (False, True)]
    results: dict[tuple, list] = {key: [] for key in cells}
    for _ in range(args.runs):
        for traced, python in cells:
            results[(traced, python)].append(cell(module, batches, traced, python, args.seconds))
    print("| forward | Python thread beside | texts/s | cores busy |")
    print("|---|---|---|---|")
    for traced, python in cells:
        runs = results[(traced, python)]
        rate = statistics.median(r[0] for r in runs)
        cores = statistics.median(r[1] for r in runs)
        print(f"| {'traced' if traced else 'eager'} | {'yes' if python else 'no'} | {rate:.0f} | {cores:.2f} |")
    beside = {traced: statistics.median(r[0] for r in results[(traced, True)]) for traced in (False, True)}
    print(f"\ntraced / eager beside the Python thread: {beside[True] / beside[False]:.2f}x")


if __name__ == "__main__":
    main()
