"""The ``embedstack`` command: encode texts, describe a model, evaluate on STS Benchmark, serve over HTTP."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from embedstack._version import __version__
from embedstack.backends.int8_mode import INT8_OPTION
from embedstack.backends.onnx_optimize import OPTIMIZED_FILES
from embedstack.backends.onnx_quantize import QUANTIZED_FILES
from embedstack.cache import EmbeddingStore
from embedstack.chunking import LONG_INPUT_MODES, ChunkEmbeddings, LongInputs
from embedstack.chunking.options import DEFAULT_OVERLAP
from embedstack.defaults import DEFAULT_MODEL_NAME, resolve_cli_model
from embedstack.errors import EmbedstackError, MissingExtraError
from embedstack.evaluation.datasets import sts_benchmark
from embedstack.evaluation.sts import evaluate_sts
from embedstack.model import SentenceTransformer
from embedstack.modules.transformer.backends import backend_names

SAMPLE_SENTENCES = [
    "The weather is lovely today.",
    "It's so sunny outside!",
    "He drove to the stadium.",
]
PROGRESS_THRESHOLD = 256  # inputs; show a progress bar above this
SERVER_EXTRA = ("fastapi", "uvicorn", "orjson", "prometheus_client")  # what embedstack.server imports


def _add_model_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", "-m", help="model folder or Hub id (default: the embedded all-MiniLM-L6-v2)")
    parser.add_argument("--device", help="cpu, cuda, ... (default: the best available)")
    parser.add_argument("--trust-remote-code", action="store_true", help="allow code from the model folder to run")
    parser.add_argument(
        "--backend",
        choices=backend_names(),
        default="auto",
        help="auto (default): of the backends that run the folder exactly (transformers on torch; native for plain "
        "BERT folders; onnx where the folder holds its export), the one measured fastest on this machine (measured "
        "once per model and machine, remembered in ~/.cache/embedstack)",
    )
    parser.add_argument(
        "--onnx-file",
        help="run this ONNX file of the model folder, e.g. model_qint8_avx512_vnni.onnx (written by 'embedstack export "
        "onnx --quantize int8'); implies --backend onnx",
    )
    parser.add_argument(
        "--int8",
        action="store_true",
        help="quantize the backbone to int8 on CPU at load: faster, nearly the same vectors (self-checked)",
    )
    parser.add_argument(
        "--int8-min-cosine",
        type=float,
        help="with --int8 or an int8 --onnx-file: the lowest cosine to fp32 the self-check accepts (default 0.99)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``embedstack`` command and its subcommands."""
    parser = argparse.ArgumentParser(prog="embedstack", description="Sentence embeddings from the command line.")
    parser.add_argument("--version", action="version", version=f"embedstack {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    encode = commands.add_parser("encode", help="encode texts into vectors")
    encode.add_argument("texts", nargs="*", help="texts to encode (default: three sample sentences)")
    encode.add_argument(
        "--input", "-i", type=Path, nargs="+",
        help="a .txt (one text per line), .jsonl or .parquet file; several, a folder or a quoted glob ('docs/*.jsonl') "
        "for Parquet shards",
    )  # fmt: skip
    encode.add_argument("--field", "--column", dest="field", default="text", help="the .jsonl field or Parquet column")
    encode.add_argument("--output", "-o", type=Path, help="a .npy or .jsonl file, or a folder for Parquet shards")
    encode.add_argument("--batch-size", type=int, help="cap on rows per pass (default: the token budget decides)")
    encode.add_argument("--normalize", action="store_true", help="L2-normalize the vectors")
    encode.add_argument("--prompt-name", help="a prompt saved with the model, e.g. query")
    encode.add_argument("--prompt", help="a prompt string to prepend")
    encode.add_argument("--precision", default="float32", choices=["float32", "int8", "uint8", "binary", "ubinary"])
    encode.add_argument("--truncate-dim", type=int)
    encode.add_argument("--no-progress", action="store_true", help="never show a progress bar")
    encode.add_argument("--cache", type=Path, help="a persistent embedding cache file (SQLite), created if missing")
    encode.add_argument(
        "--long-inputs", choices=LONG_INPUT_MODES, default="truncate",
        help="texts longer than the model's window: truncate (default), chunk (pool windows into one vector), "
        "chunks or late (one vector per chunk, with its character span; --output must be .jsonl)",
    )  # fmt: skip
    encode.add_argument(
        "--chunk-overlap", type=int, default=DEFAULT_OVERLAP, help="tokens neighbouring chunk windows share"
    )
    encode.add_argument("--chunk-pooling", choices=["mean", "max"], default="mean", help="how 'chunk' pools")
    _add_model_args(encode)
    _add_shard_args(encode)

    cache = commands.add_parser("cache", help="describe or empty an embedding cache file")
    cache.add_argument("action", choices=["info", "clear"])
    cache.add_argument("path", type=Path, help="the cache file")

    info = commands.add_parser("info", help="describe a model: modules, dimensions, prompts, similarity")
    info.add_argument("model", nargs="?", help="model folder or Hub id (default: the embedded model)")
    info.add_argument("--trust-remote-code", action="store_true")
    info.add_argument("--backend", choices=backend_names(), default="auto")
    info.add_argument("--onnx-file", help="describe the model running this ONNX file of its folder (backend onnx)")
    info.add_argument("--int8-min-cosine", type=float, help="with an int8 --onnx-file: the self-check's threshold")

    export = commands.add_parser("export", help="save a model with its backbone exported (ONNX)")
    export.add_argument("format", choices=["onnx"], help="onnx: onnx/model.onnx beside the saved modules")
    export.add_argument("model", help="model folder or Hub id")
    export.add_argument("output", type=Path, help="the folder to write")
    export.add_argument("--quantize", choices=list(QUANTIZED_FILES), help="also write an int8 file (int8: ours)")
    export.add_argument("--optimize", choices=list(OPTIMIZED_FILES), help="also write onnx/model_O<n>.onnx")
    export.add_argument(
        "--calibration", type=Path,
        help="texts to calibrate --quantize on: a .txt file (one per line) or .jsonl ('text' field); default: built-in",
    )  # fmt: skip
    export.add_argument(
        "--min-cosine", type=float,
        help="with --quantize: the lowest cosine to fp32 the self-check accepts on this machine (default 0.99)",
    )  # fmt: skip
    export.add_argument("--trust-remote-code", action="store_true")

    evaluate = commands.add_parser("eval", help="evaluate a model on a benchmark")
    evaluate.add_argument("task", choices=["sts"], help="sts: cosine Spearman on the STS Benchmark")
    evaluate.add_argument("--split", default="test", choices=["train", "dev", "test"])
    evaluate.add_argument("--batch-size", type=int, help="cap on rows per pass (default: the token budget decides)")
    _add_model_args(evaluate)
    _add_serve_parser(commands)
    return parser


def _add_shard_args(encode: argparse.ArgumentParser) -> None:
    shards = encode.add_argument_group("Parquet shards (--output FOLDER)")
    shards.add_argument("--id-column", help="a .jsonl field or Parquet column to keep beside each vector")
    shards.add_argument("--shard-rows", type=int, default=65536, help="rows per shard file (default: 65536)")
    shards.add_argument("--ray", action="store_true", help="encode on a Ray cluster (pip install 'embedstack[ray]')")
    shards.add_argument("--address", help="the Ray cluster to join, e.g. auto (default: start one on this machine)")
    shards.add_argument("--actors", type=int, help="model actors (default: one per CPU, or per GPU)")
    shards.add_argument("--cpus-per-actor", type=float, help="CPUs (torch threads) per actor (default: 1)")
    shards.add_argument("--gpus-per-actor", type=float, default=0.0, help="GPUs per actor (default: 0)")
    shards.add_argument("--rows-per-batch", type=int, default=1024, help="rows per batch an actor takes (Ray)")


def _add_serve_parser(commands: Any) -> None:
    serve = commands.add_parser("serve", help="serve the model over HTTP (OpenAI /v1/embeddings, TEI /embed)")
    serve.add_argument("--host", default="127.0.0.1", help="interface to bind (default: 127.0.0.1, this machine only)")
    serve.add_argument("--port", type=int, default=8000, help="TCP port (default: 8000; 0 picks a free one)")
    serve.add_argument(
        "--api-key", help="require 'Authorization: Bearer KEY' (default: $EMBEDSTACK_API_KEY; the variable keeps the "
        "key out of the process list)",
    )  # fmt: skip
    serve.add_argument("--model-name", help="the name clients send as 'model' (default: the model folder's name)")
    serve.add_argument("--max-queue-tokens", type=int, help="tokens that may wait; beyond them requests get 429")
    serve.add_argument("--max-batch-tokens", type=int, help="padded tokens per forward pass")
    serve.add_argument("--batch-size", type=int, help="rows per forward pass")
    serve.add_argument("--max-payload-bytes", type=int, help="largest request body")
    serve.add_argument("--max-inputs", type=int, dest="max_inputs_per_request", help="most inputs per request")
    serve.add_argument("--max-chars", type=int, dest="max_chars_per_input", help="longest input in characters")
    _add_model_args(serve)


def main(argv: list[str] | None = None) -> int:
    """Run the command; returns the exit status (2 with a one-line message for errors embedstack expects)."""
    args = build_parser().parse_args(argv)
    # The command shows its own progress bars; silence the Hub's and transformers' "Loading weights" bars.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        commands = {"encode": cmd_encode, "info": cmd_info, "eval": cmd_eval, "export": cmd_export, "serve": cmd_serve,
                    "cache": cmd_cache}  # fmt: skip
        return commands[args.command](args)
    except (EmbedstackError, OSError, ValueError) as exc:
        print(f"embedstack {args.command}: error: {exc}", file=sys.stderr)
        return 2


