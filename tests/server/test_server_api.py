"""The server's API on a real server on loopback: the official openai client, TEI's /embed, token ids,
prompts, truncation, models, health, metrics and the OpenAPI page. Vectors equal ``model.encode``."""

from __future__ import annotations

import base64

import httpx
import numpy as np
import openai
import pytest

from embedstack import SentenceTransformer
from embedstack.chunking import LongInputs
from embedstack.server import ServerSettings, start_server
from server_support import assert_close, long_texts, metric, short_texts, too_long_texts

pytest.importorskip("fastapi")


@pytest.fixture(scope="module")
def server(minilm_path):
    model = SentenceTransformer(str(minilm_path), device="cpu", backend="auto")
    with start_server(model, ServerSettings(port=0, model_name="all-MiniLM-L6-v2")) as running:
        yield running


@pytest.fixture(scope="module")
def client(server):
    with openai.OpenAI(base_url=f"{server.url}/v1", api_key="not-needed", max_retries=0) as client:
        yield client


def test_openai_client_single_string_and_batch_in_floats_and_base64(client, minilm):
    texts = short_texts(5) + long_texts(2)
    single = client.embeddings.create(input=texts[0], model="all-MiniLM-L6-v2", encoding_format="float")
    assert single.model == "all-MiniLM-L6-v2" and single.data[0].index == 0
    assert_close([single.data[0].embedding], minilm.encode(texts[:1]))
    assert single.usage.prompt_tokens == single.usage.total_tokens > 0
    batch = client.embeddings.create(input=texts, model="all-MiniLM-L6-v2")  # the client asks for base64
    assert [item.index for item in batch.data] == list(range(len(texts)))
    assert_close([item.embedding for item in batch.data], minilm.encode(texts))


def test_base64_is_little_endian_float32(server, minilm):
    body = {"input": ["one", "two"], "encoding_format": "base64"}
    data = httpx.post(f"{server.url}/v1/embeddings", json=body).json()["data"]
    vectors = [np.frombuffer(base64.b64decode(item["embedding"]), dtype="<f4") for item in data]
    assert_close(vectors, minilm.encode(["one", "two"]))


def test_dimensions_cut_and_renormalize_like_truncate_dim(client, minilm):
    texts = short_texts(3)
    expected = minilm.encode(texts, truncate_dim=64, normalize_embeddings=True)
    floats = client.embeddings.create(input=texts, model="all-MiniLM-L6-v2", dimensions=64, encoding_format="float")
    assert_close([item.embedding for item in floats.data], expected)
    encoded = client.embeddings.create(input=texts, model="all-MiniLM-L6-v2", dimensions=64, encoding_format="base64")
    # Asked for explicitly, base64 comes back as the string; the client decodes only its own default.
    assert_close([np.frombuffer(base64.b64decode(item.embedding), dtype="<f4") for item in encoded.data], expected)


def test_token_id_inputs_equal_encode_of_their_text(server, minilm):
    texts = [short_texts(1)[0], too_long_texts(1)[0]]
    ids = [minilm.tokenizer(text, add_special_tokens=False, truncation=False)["input_ids"] for text in texts]
    many = httpx.post(f"{server.url}/v1/embeddings", json={"input": ids}).json()
    assert_close([item["embedding"] for item in many["data"]], minilm.encode(texts))
    assert many["usage"]["truncated_inputs"] == 1 and many["usage"]["prompt_tokens"] == len(ids[0]) + 2 + 256
    one = httpx.post(f"{server.url}/v1/embeddings", json={"input": ids[0]}).json()
    assert_close([one["data"][0]["embedding"]], minilm.encode(texts[:1]))


def test_tei_embed_normalize_dimensions_and_truncation_header(server, minilm):
    texts = short_texts(2) + too_long_texts(1)
    response = httpx.post(f"{server.url}/embed", json={"inputs": texts})
    assert response.status_code == 200 and response.headers["x-truncated-inputs"] == "1"
    assert_close(response.json(), minilm.encode(texts, normalize_embeddings=True))
    raw = httpx.post(f"{server.url}/embed", json={"inputs": texts[0], "normalize": False, "dimensions": 32}).json()
    assert_close(raw, minilm.encode(texts[:1], truncate_dim=32))


