"""Reranking on a real server on loopback: TEI's /rerank and Cohere's/Jina's /v1/rerank answer what
``CrossEncoder.predict`` and ``rank`` give, through the same queue, limits, auth and error bodies as the embedding
routes; a server of one model kind refuses the other kind's routes; ``embedstack serve`` detects the kind."""

from __future__ import annotations

import asyncio
import json
import random
import threading

import httpx
import numpy as np
import pytest
import torch

import embedstack.server
from embedstack import CrossEncoder, SentenceTransformer
from embedstack.cli import main
from embedstack.server import ServerSettings, start_server
from helpers import tiny_cross_encoder
from server_support import long_texts, short_texts, wait_for

pytest.importorskip("fastapi")

ATOL = 1e-5  # server scores vs predict of the same pairs
KEY = "rerank-key"
LIMITS = dict(max_inputs_per_request=50, max_chars_per_input=3000)
TEI, COHERE = "/rerank", "/v1/rerank"


@pytest.fixture(scope="module")
def reranker(cross_encoder_path):
    """The in-process reference."""
    return CrossEncoder(str(cross_encoder_path), device="cpu")


@pytest.fixture(scope="module")
def server(cross_encoder_path):
    model = CrossEncoder(str(cross_encoder_path), device="cpu")
    settings = ServerSettings(port=0, model_name="tiny-reranker", api_key=KEY, **LIMITS)
    with start_server(model, settings) as running:
        yield running


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {KEY}"}, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def texts():
    """A query and documents: short sentences, a duplicate, and long ones that the 128-token window cuts."""
    short = short_texts(12)
    return short[0], short[1:10] + [short[3]] + long_texts(1)


def _scores(reranker, query, documents, **kwargs):
    return reranker.predict([(query, document) for document in documents], **kwargs)


def _by_index(results, key):
    scores = np.empty(len(results), dtype=np.float64)
    for item in results:
        scores[item["index"]] = item[key]
    return scores


def test_tei_rerank_equals_predict_best_first(client, reranker, texts):
    query, documents = texts
    response = client.post(TEI, json={"query": query, "texts": documents})
    assert response.status_code == 200, response.text
    results = response.json()
    assert sorted(item["index"] for item in results) == list(range(len(documents)))
    assert all(set(item) == {"index", "score"} for item in results)
    scores = [item["score"] for item in results]
    assert scores == sorted(scores, reverse=True)
    assert np.abs(_by_index(results, "score") - _scores(reranker, query, documents)).max() <= ATOL
    assert response.headers["x-truncated-inputs"] == "1"  # the long text, cut as predict cuts it
    ranked = reranker.rank(query, documents)
    assert abs(results[0]["score"] - ranked[0]["score"]) <= ATOL


def test_tei_raw_scores_are_the_logits_and_return_text_adds_the_text(client, reranker, texts):
    query, documents = texts
    body = {"query": query, "texts": documents, "raw_scores": True, "return_text": True}
    results = client.post(TEI, json=body).json()
    logits = _scores(reranker, query, documents, activation_fn=torch.nn.Identity())
    assert np.abs(_by_index(results, "score") - logits).max() <= ATOL
    assert not np.allclose(logits, _scores(reranker, query, documents), atol=1e-3)  # the sigmoid was left out
    assert all(item["text"] == documents[item["index"]] for item in results)


