"""Sparse embeddings on a real server on loopback: TEI's /embed_sparse answers what ``SparseEncoder.encode`` gives
(the non-zero weights only, after the max_active_dims saved with the model), through the same queue, limits, auth and
error bodies as the other routes; a server of one model kind refuses the other kinds' routes; ``embedstack serve``
loads a saved SparseEncoder folder as one."""

from __future__ import annotations

import asyncio
import random
import threading

import httpx
import numpy as np
import pytest
import torch

import embedstack.server
from embedstack import CrossEncoder, SentenceTransformer, SparseEncoder
from embedstack.cli import main
from embedstack.server import ServerSettings, start_server
from server_support import ATOL, long_texts, short_texts, wait_for

pytest.importorskip("fastapi")

KEY = "sparse-key"
K = 24  # max_active_dims saved with the model: the random MLM has ~20,000 non-zero weights per text
VOCAB = 30522
PROMPTS = {"query": "query: ", "document": "passage: "}
LIMITS = dict(max_inputs_per_request=50, max_chars_per_input=3000)
PATH = "/embed_sparse"


@pytest.fixture(scope="module")
def sparse_folder(mlm_path, tmp_path_factory):
    """A SparseEncoder saved with max_active_dims and query/document prompts."""
    folder = tmp_path_factory.mktemp("splade") / "tiny-splade"
    SparseEncoder(str(mlm_path), device="cpu", max_active_dims=K, prompts=PROMPTS).save(str(folder))
    return folder


@pytest.fixture(scope="module")
def encoder(sparse_folder):
    """The in-process reference, loaded from the same folder as the server's model."""
    model = SparseEncoder(str(sparse_folder), device="cpu")
    assert model.max_active_dims == K
    return model


@pytest.fixture(scope="module")
def server(sparse_folder):
    model = SparseEncoder(str(sparse_folder), device="cpu")
    settings = ServerSettings(port=0, model_name="tiny-splade", api_key=KEY, **LIMITS)
    with start_server(model, settings) as running:
        yield running


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {KEY}"}, timeout=60) as client:
        yield client


def _expected(weights: torch.Tensor) -> list[tuple[list[int], np.ndarray]]:
    """(indices, values) of each row's non-zero weights in index order, read from the dense row."""
    rows = []
    for row in weights.to_dense() if weights.ndim == 2 else weights.to_dense().unsqueeze(0):
        indices = torch.nonzero(row).flatten()
        rows.append((indices.tolist(), row[indices].numpy()))
    return rows


def _differences(answer: list, expected: list[tuple[list[int], np.ndarray]]) -> list[str]:
    """What differs between an /embed_sparse answer and the expected rows (empty when they agree)."""
    if len(answer) != len(expected):
        return [f"{len(answer)} rows, expected {len(expected)}"]
    problems = []
    for number, (row, (indices, values)) in enumerate(zip(answer, expected)):
        if any(set(item) != {"index", "value"} for item in row):
            problems.append(f"row {number}: items are not {{index, value}} objects")
        elif [item["index"] for item in row] != indices:
            problems.append(f"row {number}: indices differ")
        elif np.abs(np.array([item["value"] for item in row], dtype=np.float32) - values).max() > ATOL:
            problems.append(f"row {number}: values differ by more than {ATOL}")
    return problems


def _assert_matches(answer: list, weights: torch.Tensor) -> None:
    assert _differences(answer, _expected(weights)) == []


def test_one_and_several_inputs_equal_encode(client, encoder):
    one = client.post(PATH, json={"inputs": "The weather is lovely today."})
    assert one.status_code == 200, one.text
    _assert_matches(one.json(), encoder.encode(["The weather is lovely today."]))
    texts = short_texts(8) + [short_texts(8)[2]] + long_texts(3)  # a duplicate, and texts the 128-token window cuts
    several = client.post(PATH, json={"inputs": texts})
    assert several.status_code == 200, several.text
    _assert_matches(several.json(), encoder.encode(texts))
    cut = int(encoder.token_batcher.tokenize_unpadded(texts).truncated.sum())
    assert cut >= 1 and several.headers["x-truncated-inputs"] == str(cut)


def test_max_active_dims_saved_with_the_model_is_honoured_and_info_reports_it(client, encoder):
    texts = short_texts(4)
    answer = client.post(PATH, json={"inputs": texts}).json()
    assert [len(row) for row in answer] == [K] * len(texts)
    every = encoder.encode(texts, max_active_dims=VOCAB)  # all non-zero weights
    assert min(len(indices) for indices, _ in _expected(every)) > 10 * K
    largest = torch.topk(every.to_dense().abs(), K, dim=1).indices.sort(dim=1).values
    assert [[item["index"] for item in row] for row in answer] == largest.tolist()
    info = client.get("/info").json()
    assert info["model_kind"] == "SparseEncoder" and info["routes"] == [PATH]
    widths = (info["vocab_size"], info["max_active_dims"], info["dimension"], info["num_labels"])
    assert widths == (VOCAB, K, None, None)
    schema = client.get("/openapi.json").json()["paths"][PATH]["post"]["requestBody"]["content"]["application/json"]
    assert {"inputs", "prompt_name", "input_type", "truncate"} <= set(schema["schema"]["properties"])