def test_truncation_is_counted_and_truncate_false_names_the_input(server):
    texts = ["short", too_long_texts(1)[0]]
    before = metric(server.url, "embedstack_truncated_inputs_total")
    body = httpx.post(f"{server.url}/v1/embeddings", json={"input": texts}).json()
    assert body["usage"]["truncated_inputs"] == 1
    assert metric(server.url, "embedstack_truncated_inputs_total") == before + 1
    refused = httpx.post(f"{server.url}/v1/embeddings", json={"input": texts, "truncate": False})
    assert refused.status_code == 422
    message = refused.json()["error"]["message"]
    assert message.startswith("input[1] has ") and "tokens, more than the model's max_seq_length of 256" in message
    tokens = int(message.split(" has ")[1].split(" tokens")[0].replace(",", ""))
    assert tokens > 256


def test_long_inputs_pool_equals_encode_with_long_inputs_pool(server, minilm):
    texts = ["short", *too_long_texts(2), "short"]
    for options in ({}, {"chunk_overlap": 8, "chunk_pooling": "max"}):
        body = httpx.post(f"{server.url}/v1/embeddings", json={"input": texts, "long_inputs": "pool", **options})
        assert body.status_code == 200, body.text
        assert body.json()["usage"]["truncated_inputs"] == 0
        expected = minilm.encode(
            texts, long_inputs=LongInputs("pool", overlap=options.get("chunk_overlap", 32),
                                          pooling=options.get("chunk_pooling", "mean")),
        )  # fmt: skip
        assert_close([row["embedding"] for row in body.json()["data"]], expected)
    tei = httpx.post(f"{server.url}/embed", json={"inputs": texts, "long_inputs": "pool"})
    assert_close(tei.json(), minilm.encode(texts, long_inputs="pool", normalize_embeddings=True))
    with pytest.warns(FutureWarning, match="use 'pool'"):  # the old name still works
        old = httpx.post(f"{server.url}/embed", json={"inputs": texts, "long_inputs": "chunk"})
    assert_close(old.json(), minilm.encode(texts, long_inputs="pool", normalize_embeddings=True))
    ids = httpx.post(f"{server.url}/v1/embeddings", json={"input": [[101, 102]], "long_inputs": "pool"})
    assert ids.status_code == 422 and "takes texts" in ids.json()["error"]["message"]
    bad = httpx.post(f"{server.url}/v1/embeddings", json={"input": texts, "long_inputs": "pool", "chunk_overlap": -1})
    assert bad.status_code == 422 and "overlap" in bad.json()["error"]["message"]


def test_input_type_and_prompt_name_use_the_model_prompts(minilm_path, minilm):
    prompts = {"query": "query: ", "document": "passage: "}
    model = SentenceTransformer(str(minilm_path), device="cpu", backend="auto", prompts=prompts)
    reference = SentenceTransformer(str(minilm_path), device="cpu", prompts=prompts)
    texts = short_texts(3)
    with start_server(model) as server:
        url = f"{server.url}/v1/embeddings"
        query = httpx.post(url, json={"input": texts, "input_type": "query"}).json()
        assert_close([item["embedding"] for item in query["data"]], reference.encode_query(texts))
        document = httpx.post(url, json={"input": texts, "input_type": "document"}).json()
        assert_close([item["embedding"] for item in document["data"]], reference.encode_document(texts))
        named = httpx.post(f"{server.url}/embed", json={"inputs": texts, "prompt_name": "query"}).json()
        assert_close(named, reference.encode(texts, prompt_name="query", normalize_embeddings=True))
        unknown = httpx.post(url, json={"input": texts, "prompt_name": "search"})
        assert unknown.status_code == 422 and "'search' is not one of the model's prompts ('query'" in unknown.text


