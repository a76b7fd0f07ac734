"""The server a user would write in ten minutes: FastAPI, one ``model.encode`` per request, no batching
across requests. The baseline of ``server_throughput.py``.

    python benchmarks/server_naive.py --port 8001 [--model FOLDER]
"""

from __future__ import annotations

import argparse
import base64

import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel

from embedstack import SentenceTransformer
from embedstack.defaults import default_model_path


class EmbeddingRequest(BaseModel):
    input: str | list[str]
    model: str | None = None
    encoding_format: str = "float"


def build_app(model: SentenceTransformer) -> FastAPI:
    app = FastAPI()

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok"}

    @app.post("/v1/embeddings")
    def embeddings(request: EmbeddingRequest) -> dict:  # a plain def: FastAPI runs it on its thread pool
        texts = [request.input] if isinstance(request.input, str) else request.input
        vectors = model.encode(texts)
        if request.encoding_format == "base64":  # what the openai client asks for by default
            items = [base64.b64encode(v.astype("<f4").tobytes()).decode() for v in vectors]
        else:
            items = [v.tolist() for v in vectors]
        data = [{"object": "embedding", "index": i, "embedding": item} for i, item in enumerate(items)]
        return {"object": "list", "data": data, "model": request.model, "usage": {"prompt_tokens": 0}}

    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--model", default=str(default_model_path()))
    args = parser.parse_args()
    model = SentenceTransformer(args.model, device="cpu", backend="auto")
    uvicorn.run(build_app(model), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