def test_token_ids_are_embedded_as_their_text(client, encoder):
    text = short_texts(1)[0]
    ids = encoder.tokenizer(text, add_special_tokens=False)["input_ids"]
    response = client.post(PATH, json={"inputs": [ids]})
    assert response.status_code == 200, response.text
    _assert_matches(response.json(), encoder.encode([text]))


def test_prompt_name_and_input_type_pick_the_models_prompts(client, encoder):
    texts = short_texts(3)
    query = client.post(PATH, json={"inputs": texts, "prompt_name": "query"}).json()
    _assert_matches(query, encoder.encode(texts, prompt_name="query"))
    assert _differences(query, _expected(encoder.encode(texts))) != []  # the prompt changed the weights
    document = client.post(PATH, json={"inputs": texts, "input_type": "document"}).json()
    _assert_matches(document, encoder.encode_document(texts))


def test_truncate_false_refuses_a_text_longer_than_the_window(client, encoder):
    long_one = max(long_texts(10), key=len)
    assert encoder.token_batcher.tokenize_unpadded([long_one]).truncated[0]
    response = client.post(PATH, json={"inputs": ["short", long_one], "truncate": False})
    assert response.status_code == 422
    error = response.json()
    assert error["error_type"] == "input_too_long"
    assert "inputs[1] has " in error["error"] and "more than the model's max_seq_length of 128" in error["error"]


# (what, body, status, words the error message must contain)
BAD = [
    ("missing inputs", {"truncate": True}, 422, "'inputs' is required"),
    ("inputs a number", {"inputs": 3}, 422, "inputs must be a string, a list of strings"),
    ("empty inputs", {"inputs": []}, 422, "inputs is empty"),
    ("empty text", {"inputs": ["a", ""]}, 422, "inputs[1] is an empty string"),
    ("too many inputs", {"inputs": ["a"] * 51}, 413, "inputs has 51 items, over the server's limit of 50"),
    ("text too long", {"inputs": "a" * 3001}, 413, "inputs[0] has 3,001 characters"),
    ("OpenAI's field", {"input": "a"}, 422, "Unknown field 'input'. Did you mean: inputs"),
    ("dense /embed's field", {"inputs": "a", "normalize": True}, 422, "Unknown field 'normalize'"),
    ("truncate a string", {"inputs": "a", "truncate": "yes"}, 422, "truncate: Input should be a valid boolean"),
    ("left truncation", {"inputs": "a", "truncation_direction": "left"}, 422, "truncation_direction:"),
    ("unknown prompt", {"inputs": "a", "prompt_name": "title"}, 422, "prompt_name 'title' is not one of"),
    ("prompt and type", {"inputs": "a", "prompt_name": "query", "input_type": "query"}, 422, "not both"),
    ("array body", ["a"], 422, "must be a JSON object, got a JSON array"),
]


@pytest.mark.parametrize("what, body, status, words", BAD, ids=[case[0] for case in BAD])
def test_bad_bodies_get_a_4xx_naming_the_field(client, what, body, status, words):
    response = client.post(PATH, json=body)
    assert response.status_code == status, response.text
    assert words in response.json()["error"] and set(response.json()) == {"error", "error_type"}


def _openai_shaped(tei: dict) -> dict:
    """A TEI-style error body ({"error", "error_type"}) as OpenAI's error object."""
    return {"message": tei["error"], "code": tei["error_type"]}


def test_each_kind_refuses_the_other_kinds_routes(client, tiny_bert_path, cross_encoder_path):
    refusals = {
        "/v1/embeddings": {"input": "a"},
        "/embed": {"inputs": "a"},
        "/rerank": {"query": "q", "texts": ["a"]},
    }
    for path, body in refusals.items():
        refused = client.post(path, json=body)
        error = refused.json()["error"] if path.startswith("/v1/") else _openai_shaped(refused.json())
        message, code = error["message"], error["code"]
        assert refused.status_code == 400 and code == "wrong_model_kind", path
        assert "this server runs a SparseEncoder (a sparse embedding model, 'tiny-splade')" in message
        assert "Use POST /embed_sparse on this server" in message
    models = {
        "SentenceTransformer": (SentenceTransformer, tiny_bert_path, "POST /v1/embeddings and POST /embed"),
        "CrossEncoder": (CrossEncoder, cross_encoder_path, "POST /rerank and POST /v1/rerank"),
    }
    for kind, (cls, folder, routes) in models.items():
        model = cls(str(folder), device="cpu")
        with start_server(model, ServerSettings(port=0, workers=1)) as other:
            refused = httpx.post(f"{other.url}{PATH}", json={"inputs": "a"})
            assert refused.status_code == 400 and refused.json()["error_type"] == "wrong_model_kind"
            message = refused.json()["error"]
            assert f"this server runs a {kind}" in message and "sparse embedding needs a SparseEncoder" in message
            assert f"Use {routes} on this server" in message
            info = httpx.get(f"{other.url}/info").json()
            assert (info["model_kind"], info["vocab_size"], info["max_active_dims"]) == (kind, None, None)