def _load_model(args: argparse.Namespace, device: str | None = None) -> SentenceTransformer:
    model = SentenceTransformer(
        resolve_cli_model(args.model),
        device=device or getattr(args, "device", None),
        trust_remote_code=args.trust_remote_code,
        cache=getattr(args, "cache", None),
        **_backend_options(args),
    )
    if getattr(args, "int8", False):
        model.quantize("int8", min_cosine=getattr(args, "int8_min_cosine", None))
    return model


def _backend_options(args: argparse.Namespace) -> dict[str, Any]:
    """``backend`` (and ``model_kwargs``) for --backend, --onnx-file and --int8."""
    int8, onnx_file = getattr(args, "int8", False), getattr(args, "onnx_file", None)
    if int8 and onnx_file:
        raise ValueError("--int8 quantizes the model at load and --onnx-file runs an exported file: choose one.")
    if int8:
        return {"backend": "torch"}  # quantize() exports and quantizes the torch backbone
    if onnx_file:
        if args.backend not in ("auto", "onnx"):
            raise ValueError(f"--onnx-file runs the onnx backend; it cannot be combined with --backend {args.backend}.")
        model_kwargs: dict[str, Any] = {"file_name": onnx_file}
        if getattr(args, "int8_min_cosine", None) is not None:
            model_kwargs[INT8_OPTION] = args.int8_min_cosine
        return {"backend": "onnx", "model_kwargs": model_kwargs}
    return {"backend": args.backend}


