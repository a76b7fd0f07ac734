"""embedstack's embedding server: OpenAI's, TEI's, Cohere's and Jina's APIs over one token-budget batching queue.

A SentenceTransformer answers the embedding routes, a CrossEncoder the rerank routes (``/rerank``, ``/v1/rerank``),
a SparseEncoder TEI's ``/embed_sparse``; one process serves several models (``NamedModel``), each with its own queue.

Needs the ``server`` extra (``pip install 'embedstack[server]'``). Start it with ``embedstack serve`` or:

    >>> import httpx
    >>> from embedstack.server import ServerSettings, start_server
    >>> with start_server(model, ServerSettings(port=0)) as server:
    ...     httpx.post(f"{server.url}/v1/embeddings", json={"input": "hello"}).status_code
    200
"""

from embedstack.server.app import NamedModel, create_app
from embedstack.server.lifecycle import RunningServer, serve, start_server
from embedstack.server.settings import API_KEY_ENV, ServerSettings

__all__ = ["API_KEY_ENV", "NamedModel", "RunningServer", "ServerSettings", "create_app", "serve", "start_server"]