def test_embed_sparse_is_behind_the_same_auth_as_the_other_routes(server):
    answers = {path: httpx.post(f"{server.url}{path}", json={"inputs": "a"}) for path in (PATH, "/embed")}
    for path, answer in answers.items():
        assert answer.status_code == 401 and answer.headers["www-authenticate"] == "Bearer", path
    assert answers[PATH].json() == answers["/embed"].json()
    wrong = httpx.post(f"{server.url}{PATH}", json={"inputs": "a"}, headers={"Authorization": "Bearer x"})
    assert wrong.status_code == 401 and "not this server's" in wrong.json()["error"]
    assert httpx.get(f"{server.url}/health").status_code == 200


def test_16_concurrent_clients_get_the_weights_of_their_own_inputs(server, encoder):
    pool = short_texts(40)
    expected = _expected(encoder.encode(pool))
    failures: list[str] = []
    done = 0

    async def client_loop(client: httpx.AsyncClient, seed: int) -> None:
        nonlocal done
        rng = random.Random(seed)
        for _ in range(2):
            picks = [rng.randrange(len(pool)) for _ in range(rng.randint(1, 8))]  # duplicates too
            response = await client.post(f"{server.url}{PATH}", json={"inputs": [pool[i] for i in picks]})
            if response.status_code != 200:
                failures.append(f"{response.status_code}: {response.text}")
                continue
            failures.extend(f"inputs {picks}: {p}" for p in _differences(response.json(), [expected[i] for i in picks]))
            done += 1

    async def run_clients() -> None:
        headers = {"Authorization": f"Bearer {KEY}"}
        async with httpx.AsyncClient(limits=httpx.Limits(max_connections=16), headers=headers, timeout=60) as client:
            await asyncio.wait_for(asyncio.gather(*(client_loop(client, seed) for seed in range(16))), timeout=60)

    asyncio.run(run_clients())
    assert failures == [] and done == 32


def test_a_full_queue_answers_429_on_embed_sparse_too(sparse_folder, encoder):
    model = SparseEncoder(str(sparse_folder), device="cpu")
    texts = ["a sentence with a few words", "another sentence"]
    tokens = int(model.token_batcher.tokenize_unpadded(texts).lengths.sum())
    release = threading.Event()
    original = model.forward_modules

    def held(features, module_kwargs):  # the worker holds its round until the test lets it go
        release.wait(timeout=30)
        return original(features, module_kwargs)

    answers: list[httpx.Response] = []

    def send() -> None:
        answers.append(httpx.post(f"{server.url}{PATH}", json={"inputs": texts}, timeout=60))

    settings = ServerSettings(port=0, workers=1, max_queue_tokens=tokens + 1)  # room for one request only
    with start_server(model, settings) as server:
        service = server.state.service
        model.forward_modules = held
        senders = [threading.Thread(target=send), threading.Thread(target=send)]
        senders[0].start()  # taken by the worker, which holds it
        wait_for(lambda: service.workers[0].busy_since is not None, 10, "the worker to hold a round")
        senders[1].start()  # waits in the queue
        wait_for(lambda: service.queue.tokens == tokens, 10, "the second request to be queued")
        full = httpx.post(f"{server.url}{PATH}", json={"inputs": texts})
        assert full.status_code == 429 and full.json()["error_type"] == "queue_full"
        assert int(full.headers["retry-after"]) >= 1
        release.set()
        for sender in senders:
            sender.join(30)
    assert [answer.status_code for answer in answers] == [200, 200]
    _assert_matches(answers[0].json(), encoder.encode(texts))


def test_serve_loads_a_saved_sparse_encoder_folder(sparse_folder, monkeypatch):
    served = []
    monkeypatch.setattr(embedstack.server, "serve", lambda model, *args, **kwargs: served.append(model))
    assert main(["serve", "--port", "0", "--backend", "torch", "--model", str(sparse_folder)]) == 0
    assert [type(model) for model in served] == [SparseEncoder] and served[0].max_active_dims == K
