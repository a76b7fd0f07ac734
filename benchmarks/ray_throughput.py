"""Ray Data against the single-process Parquet job and encode_iter, on all 10,033 Wikipedia extracts.

    .venv/bin/python benchmarks/ray_throughput.py [--runs 1] [--actors 1 2] [--limit N]

In one run, on one Parquet corpus (id, text) and the embedded all-MiniLM-L6-v2 (native backend):
- encode_iter over the texts in memory (every core: torch threads = the cores),
- the CLI's Parquet job in this process (embedstack.shards.encode_to_shards, what `embedstack encode -i
  corpus.parquet -o out/` runs after loading the model): read Parquet, encode_iter, write shards,
- the CLI's Ray job (embedstack.ray.encode_to_shards_on_ray, what `--ray` runs) on a local cluster of as many
  CPUs as cores, with 1 and with 2 actors of one CPU each (torch threads = 1 per actor). Its time counts from
  the cluster being up: actor start-up and model loading included. The cluster's start-up is reported apart.
Throughput in texts/s; ratios: Parquet job / encode_iter and Ray / Parquet job. Paths alternate within a run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpora import wiki  # noqa: E402
from encode_throughput import cpu_flags  # noqa: E402

from embedstack import SentenceTransformer  # noqa: E402
from embedstack.corpus import expand_inputs  # noqa: E402
from embedstack.defaults import default_model_path  # noqa: E402
from embedstack.engine import available_cpus  # noqa: E402
from embedstack.shards import encode_to_shards  # noqa: E402

OPTIONS = {"batch_size": 32, "normalize_embeddings": False, "prompt_name": None, "prompt": None, "truncate_dim": None}


def time_encode_iter(model, texts: list[str]) -> float:
    start = time.perf_counter()
    count = sum(1 for _ in model.encode_iter(texts, batch_size=32))
    assert count == len(texts)
    return len(texts) / (time.perf_counter() - start)


def time_parquet_job(model, corpus: Path, out: Path, rows: int) -> float:
    sources = expand_inputs([corpus], "text", "id")
    report = encode_to_shards(model, sources, out, model_name=str(default_model_path()), options=OPTIONS)
    assert report.rows == rows
    return rows / report.seconds


def time_ray_job(corpus: Path, out: Path, rows: int, actors: int, cpus: float) -> float:
    from embedstack.ray import encode_to_shards_on_ray

    sources = expand_inputs([corpus], "text", "id")
    start = time.perf_counter()
    report = encode_to_shards_on_ray(
        str(default_model_path()), sources, out, options=OPTIONS, actors=actors, num_cpus=cpus,
        load_options={"backend": "auto"},
    )  # fmt: skip
    assert report.rows == rows
    return rows / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--actors", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--limit", type=int, help="only the first N extracts (a quick check)")
    parser.add_argument("--cpus-per-actor", type=float, default=1.0, help="CPUs (= torch threads) of each actor")
    args = parser.parse_args()
    texts = wiki(args.limit or 100_000)
    print(f"# {len(texts)} Wikipedia extracts; {available_cpus()} cores; {cpu_flags()}", flush=True)
    print(f"# load average before: {os.getloadavg()}", flush=True)
    import ray

    with tempfile.TemporaryDirectory() as folder:
        corpus = Path(folder) / "wiki.parquet"
        pq.write_table(pa.table({"id": list(range(len(texts))), "text": texts}), corpus)
        model = SentenceTransformer(str(default_model_path()), device="cpu", backend="auto")
        start = time.perf_counter()
        ray.init(num_cpus=available_cpus(), include_dashboard=False, log_to_driver=False)
        print(f"# Ray cluster start-up: {time.perf_counter() - start:.1f} s", flush=True)
        results: dict[str, list[float]] = {}
        for run in range(args.runs):
            results.setdefault("encode_iter", []).append(time_encode_iter(model, texts))
            out = Path(folder) / f"local-{run}"
            results.setdefault("parquet job", []).append(time_parquet_job(model, corpus, out, len(texts)))
            for actors in args.actors:
                out = Path(folder) / f"ray-{actors}-{run}"
                rate = time_ray_job(corpus, out, len(texts), actors, args.cpus_per_actor)
                results.setdefault(f"ray, {actors} actor(s)", []).append(rate)
            print(f"# run {run + 1}: " + ", ".join(f"{k} {v[-1]:.1f}" for k, v in results.items()), flush=True)
        ray.shutdown()
    median = {name: statistics.median(values) for name, values in results.items()}
    print("| path | texts/s | ratio |")
    print("|---|---|---|")
    print(f"| encode_iter | {median['encode_iter']:.1f} | 1.00x of encode_iter |")
    job = median["parquet job"]
    print(f"| Parquet job (CLI) | {job:.1f} | {job / median['encode_iter']:.2f}x of encode_iter |")
    for actors in args.actors:
        rate = median[f"ray, {actors} actor(s)"]
        print(
            f"| Ray, {actors} actor(s) x {args.cpus_per_actor:g} CPU | {rate:.1f} | "
            f"{rate / median['parquet job']:.2f}x of the Parquet job |"
        )
    print(f"# load average after: {os.getloadavg()}", flush=True)


if __name__ == "__main__":
    main()