def _encode_options(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of ``encode`` that ``embedstack encode``'s options set."""
    return dict(
        batch_size=args.batch_size,
        normalize_embeddings=args.normalize,
        prompt_name=args.prompt_name,
        prompt=args.prompt,
        truncate_dim=args.truncate_dim,
        long_inputs=LongInputs(args.long_inputs, overlap=args.chunk_overlap, pooling=args.chunk_pooling),
    )


def iter_texts(path: Path, field: str) -> Iterator[str]:
    """Texts from a .txt file (one per line) or a .jsonl file (``field`` of each object), read lazily."""
    with open(path, encoding="utf-8") as handle:
        if path.suffix != ".jsonl":
            for line in handle:
                yield line.rstrip("\n")
            return
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path} line {number} is not valid JSON ({exc.msg}).") from None
            if not isinstance(record, dict) or not isinstance(record.get(field), str):
                raise ValueError(f"{path} line {number} has no string field {field!r}; choose one with --field.")
            yield record[field]


def cmd_encode(args: argparse.Namespace) -> int:
    """``embedstack encode``: print vectors, or write them to .npy / .jsonl (streamed for large files)."""
    inputs = args.input or []
    if inputs and args.texts:
        raise ValueError("Give texts as arguments or with --input, not both.")
    if args.output is not None and (args.output.is_dir() or not args.output.suffix) or args.ray:
        return encode_to_folder(args)
    if args.output is not None and args.output.suffix not in (".npy", ".jsonl"):
        raise ValueError(f"--output {args.output} must end in .npy or .jsonl, or name a folder for Parquet shards.")
    if len(inputs) > 1 or any(path.is_dir() or path.suffix == ".parquet" or "*" in str(path) for path in inputs):
        raise ValueError("Several files, a folder or Parquet input are written as Parquet shards: give -o FOLDER.")
    args.input = inputs[0] if inputs else None
    options = _encode_options(args)
    per_chunk = options["long_inputs"].per_chunk
    if per_chunk and args.output is not None and args.output.suffix != ".jsonl":
        raise ValueError(f"--long-inputs {args.long_inputs} gives several vectors per text; write them to .jsonl.")
    if args.input is not None and args.output is not None and args.precision == "float32":
        count = sum(1 for _ in iter_texts(args.input, args.field))  # also validates the whole file first
        model = _load_model(args)
        vectors = model.encode_iter(iter_texts(args.input, args.field), **options)
        if count > PROGRESS_THRESHOLD and not args.no_progress:
            vectors = tqdm(vectors, total=count, desc="Encoding", unit="text")
        write_stream(args.output, iter_texts(args.input, args.field), vectors, count, model.get_embedding_dimension())
        print(f"Wrote {count} vectors to {args.output}", file=sys.stderr)
        return 0
    texts = list(iter_texts(args.input, args.field)) if args.input is not None else (args.texts or SAMPLE_SENTENCES)
    model = _load_model(args)
    progress = len(texts) > PROGRESS_THRESHOLD and not args.no_progress
    embeddings = model.encode(texts, precision=args.precision, show_progress_bar=progress, **options)
    if per_chunk:
        return _chunks_out(texts, embeddings, args.output)
    if args.output is not None:
        write_stream(args.output, texts, iter(embeddings), len(texts), embeddings.shape[1])
        print(f"Wrote {len(texts)} vectors of dimension {embeddings.shape[1]} to {args.output}", file=sys.stderr)
        return 0
    print_vectors(texts, embeddings, model)
    return 0


