"""Every bad request gets a 4xx JSON error naming what is wrong, and the server stays healthy; auth on and off.

The cases are a table: one row per bad request, the test is a loop.
"""

from __future__ import annotations

import httpx
import openai
import pytest

from embedstack import SentenceTransformer
from embedstack.server import ServerSettings, start_server

pytest.importorskip("fastapi")

LIMITS = dict(max_payload_bytes=4096, max_inputs_per_request=4, max_chars_per_input=200)
OPENAI, TEI = "/v1/embeddings", "/embed"

# (what, path, body: JSON-able or raw bytes, status, words the error message must contain)
CASES = [
    ("malformed JSON", OPENAI, b'{"input": ', 400, "not valid JSON"),
    ("non-UTF-8 body", OPENAI, b'{"input": "\xff\xfe"}', 400, "not valid UTF-8 (byte 0xff at offset 11)"),
    ("empty body", OPENAI, b"", 400, "body is empty"),
    ("NaN literal", OPENAI, b'{"input": NaN}', 400, "not valid JSON"),
    ("lone surrogate escape", OPENAI, b'{"input": "\\ud800"}', 400, "not valid JSON"),
    ("integer beyond 64 bits", OPENAI, b'{"input": [[1180591620717411303424]]}', 422, "input must be"),
    ("array body", OPENAI, ["hello"], 422, "must be a JSON object, got a JSON array"),
    ("string body", OPENAI, "hello", 422, "must be a JSON object, got a JSON string"),
    ("missing input", OPENAI, {"model": "all-MiniLM-L6-v2"}, 422, "'input' is required"),
    ("input a number", OPENAI, {"input": 3}, 422, "input must be a string, a list of strings"),
    ("input a boolean", OPENAI, {"input": True}, 422, "input must be a string"),
    ("input mixing types", OPENAI, {"input": ["a", 1]}, 422, 'got ["a",1]'),
    ("input nested too deep", OPENAI, {"input": [[["a"]]]}, 422, "input must be"),
    ("input an object", OPENAI, {"input": {"text": "a"}}, 422, "input must be"),
    ("empty input list", OPENAI, {"input": []}, 422, "input is empty"),
    ("empty string", OPENAI, {"input": ["ok", ""]}, 422, "input[1] is an empty string"),
    ("empty token ids", OPENAI, {"input": [[101], []]}, 422, "input[1] is an empty list of token ids"),
    ("negative token id", OPENAI, {"input": [[5, -1]]}, 422, "input[0] holds token id -1, outside"),
    ("token id past the vocabulary", OPENAI, {"input": [40000]}, 422, "token id 40000, outside this model's vocab"),
    ("unknown model", OPENAI, {"input": "a", "model": "text-embedding-3-small"}, 404, "not served here"),
    ("model not a string", OPENAI, {"input": "a", "model": 3}, 422, "model: Input should be a valid string"),
    ("unknown encoding", OPENAI, {"input": "a", "encoding_format": "binary"}, 422, "encoding_format:"),
    ("dimensions 0", OPENAI, {"input": "a", "dimensions": 0}, 422, "between 1 and the model's 384, got 0"),
    ("dimensions too many", OPENAI, {"input": "a", "dimensions": 385}, 422, "got 385"),
    ("dimensions a string", OPENAI, {"input": "a", "dimensions": "64"}, 422, "dimensions: Input should be"),
    ("dimensions a float", OPENAI, {"input": "a", "dimensions": 3.5}, 422, "dimensions:"),
    ("misspelt option", OPENAI, {"input": "a", "dimension": 8}, 422, "Unknown field 'dimension'. Did you mean"),
    ("unknown input_type", OPENAI, {"input": "a", "input_type": "both"}, 422, "input_type:"),
    (
        "prompt_name and input_type",
        OPENAI,
        {"input": "a", "prompt_name": "query", "input_type": "query"},
        422,
        "not both",
    ),
    ("unknown prompt", OPENAI, {"input": "a", "prompt_name": "search"}, 422, "'search' is not one of"),
    ("truncate not a boolean", OPENAI, {"input": "a", "truncate": "no"}, 422, "truncate:"),
    ("prompt with token ids", OPENAI, {"input": [[7592]], "input_type": "query"}, 422, "put the prompt's ids"),
    (
        "too long with truncate false",
        OPENAI,
        {"input": [[7592] * 300], "truncate": False},
        422,
        "input[0] has 302 tokens, more than the model's max_seq_length of 256",
    ),
    ("too many inputs", OPENAI, {"input": ["a"] * 5}, 413, "5 items, over the server's limit of 4"),
    ("too many characters", OPENAI, {"input": ["a", "b" * 201]}, 413, "input[1] has 201 characters"),
    ("body too large", OPENAI, {"input": "a", "user": "u" * 5000}, 413, "over the server's limit of 4,096 bytes"),
    ("TEI inputs a number", TEI, {"inputs": 3}, 422, "inputs must be"),
    ("TEI with OpenAI's field", TEI, {"input": "a"}, 422, "Unknown field 'input'. Did you mean: inputs"),
    ("TEI left truncation", TEI, {"inputs": "a", "truncation_direction": "left"}, 422, "truncation_direction"),
    ("TEI normalize not a boolean", TEI, {"inputs": "a", "normalize": "yes"}, 422, "normalize:"),
    ("TEI too many inputs", TEI, {"inputs": ["a"] * 5}, 413, "inputs has 5 items"),
]