def test_models_health_metrics_and_openapi(server):
    models = httpx.get(f"{server.url}/v1/models").json()
    assert [card["id"] for card in models["data"]] == ["all-MiniLM-L6-v2"]
    assert httpx.get(f"{server.url}/health").json() == {"status": "ok", "models": {"all-MiniLM-L6-v2": "ok"}}
    httpx.post(f"{server.url}/embed", json={"inputs": "hello"})
    text = httpx.get(f"{server.url}/metrics").text
    for name in (
        'embedstack_requests_total{route="/embed",status="200"}',
        "embedstack_request_duration_seconds_bucket",
        "embedstack_queue_inputs", "embedstack_queue_tokens", "embedstack_batch_inputs_bucket",
        "embedstack_batch_tokens_bucket", "embedstack_truncated_inputs_total", "embedstack_cancelled_requests_total",
        "embedstack_cancelled_inputs_total", 'embedstack_worker_up{model="all-MiniLM-L6-v2"} 1.0',
    ):  # fmt: skip
        assert name in text, name
    spec = httpx.get(f"{server.url}/openapi.json").json()
    assert {"/v1/embeddings", "/embed", "/v1/models", "/health", "/metrics"} <= set(spec["paths"])
    schema = spec["paths"]["/v1/embeddings"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert {"input", "model", "encoding_format", "dimensions", "user"} <= set(schema["properties"])
    assert httpx.get(f"{server.url}/docs").status_code == 200


def _static_model(minilm_path, **kwargs):
    """A model whose input module cannot tokenize ahead (a StaticEmbedding), cheap to serve."""
    from tokenizers import Tokenizer

    from embedstack.modules import StaticEmbedding

    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    static = StaticEmbedding(Tokenizer.from_file(str(minilm_path / "tokenizer.json")), embedding_dim=16)
    return SentenceTransformer(modules=[static], device="cpu", **kwargs)


def test_a_model_without_a_token_batcher_takes_the_general_path(minilm_path):
    model = _static_model(minilm_path)
    assert model.token_batcher is None
    texts = short_texts(4) + short_texts(2)  # duplicates too
    with start_server(model) as server:
        body = httpx.post(f"{server.url}/v1/embeddings", json={"input": texts}).json()
        assert_close([item["embedding"] for item in body["data"]], model.encode(texts))
        assert body["usage"]["prompt_tokens"] > 0
        refused = httpx.post(f"{server.url}/v1/embeddings", json={"input": [[101, 102]]})
        assert refused.status_code == 422 and "cannot take token ids" in refused.json()["error"]["message"]


def test_input_type_without_its_prompt_falls_back_to_the_default_prompt_as_encode_query(minilm_path):
    prompts = {"document": "passage: ", "classify": "classify: "}
    model = _static_model(minilm_path, prompts=prompts, default_prompt_name="classify")
    del model.prompts["query"]  # the model adds an empty "query" prompt; without one, query takes the default
    texts = short_texts(3)
    with start_server(model) as server:
        url = f"{server.url}/v1/embeddings"
        query = httpx.post(url, json={"input": texts, "input_type": "query"}).json()  # no "query" prompt
        assert_close([item["embedding"] for item in query["data"]], model.encode_query(texts))
        assert_close([item["embedding"] for item in query["data"]], model.encode(texts, prompt="classify: "))
        document = httpx.post(url, json={"input": texts, "input_type": "document"}).json()
        assert_close([item["embedding"] for item in document["data"]], model.encode_document(texts))
        plain = httpx.post(url, json={"input": texts}).json()
        assert not np.allclose(plain["data"][0]["embedding"], model.encode(texts[:1], prompt="")[0], atol=1e-4)


def test_a_model_with_truncate_dim_serves_what_encode_gives(tiny_bert_path):
    model = SentenceTransformer(str(tiny_bert_path), device="cpu", truncate_dim=16)
    texts = short_texts(3)
    with start_server(model) as server:  # token-batched: the workers' plan is encode's, truncate_dim included
        body = httpx.post(f"{server.url}/v1/embeddings", json={"input": texts}).json()
        assert_close([item["embedding"] for item in body["data"]], model.encode(texts))