def extra_module(name: str, needs: tuple[str, ...], extra: str) -> Any:
    """Our module ``name``, imported only here, after checking that the packages it ``needs`` are installed."""
    missing = [package for package in needs if importlib.util.find_spec(package) is None]
    if missing:
        raise MissingExtraError(
            f"This needs the {extra} extra ({', '.join(missing)} not installed). Run: pip install 'embedstack[{extra}]'"
        )
    return importlib.import_module(name)


def encode_to_folder(args: argparse.Namespace) -> int:
    """``embedstack encode -i CORPUS -o FOLDER [--ray]``: Parquet shards, resumable (see embedstack.shards)."""
    if args.output is None or args.input is None:
        raise ValueError("Parquet shards need --input (files, a folder or a glob) and --output FOLDER.")
    corpus = extra_module("embedstack.corpus", ("pyarrow",), "parquet")
    shards = extra_module("embedstack.shards", ("pyarrow",), "parquet")
    sources = corpus.expand_inputs(args.input, args.field, args.id_column)
    options = _encode_options(args)
    if options["long_inputs"].per_chunk:
        raise ValueError(f"--long-inputs {args.long_inputs} gives several vectors per text; Parquet shards hold one.")
    counts = None if args.no_progress and not args.ray else shards.row_counts(sources)  # the Ray job needs them
    total = None if args.no_progress or counts is None else sum(counts)
    bar = None if total is None else tqdm(total=total, desc="Encoding", unit="text", disable=total < PROGRESS_THRESHOLD)
    name = resolve_cli_model(args.model)
    common = dict(shard_rows=args.shard_rows, precision=args.precision, options=options, progress=bar)
    try:
        if args.ray:
            on_ray = extra_module("embedstack.ray", ("ray", "pyarrow"), "ray")
            if args.int8:
                raise ValueError(
                    "--int8 is not available with --ray (each actor would quantize again): write the int8 file once "
                    f"with 'embedstack export onnx MODEL OUT --quantize int8', then pass -m OUT --onnx-file "
                    f"{QUANTIZED_FILES['int8']}."
                )
            started = on_ray.connect(args.address)
            print(f"Ray cluster up in {started:.1f} s" if started else "Ray: this process's cluster", file=sys.stderr)
            load = {"device": args.device, "trust_remote_code": args.trust_remote_code, **_backend_options(args)}
            report = on_ray.encode_to_shards_on_ray(
                name, sources, args.output, piece_rows=args.rows_per_batch, actors=args.actors,
                num_cpus=args.cpus_per_actor, num_gpus=args.gpus_per_actor, load_options=load, counts=counts, **common,
            )  # fmt: skip
        else:
            report = shards.encode_to_shards(_load_model(args), sources, args.output, model_name=name, **common)
    finally:
        if bar is not None:
            bar.close()
    print(
        f"Wrote {report.written} shards ({report.rows} rows, {report.seconds:.1f} s) to {args.output}; "
        f"{report.skipped} were already complete",
        file=sys.stderr,
    )
    return 0


