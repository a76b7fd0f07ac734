"""``embedstack serve``: run the embedding (reranking, sparse embedding) server until SIGTERM or Ctrl-C.

The model folder's kind decides what is served: a SentenceTransformer answers the embedding routes, a CrossEncoder
(a folder saved as one, or a plain Hugging Face ``...ForSequenceClassification`` folder) the rerank routes, a
SparseEncoder (a folder saved as one) ``/embed_sparse``. The startup line names the kind.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from embedstack.cli.extras import extra_module
from embedstack.cli.model_options import add_model_arguments, load_model
from embedstack.defaults import DEFAULT_MODEL_NAME, resolve_cli_model

SERVER_EXTRA = ("fastapi", "uvicorn", "orjson", "prometheus_client")  # what embedstack.server imports
LIMITS = ("max_queue_tokens", "max_batch_tokens", "batch_size", "max_payload_bytes", "max_inputs_per_request")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``embedstack serve``."""
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: 127.0.0.1, this machine only)")
    parser.add_argument("--port", type=int, default=8000, help="TCP port (default: 8000; 0 picks a free one)")
    parser.add_argument(
        "--api-key", help="require 'Authorization: Bearer KEY' (default: $EMBEDSTACK_API_KEY; the variable keeps the "
        "key out of the process list)",
    )  # fmt: skip
    parser.add_argument("--model-name", help="the name clients send as 'model' (default: the model folder's name)")
    parser.add_argument("--max-queue-tokens", type=int, help="tokens that may wait; beyond them requests get 429")
    parser.add_argument("--max-batch-tokens", type=int, help="padded tokens per forward pass")
    parser.add_argument("--batch-size", type=int, help="rows per forward pass")
    parser.add_argument("--max-payload-bytes", type=int, help="largest request body")
    parser.add_argument("--max-inputs", type=int, dest="max_inputs_per_request", help="most inputs per request")
    parser.add_argument("--max-chars", type=int, dest="max_chars_per_input", help="longest input in characters")
    add_model_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Load the model and serve it in the foreground."""
    server = extra_module("embedstack.server", SERVER_EXTRA, "server")  # the core never imports it
    default = args.model is None or resolve_cli_model(args.model) != args.model
    name = args.model_name or (DEFAULT_MODEL_NAME if default else Path(args.model.rstrip("/")).name)
    settings = server.ServerSettings.from_env(
        host=args.host,
        port=args.port,
        api_key=args.api_key,
        model_name=name,
        max_chars_per_input=args.max_chars_per_input,
        **{key: getattr(args, key) for key in LIMITS},
    )
    model = load_model(args, kind=None)  # the kind the folder holds: an embedding model or a reranker
    kind = model.model_type
    aliases = {args.model} if args.model else {f"sentence-transformers/{DEFAULT_MODEL_NAME}"}

    def ready(url: str) -> None:
        auth = "API key required" if settings.api_key else "no API key"
        print(f"embedstack serve: {name} ({kind}) at {url} ({auth}; docs at {url}/docs)", file=sys.stderr, flush=True)

    server.serve(model, settings, aliases=aliases, ready=ready)
    return 0
