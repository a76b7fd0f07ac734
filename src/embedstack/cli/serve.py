"""``embedstack serve``: run the embedding (reranking, sparse embedding) server until SIGTERM or Ctrl-C.

The model folder's kind decides what is served: a SentenceTransformer answers the embedding routes, a CrossEncoder
(a folder saved as one, or a plain Hugging Face ``...ForSequenceClassification`` folder) the rerank routes, a
SparseEncoder (a folder saved as one) ``/embed_sparse``. The startup line names the kind. Several ``--model`` (or
``--models-file``) serve several models from one process, each with its own queue, routed by the requests'
``model`` field (cli/served_models.py).
"""

from __future__ import annotations

import argparse
import sys

from embedstack.cli.model_options import add_model_arguments, load_model, model_class
from embedstack.cli.served_models import served_models
from embedstack.extras import extra_module
from embedstack.kinds import MODEL_KINDS

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
    parser.add_argument(
        "--model-name", action="append",
        help="the name clients send as 'model' (default: the model folder's name); one per --model, in order",
    )  # fmt: skip
    parser.add_argument(
        "--models-file", help="serve the models a TOML or JSON file lists (name, path, backend, kind per model)"
    )
    parser.add_argument("--max-queue-tokens", type=int, help="tokens that may wait; beyond them requests get 429")
    parser.add_argument("--max-batch-tokens", type=int, help="padded tokens per forward pass")
    parser.add_argument("--batch-size", type=int, help="rows per forward pass")
    parser.add_argument("--max-payload-bytes", type=int, help="largest request body")
    parser.add_argument("--max-inputs", type=int, dest="max_inputs_per_request", help="most inputs per request")
    parser.add_argument("--max-chars", type=int, dest="max_chars_per_input", help="longest input in characters")
    add_model_arguments(parser, repeatable=True)


def run(args: argparse.Namespace) -> int:
    """Load the models and serve them in the foreground."""
    server = extra_module("embedstack.server", SERVER_EXTRA, "server")  # the core never imports it
    entries = served_models(args)
    settings = server.ServerSettings.from_env(
        host=args.host,
        port=args.port,
        api_key=args.api_key,
        model_name=entries[0].name,
        max_chars_per_input=args.max_chars_per_input,
        **{key: getattr(args, key) for key in LIMITS},
    )
    loaded = []
    for entry in entries:  # each the kind its folder holds (or the file's 'kind', checked)
        kind = MODEL_KINDS[entry.kind] if entry.kind else None
        if kind is not None and (found := model_class(entry.options, None)[0]) is not kind:
            raise ValueError(
                f"{entry.source or entry.path} key 'kind' is {entry.kind!r}, but {entry.path} holds a "
                f"{found.__name__}; set 'kind' to {found.__name__!r} or leave it out."
            )
        loaded.append(server.NamedModel(entry.name, load_model(entry.options, kind=kind), frozenset(entry.aliases)))
    described = ", ".join(f"{named.name} ({named.model.model_type}, {named.model.get_backend()})" for named in loaded)

    def ready(url: str) -> None:
        auth = "API key required" if settings.api_key else "no API key"
        print(f"embedstack serve: {described} at {url} ({auth}; docs at {url}/docs)", file=sys.stderr, flush=True)

    if len(loaded) == 1:
        server.serve(loaded[0].model, settings, aliases=loaded[0].aliases, ready=ready)
    else:
        server.serve(loaded, settings, ready=ready)
    return 0