def write_stream(path: Path, texts: Iterable[str], vectors: Iterable[Any], count: int, dimension: int | None) -> None:
    """Write vectors as they come, to .npy or .jsonl (``{"text", "embedding"}`` per line).

    The file appears only when complete: rows go to a hidden partial file that is renamed at the end.
    """
    temporary = path.with_name(f".{path.name}.partial")
    try:
        if path.suffix == ".npy":
            array = None
            for row, vector in enumerate(vectors):
                if array is None:
                    shape = (count, len(vector))
                    array = np.lib.format.open_memmap(temporary, mode="w+", dtype=vector.dtype, shape=shape)
                array[row] = vector
            if array is None:
                np.save(temporary, np.zeros((0, dimension or 0), dtype=np.float32))
            else:
                array.flush()
                del array
        else:
            with open(temporary, "w", encoding="utf-8") as handle:
                for text, vector in zip(texts, vectors):
                    handle.write(json.dumps(_record(text, vector)) + "\n")
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)


def _record(text: str, vector: Any) -> dict[str, Any]:
    """One .jsonl line: the text and its vector, or its chunks (span and vector each)."""
    if isinstance(vector, ChunkEmbeddings):
        chunks = [{"start": start, "end": end, "embedding": row.tolist()} for row, (start, end) in vector]
        return {"text": text, "chunks": chunks}
    return {"text": text, "embedding": vector.tolist()}


def _chunks_out(texts: list[str], chunked: list[ChunkEmbeddings], output: Path | None) -> int:
    """Write or print the per-chunk vectors of ``--long-inputs chunks`` / ``late``."""
    if output is not None:
        write_stream(output, texts, iter(chunked), len(texts), None)
        print(f"Wrote the chunk vectors of {len(texts)} texts to {output}", file=sys.stderr)
        return 0
    for text, chunks in zip(texts, chunked):
        print(f"{_clip(text, 40):<40}  {len(chunks)} chunks")
        for vector, (start, end) in chunks:
            head = " ".join(f"{value:+.4f}" for value in vector[:4])
            print(f"  [{start}:{end}] {_clip(text[start:end], 30):<30} [{head} ...]")
    return 0


def print_vectors(texts: list[str], embeddings: Any, model: Any) -> None:
    """Print the first vectors and, for float vectors, their similarity matrix."""
    shown = min(len(texts), 10)
    for text, vector in zip(texts[:shown], embeddings[:shown]):
        head = " ".join(f"{value:+.4f}" for value in vector[:6])
        print(f"{_clip(text, 40):<40}  [{head} ...]  dim={len(vector)}")
    if len(texts) > shown:
        print(f"... and {len(texts) - shown} more")
    if 2 <= shown and embeddings.dtype.kind == "f":
        scores = model.similarity(embeddings[:shown], embeddings[:shown])
        print(f"\nSimilarity ({model.similarity_fn_name}):")
        print(" " * 42 + "".join(f"{i:>8}" for i in range(shown)))
        for i in range(shown):
            row = "".join(f"{float(scores[i, j]):8.4f}" for j in range(shown))
            print(f"{i:>2} {_clip(texts[i], 38):<38} {row}")


def _clip(text: str, width: int) -> str:
    text = text.replace("\n", " ")
    return text if len(text) <= width else text[: width - 3] + "..."


