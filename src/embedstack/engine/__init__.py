"""How encode schedules work: dedupe, tokenize once, batch by token length, prefetch, restore order.

Shared by ``SentenceTransformer.encode``, ``encode_iter``, the CLI and the server. The engine knows nothing about
file formats; it sees a model with ``preprocess_batch`` that it calls (see protocol.py).
"""

from embedstack.engine.pass_size import DEFAULT_MAX_BATCH_TOKENS, default_max_batch_tokens
from embedstack.engine.runner import EncodePlan, EncodeResult, EncodeStats, run
from embedstack.engine.streaming import stream
from embedstack.engine.threads import available_cpus, limit_cpu_threads

__all__ = [
    "DEFAULT_MAX_BATCH_TOKENS",
    "EncodePlan",
    "EncodeResult",
    "EncodeStats",
    "available_cpus",
    "default_max_batch_tokens",
    "limit_cpu_threads",
    "run",
    "stream",
]
