"""Ray Data integration: embed a ``ray.data.Dataset`` with a pool of model actors, and the CLI's sharded job.

This package is the only place that imports Ray (``pip install 'embedstack[ray]'``). Its absolute imports reach
the real ``ray`` package, never this one.
"""

from __future__ import annotations

import importlib.util

from embedstack.errors import MissingExtraError

if importlib.util.find_spec("ray") is None or importlib.util.find_spec("pyarrow") is None:
    raise MissingExtraError(
        "embedstack.ray needs the ray extra (ray[data], pyarrow). Run: pip install 'embedstack[ray]'"
    )

from embedstack.ray.dataset import Embedder, embed_dataset, plan_actors  # noqa: E402
from embedstack.ray.job import connect, encode_to_shards_on_ray  # noqa: E402

__all__ = ["Embedder", "connect", "embed_dataset", "encode_to_shards_on_ray", "plan_actors"]