def cmd_info(args: argparse.Namespace) -> int:
    """``embedstack info``: the model's modules, dimensions, modalities, prompts and similarity."""
    model = _load_model(args, "cpu")
    print(model)
    print(f"Embedding dimension: {model.get_embedding_dimension()}")
    print(f"Max sequence length: {model.max_seq_length}")
    print(f"Modalities: {', '.join('+'.join(m) if isinstance(m, tuple) else m for m in model.modalities)}")
    message = getattr(model[0], "modality_config", {}).get("message")
    if message:
        print(f"Message format: {message.get('format', 'auto')}")
    print(f"Backend: {model.get_backend()}")
    if model.backend_choice is not None:
        print(f"Backend choice (auto): {model.backend_choice.summary()}")
    if model.int8_check is not None:
        print(f"int8: {model.int8_check.summary()}")
    print(f"Similarity function: {model.similarity_fn_name}")
    prompts = {name: text for name, text in model.prompts.items()}
    print(f"Prompts: {json.dumps(prompts, ensure_ascii=False)}")
    print(f"Default prompt: {model.default_prompt_name}")
    if model.truncate_dim:
        print(f"Truncate dim: {model.truncate_dim}")
    return 0


def cmd_cache(args: argparse.Namespace) -> int:
    """``embedstack cache info|clear PATH``: what an embedding cache holds, or empty it."""
    if not args.path.is_file():
        raise ValueError(f"{args.path} is not a file; an embedding cache is created by encode --cache PATH.")
    store = EmbeddingStore(args.path)
    if args.action == "clear":
        print(f"Deleted {store.clear()} vectors from {args.path}")
        return 0
    info = store.info()
    print(f"Cache: {info.path}")
    print(f"Vectors: {info.vectors} ({info.vector_bytes / 1e6:.1f} MB of vectors, file {info.file_bytes / 1e6:.1f} MB)")
    print(f"Model and settings groups: {info.settings}")
    print(f"Size cap: {info.max_bytes / 1e6:.0f} MB (least recently used vectors are evicted past it)")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """``embedstack export onnx MODEL OUT``: save the model with an ONNX export of its backbone."""
    model = SentenceTransformer(
        resolve_cli_model(args.model), device="cpu", trust_remote_code=args.trust_remote_code, backend="torch"
    )
    texts = None if args.calibration is None else list(iter_texts(args.calibration, "text"))
    folder = model.export_onnx(
        args.output, quantize=args.quantize, optimize=args.optimize, calibration_texts=texts, min_cosine=args.min_cosine
    )
    written = sorted(path.name for path in (folder / "onnx").iterdir())
    print(f"Wrote {folder} with onnx/{', onnx/'.join(written)}", file=sys.stderr)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    """``embedstack eval sts``: cosine Spearman on an STS Benchmark split."""
    pairs = sts_benchmark(args.split)
    model = _load_model(args)
    result = evaluate_sts(model, pairs, batch_size=args.batch_size, show_progress_bar=True)
    print(f"STS Benchmark {args.split} ({result.pairs} pairs): cosine Spearman {result.cosine_spearman:.2f}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """``embedstack serve``: run the embedding server until SIGTERM or Ctrl-C."""
    server = extra_module("embedstack.server", SERVER_EXTRA, "server")  # the core never imports it
    default = args.model is None or resolve_cli_model(args.model) != args.model
    name = args.model_name or (DEFAULT_MODEL_NAME if default else Path(args.model.rstrip("/")).name)
    limits = ("max_queue_tokens", "max_batch_tokens", "batch_size", "max_payload_bytes", "max_inputs_per_request")
    settings = server.ServerSettings.from_env(
        host=args.host,
        port=args.port,
        api_key=args.api_key,
        model_name=name,
        max_chars_per_input=args.max_chars_per_input,
        **{key: getattr(args, key) for key in limits},
    )
    model = _load_model(args)
    aliases = {args.model} if args.model else {f"sentence-transformers/{DEFAULT_MODEL_NAME}"}

    def ready(url: str) -> None:
        auth = "API key required" if settings.api_key else "no API key"
        print(f"embedstack serve: {name} at {url} ({auth}; docs at {url}/docs)", file=sys.stderr, flush=True)

    server.serve(model, settings, aliases=aliases, ready=ready)
    return 0


if __name__ == "__main__":
    sys.exit(main())