@pytest.fixture(scope="module")
def server(minilm_path):
    model = SentenceTransformer(str(minilm_path), device="cpu", backend="auto")
    settings = ServerSettings(port=0, model_name="all-MiniLM-L6-v2", **LIMITS)
    with start_server(model, settings) as running:
        yield running


def _message(path: str, body: dict) -> str:
    if path.startswith("/v1/"):
        assert set(body["error"]) == {"message", "type", "code", "param"}
        return body["error"]["message"]
    assert set(body) == {"error", "error_type"}
    return body["error"]


@pytest.mark.parametrize("what, path, body, status, words", CASES, ids=[case[0] for case in CASES])
def test_bad_request_gets_a_json_error_naming_the_problem(server, what, path, body, status, words):
    send = {"content": body} if isinstance(body, bytes) else {"json": body}
    response = httpx.post(f"{server.url}{path}", **send)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert words in _message(path, response.json())


def test_bodies_over_the_limit_are_refused_even_without_a_length(server):
    def chunks():
        yield b'{"input": "'
        for _ in range(10):
            yield b"a" * 1000
        yield b'"}'

    response = httpx.post(f"{server.url}{OPENAI}", content=chunks())  # chunked: no Content-Length
    assert response.status_code == 413
    assert "more than 4,096 bytes" in response.json()["error"]["message"]


def test_routes_and_methods_that_do_not_exist(server):
    missing = httpx.post(f"{server.url}/v1/embedding", json={"input": "a"})
    assert missing.status_code == 404 and "no route '/v1/embedding'" in missing.json()["error"]["message"]
    wrong = httpx.get(f"{server.url}{OPENAI}")
    assert wrong.status_code == 405 and "GET is not allowed" in wrong.json()["error"]["message"]


def test_the_server_is_healthy_after_every_bad_request(server):
    for _, path, body, _, _ in CASES:
        httpx.post(f"{server.url}{path}", **({"content": body} if isinstance(body, bytes) else {"json": body}))
    assert httpx.get(f"{server.url}/health").status_code == 200
    assert httpx.post(f"{server.url}{OPENAI}", json={"input": "still fine"}).status_code == 200
    text = httpx.get(f"{server.url}/metrics").text
    assert 'status="5' not in text


def test_auth_on_needs_the_bearer_key_except_health_and_metrics(minilm_path, monkeypatch):
    monkeypatch.setenv("EMBEDSTACK_API_KEY", "s3cret")
    settings = ServerSettings.from_env(port=0, model_name="minilm")
    assert settings.api_key == "s3cret"
    model = SentenceTransformer(str(minilm_path), device="cpu", backend="auto")
    with start_server(model, settings) as server:
        url = f"{server.url}{OPENAI}"
        missing = httpx.post(url, json={"input": "a"})
        assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
        assert "Authorization: Bearer" in missing.json()["error"]["message"]
        wrong = httpx.post(url, json={"input": "a"}, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and "s3cret" not in wrong.text
        assert httpx.post(f"{server.url}{TEI}", json={"inputs": "a"}).status_code == 401
        assert httpx.get(f"{server.url}/v1/models").status_code == 401
        assert httpx.get(f"{server.url}/health").status_code == 200
        assert httpx.get(f"{server.url}/metrics").status_code == 200
        with openai.OpenAI(base_url=f"{server.url}/v1", api_key="s3cret", max_retries=0) as client:
            assert len(client.embeddings.create(input="a", model="minilm").data[0].embedding) == 384
        with openai.OpenAI(base_url=f"{server.url}/v1", api_key="wrong", max_retries=0) as client:
            with pytest.raises(openai.AuthenticationError):
                client.embeddings.create(input="a", model="minilm")


def test_auth_off_by_default(server):
    assert server.state.settings.api_key is None
    assert httpx.post(f"{server.url}{OPENAI}", json={"input": "a"}).status_code == 200


def test_settings_refuse_bad_values():
    with pytest.raises(ValueError, match="max_queue_tokens must be positive, got 0"):
        ServerSettings(max_queue_tokens=0)
    with pytest.raises(ValueError, match="port must be between 0 and 65535"):
        ServerSettings(port=70000)
    with pytest.raises(ValueError, match="api_key is empty"):
        ServerSettings(api_key=" ")