def test_cohere_rerank_shape_top_n_and_documents(client, reranker, texts):
    query, documents = texts
    mixed = [text if i % 2 else {"text": text} for i, text in enumerate(documents)]  # strings and objects
    body = {"model": "tiny-reranker", "query": query, "documents": mixed, "top_n": 3, "return_documents": True}
    response = client.post(COHERE, json=body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert set(answer) == {"id", "results", "model", "usage"} and answer["model"] == "tiny-reranker"
    assert isinstance(answer["id"], str) and answer["id"]
    assert answer["usage"]["total_tokens"] == answer["usage"]["prompt_tokens"] > len(documents)
    expected = _scores(reranker, query, documents)
    results = answer["results"]
    assert len(results) == 3
    assert [item["relevance_score"] for item in results] == sorted(
        (i["relevance_score"] for i in results), reverse=True
    )
    for item in results:
        assert abs(item["relevance_score"] - expected[item["index"]]) <= ATOL
        assert item["document"] == {"text": documents[item["index"]]}
    left_out = np.delete(expected, [item["index"] for item in results])
    assert min(item["relevance_score"] for item in results) >= left_out.max() - ATOL  # the 3 best
    plain = client.post(COHERE, json={"query": query, "documents": documents}).json()
    assert len(plain["results"]) == len(documents) and "document" not in plain["results"][0]
    assert np.abs(_by_index(plain["results"], "relevance_score") - expected).max() <= ATOL


def test_32_concurrent_clients_get_the_scores_of_their_own_pairs(server, reranker):
    pool = short_texts(60)
    queries, documents = pool[:4], pool[4:]
    expected = np.stack([_scores(reranker, query, documents) for query in queries])  # (queries, documents)
    failures: list[str] = []
    done = 0

    async def client_loop(client: httpx.AsyncClient, seed: int) -> None:
        nonlocal done
        rng = random.Random(seed)
        for _ in range(3):
            row = rng.randrange(len(queries))
            picks = [rng.randrange(len(documents)) for _ in range(rng.randint(1, 12))]  # duplicates too
            body = {"query": queries[row], "texts": [documents[i] for i in picks]}
            response = await client.post(f"{server.url}{TEI}", json=body)
            if response.status_code != 200:
                failures.append(f"{response.status_code}: {response.text}")
                continue
            got = _by_index(response.json(), "score")
            if np.abs(got - expected[row, picks]).max() > ATOL:
                failures.append(f"scores differ for query {row}, documents {picks}")
            done += 1

    async def run_clients() -> None:
        headers = {"Authorization": f"Bearer {KEY}"}
        async with httpx.AsyncClient(limits=httpx.Limits(max_connections=32), headers=headers, timeout=60) as client:
            await asyncio.wait_for(asyncio.gather(*(client_loop(client, seed) for seed in range(32))), timeout=90)

    asyncio.run(run_clients())
    assert failures == [] and done == 96


# (what, path, body, status, words the error message must contain, the field named as param on /v1/)
BAD = [
    ("missing query", TEI, {"texts": ["a"]}, 422, "'query' is required", "query"),
    ("query a number", TEI, {"query": 3, "texts": ["a"]}, 422, "query: Input should be a valid string", "query"),
    ("empty query", COHERE, {"query": "", "documents": ["a"]}, 422, "query is an empty string", "query"),
    ("query too long", COHERE, {"query": "q" * 3001, "documents": ["a"]}, 413, "query has 3,001 characters", "query"),
    ("missing texts", TEI, {"query": "q"}, 422, "'texts' is required", "texts"),
    ("empty texts", TEI, {"query": "q", "texts": []}, 422, "texts is empty", "texts"),
    ("texts a string", TEI, {"query": "q", "texts": "a"}, 422, 'texts must be a list of strings; got "a"', "texts"),
    ("texts with a number", TEI, {"query": "q", "texts": ["a", 1]}, 422, "texts must be a list of strings", "texts"),
    ("empty text", TEI, {"query": "q", "texts": ["a", ""]}, 422, "texts[1] is an empty string", "texts"),
    ("too many texts", TEI, {"query": "q", "texts": ["a"] * 51}, 413, "has 51 items, over the server's limit", "texts"),
    ("raw_scores a string", TEI, {"query": "q", "texts": ["a"], "raw_scores": "yes"}, 422, "raw_scores:", "raw_scores"),
    ("OpenAI's field", TEI, {"query": "q", "documents": ["a"]}, 422, "Unknown field 'documents'", "documents"),
    ("missing documents", COHERE, {"query": "q"}, 422, "'documents' is required", "documents"),
    ("empty documents", COHERE, {"query": "q", "documents": []}, 422, "documents is empty", "documents"),
    ("document without text", COHERE, {"query": "q", "documents": [{"id": 1}]}, 422, "documents must", "documents"),
    ("top_n 0", COHERE, {"query": "q", "documents": ["a"], "top_n": 0}, 422, "top_n: Input should be greater", "top_n"),
    ("top_n a string", COHERE, {"query": "q", "documents": ["a"], "top_n": "3"}, 422, "top_n:", "top_n"),
    ("misspelt top_n", COHERE, {"query": "q", "documents": ["a"], "top_k": 3}, 422, "Did you mean: top_n", "top_k"),
    ("unknown model", COHERE, {"query": "q", "documents": ["a"], "model": "rerank-3"}, 404, "not served", "model"),
    ("array body", COHERE, ["q"], 422, "must be a JSON object, got a JSON array", None),
]


@pytest.mark.parametrize("what, path, body, status, words, field", BAD, ids=[case[0] for case in BAD])
def test_bad_rerank_bodies_get_a_4xx_naming_the_field(client, what, path, body, status, words, field):
    response = client.post(path, json=body)
    assert response.status_code == status, response.text
    if path == COHERE:
        assert words in response.json()["error"]["message"] and response.json()["error"]["param"] == field
    else:
        assert words in response.json()["error"] and set(response.json()) == {"error", "error_type"}


def test_too_long_with_truncate_false_names_the_text_and_its_tokens(client):
    long_one = long_texts(1)[0]
    response = client.post(TEI, json={"query": "q", "texts": ["short", long_one], "truncate": False})
    assert response.status_code == 422
    assert "texts[1] with the query has " in response.json()["error"]
    assert "more than the model's max_seq_length of 128" in response.json()["error"]


def test_each_kind_refuses_the_other_kinds_routes_and_info_names_the_kind(client, tiny_bert_path):
    for path, body in (("/v1/embeddings", {"input": "a"}), ("/embed", {"inputs": "a"})):
        refused = client.post(path, json=body)
        message = refused.json()["error"]["message"] if path.startswith("/v1/") else refused.json()["error"]
        assert refused.status_code == 400 and "this server runs a CrossEncoder (a reranker" in message
        assert "embeddings needs a SentenceTransformer" in message and "POST /rerank" in message
    info = client.get("/info").json()
    assert (info["model_kind"], info["routes"], info["num_labels"]) == ("CrossEncoder", [TEI, COHERE], 1)
    paths = client.get("/openapi.json").json()["paths"]
    assert {TEI, COHERE, "/info"} <= set(paths)
    schema = paths[COHERE]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert {"query", "documents", "top_n", "return_documents"} <= set(schema["properties"])
    assert "#/$defs/" not in json.dumps(schema)  # the document object is inlined, so the page can show it
    bi_encoder = SentenceTransformer(str(tiny_bert_path), device="cpu")
    with start_server(bi_encoder, ServerSettings(port=0, workers=1)) as other:
        for path in (TEI, COHERE):
            refused = httpx.post(f"{other.url}{path}", json={"query": "q", "texts": ["a"]})
            message = refused.json()["error"]["message"] if path == COHERE else refused.json()["error"]
            assert (
                refused.status_code == 400 and "this server runs a SentenceTransformer (an embedding model" in message
            )
            assert "reranking needs a CrossEncoder" in message
        assert httpx.get(f"{other.url}/info").json()["model_kind"] == "SentenceTransformer"


def test_rerank_is_behind_the_same_auth_as_embeddings(server):
    answers = {path: httpx.post(f"{server.url}{path}", json={"query": "q", "texts": ["a"]}) for path in (TEI, COHERE)}
    answers["/v1/embeddings"] = httpx.post(f"{server.url}/v1/embeddings", json={"input": "a"})
    for path, answer in answers.items():
        assert answer.status_code == 401 and answer.headers["www-authenticate"] == "Bearer", path
    assert answers[COHERE].json()["error"]["code"] == answers["/v1/embeddings"].json()["error"]["code"]
    wrong = httpx.post(f"{server.url}{TEI}", json={"query": "q", "texts": ["a"]}, headers={"Authorization": "Bearer x"})
    assert wrong.status_code == 401 and "not this server's" in wrong.json()["error"]
    assert httpx.get(f"{server.url}/health").status_code == 200


def test_a_full_queue_answers_429_on_rerank_too(cross_encoder_path, reranker):
    model = CrossEncoder(str(cross_encoder_path), device="cpu")
    body = {"query": "a question", "texts": ["an answer with a few words", "another answer"]}
    tokens = int(model.token_batcher.tokenize_unpadded([(body["query"], t) for t in body["texts"]]).lengths.sum())
    release = threading.Event()
    original = model.forward_modules

    def held(features, module_kwargs):  # the worker holds its round until the test lets it go
        release.wait(timeout=30)
        return original(features, module_kwargs)

    answers: list[httpx.Response] = []

    def send() -> None:
        answers.append(httpx.post(f"{server.url}{TEI}", json=body, timeout=60))

    settings = ServerSettings(port=0, workers=1, max_queue_tokens=tokens + 1)  # room for one request only
    with start_server(model, settings) as server:
        service = server.state.service
        model.forward_modules = held
        senders = [threading.Thread(target=send), threading.Thread(target=send)]
        senders[0].start()  # taken by the worker, which holds it
        wait_for(lambda: service.workers[0].busy_since is not None, 10, "the worker to hold a round")
        senders[1].start()  # waits in the queue
        wait_for(lambda: service.queue.tokens == tokens, 10, "the second request to be queued")
        full = httpx.post(f"{server.url}{COHERE}", json={"query": body["query"], "documents": body["texts"]})
        assert full.status_code == 429 and full.json()["error"]["code"] == "queue_full"
        assert int(full.headers["retry-after"]) >= 1
        release.set()
        for sender in senders:
            sender.join(30)
    assert [answer.status_code for answer in answers] == [200, 200]
    expected = _scores(reranker, body["query"], body["texts"])
    assert np.abs(_by_index(answers[0].json(), "score") - expected).max() <= ATOL


def test_a_model_with_several_labels_is_refused_for_reranking(tmp_path):
    model = CrossEncoder(str(tiny_cross_encoder(tmp_path / "three", num_labels=3)), device="cpu")
    with start_server(model, ServerSettings(port=0, workers=1)) as server:
        refused = httpx.post(f"{server.url}{TEI}", json={"query": "q", "texts": ["a"]})
        assert refused.status_code == 400 and "num_labels=3" in refused.json()["error"]


def test_serve_loads_the_kind_its_folder_holds(cross_encoder_path, tiny_bert_path, reranker, tmp_path, monkeypatch):
    reranker.save(str(tmp_path / "saved"))  # config_sentence_transformers.json says model_type "CrossEncoder"
    served = []
    monkeypatch.setattr(embedstack.server, "serve", lambda model, *args, **kwargs: served.append(model))
    for folder in (cross_encoder_path, tmp_path / "saved", tiny_bert_path):  # a plain classifier, saved, a backbone
        assert main(["serve", "--port", "0", "--backend", "torch", "--model", str(folder)]) == 0
    assert [type(model) for model in served] == [CrossEncoder, CrossEncoder, SentenceTransformer]
