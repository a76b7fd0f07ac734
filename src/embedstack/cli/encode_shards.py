"""``embedstack encode -i CORPUS -o FOLDER [--ray]``: Parquet shards, resumable (see embedstack.shards).

Written in this process, or by model actors on a Ray cluster.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from tqdm.auto import tqdm

from embedstack.backends.onnx_quantize import QUANTIZED_FILES
from embedstack.cli.model_options import ENCODE_KINDS, backend_options, load_model
from embedstack.defaults import resolve_cli_model
from embedstack.extras import extra_module

PROGRESS_THRESHOLD = 256  # rows; show a progress bar above this


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The Parquet-shard and Ray options of ``embedstack encode``."""
    shards = parser.add_argument_group("Parquet shards (--output FOLDER)")
    shards.add_argument("--id-column", help="a .jsonl field or Parquet column to keep beside each vector")
    shards.add_argument("--shard-rows", type=int, default=65536, help="rows per shard file (default: 65536)")
    shards.add_argument("--ray", action="store_true", help="encode on a Ray cluster (pip install 'embedstack[ray]')")
    shards.add_argument("--address", help="the Ray cluster to join, e.g. auto (default: start one on this machine)")
    shards.add_argument("--actors", type=int, help="model actors (default: one per CPU, or per GPU)")
    shards.add_argument("--cpus-per-actor", type=float, help="CPUs (torch threads) per actor (default: 1)")
    shards.add_argument("--gpus-per-actor", type=float, default=0.0, help="GPUs per actor (default: 0)")
    shards.add_argument("--rows-per-batch", type=int, default=1024, help="rows per batch an actor takes (Ray)")


def run(args: argparse.Namespace, options: dict[str, Any]) -> int:
    """Write the corpus's vectors as Parquet shards under ``--output``; ``options`` are encode's keyword arguments."""
    if args.output is None or not args.input:
        raise ValueError("Parquet shards need --input (files, a folder or a glob) and --output FOLDER.")
    corpus = extra_module("embedstack.corpus", ("pyarrow",), "parquet")
    shards = extra_module("embedstack.shards", ("pyarrow",), "parquet")
    sources = corpus.expand_inputs(args.input, args.field, args.id_column)
    if "long_inputs" in options and options["long_inputs"].per_chunk:  # a SparseEncoder's options have none
        raise ValueError(f"--long-inputs {args.long_inputs} gives several vectors per text; Parquet shards hold one.")
    counts = None if args.no_progress and not args.ray else shards.row_counts(sources)  # the Ray job needs them
    total = None if args.no_progress or counts is None else sum(counts)
    bar = None if total is None else tqdm(total=total, desc="Encoding", unit="text", disable=total < PROGRESS_THRESHOLD)
    name = resolve_cli_model(args.model)
    common = dict(shard_rows=args.shard_rows, precision=args.precision, options=options, progress=bar)
    try:
        if args.ray:
            report = _on_ray(args, name, sources, counts, common)
        else:
            report = shards.encode_to_shards(
                load_model(args, kind=ENCODE_KINDS), sources, args.output, model_name=name, **common
            )
    finally:
        if bar is not None:
            bar.close()
    print(
        f"Wrote {report.written} shards ({report.rows} rows, {report.seconds:.1f} s) to {args.output}; "
        f"{report.skipped} were already complete",
        file=sys.stderr,
    )
    return 0


def _on_ray(args: argparse.Namespace, name: str, sources: Any, counts: Any, common: dict[str, Any]) -> Any:
    """The shards written by model actors on a Ray cluster (joined, or started on this machine)."""
    on_ray = extra_module("embedstack.ray", ("ray", "pyarrow"), "ray")
    if args.int8:
        raise ValueError(
            "--int8 is not available with --ray (each actor would quantize again): write the int8 file once "
            f"with 'embedstack export onnx MODEL OUT --quantize int8', then pass -m OUT --onnx-file "
            f"{QUANTIZED_FILES['int8']}."
        )
    started = on_ray.connect(args.address)
    print(f"Ray cluster up in {started:.1f} s" if started else "Ray: this process's cluster", file=sys.stderr)
    load = {"device": args.device, "trust_remote_code": args.trust_remote_code, **backend_options(args)}
    return on_ray.encode_to_shards_on_ray(
        name, sources, args.output, piece_rows=args.rows_per_batch, actors=args.actors, num_cpus=args.cpus_per_actor,
        num_gpus=args.gpus_per_actor, load_options=load, counts=counts, **common,
    )  # fmt: skip
