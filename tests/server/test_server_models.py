"""Several models in one server process, on loopback: an embedder, a reranker and a sparse encoder side by side,
routed by the request's ``model`` field (or by the route's kind); ``/v1/models`` lists them with their kind and
width; each has its own queue, metrics and health, so one whose batches fail leaves the others serving; the CPU's
round slots are shared by demand; ``embedstack serve`` takes several ``--model`` or a models file."""

from __future__ import annotations

import argparse
import json
import threading
import time

import httpx
import numpy as np
import pytest

import embedstack.server
from embedstack import CrossEncoder, SentenceTransformer, SparseEncoder
from embedstack.cli import main
from embedstack.cli.served_models import served_models
from embedstack.server import NamedModel, ServerSettings, start_server
from embedstack.server.worker import Occupancy
from server_support import ATOL, metric, short_texts

pytest.importorskip("fastapi")


@pytest.fixture(scope="module")
def models(stack_folder, cross_encoder_path, mlm_path):
    return {
        "embedder": SentenceTransformer(str(stack_folder), device="cpu"),
        "reranker": CrossEncoder(str(cross_encoder_path), device="cpu"),
        "splade": SparseEncoder(str(mlm_path), device="cpu", max_active_dims=16),
    }


@pytest.fixture(scope="module")
def server(models, stack_folder):
    served = [
        NamedModel("embedder", models["embedder"], frozenset({str(stack_folder)})),
        NamedModel("reranker", models["reranker"]),
        NamedModel("splade", models["splade"]),
    ]
    with start_server(served, ServerSettings(port=0)) as running:
        yield running


def test_v1_models_lists_each_model_with_its_kind_and_width(server, stack_folder):
    cards = httpx.get(f"{server.url}/v1/models").json()["data"]
    assert [(card["id"], card["kind"], card["model_kind"], card["dimensions"]) for card in cards] == [
        ("embedder", "embedding", "SentenceTransformer", 8),
        ("reranker", "rerank", "CrossEncoder", 1),
        ("splade", "sparse", "SparseEncoder", 30522),
    ]
    assert cards[0]["aliases"] == [str(stack_folder)]
    assert {card["backend"] for card in cards} == {"torch"}
    info = httpx.get(f"{server.url}/info", params={"model": "reranker"}).json()
    assert (info["model_id"], info["model_kind"], info["routes"]) == (
        "reranker",
        "CrossEncoder",
        ["/rerank", "/v1/rerank"],
    )


def test_requests_reach_the_model_they_name_and_get_its_answers(server, models, stack_folder):
    texts = short_texts(6)
    for name in (None, "embedder", str(stack_folder)):  # the route's kind, the name, an alias
        body = {"input": texts} | ({"model": name} if name else {})
        answer = httpx.post(f"{server.url}/v1/embeddings", json=body).json()
        assert answer["model"] == (name or "embedder")
        vectors = np.array([item["embedding"] for item in answer["data"]])
        np.testing.assert_allclose(vectors, models["embedder"].encode(texts), atol=ATOL)
    ranked = httpx.post(f"{server.url}/rerank", json={"query": texts[0], "texts": texts[1:], "model": "reranker"})
    expected = models["reranker"].predict([(texts[0], text) for text in texts[1:]])
    np.testing.assert_allclose([item["score"] for item in sorted(ranked.json(), key=lambda x: x["index"])], expected,
                               atol=ATOL)  # fmt: skip
    sparse = httpx.post(f"{server.url}/embed_sparse", json={"inputs": texts[:2]}).json()
    weights = models["splade"].encode(texts[:2]).to_dense()
    for row, pairs in zip(weights, sparse):
        assert {item["index"] for item in pairs} == set(row.nonzero().flatten().tolist())
        np.testing.assert_allclose([item["value"] for item in pairs], row[[item["index"] for item in pairs]], atol=ATOL)


def test_a_model_of_another_kind_or_not_served_is_refused(server):
    wrong = httpx.post(f"{server.url}/v1/embeddings", json={"input": "a", "model": "reranker"})
    assert wrong.status_code == 400 and wrong.json()["error"]["code"] == "wrong_model_kind"
    message = wrong.json()["error"]["message"]
    assert "'reranker': it is a CrossEncoder" in message and "Send model 'embedder' (served here)" in message
    missing = httpx.post(f"{server.url}/v1/embeddings", json={"input": "a", "model": "embeder"})
    assert missing.status_code == 404 and "'embedder'" in missing.json()["error"]["message"]  # a close match
    assert httpx.get(f"{server.url}/info", params={"model": "nope"}).status_code == 404


def test_metrics_are_per_model(server):
    httpx.post(f"{server.url}/embed", json={"inputs": "metrics, please", "model": "embedder"})
    text = httpx.get(f"{server.url}/metrics").text
    for name in ("embedder", "reranker", "splade"):
        assert f'embedstack_worker_up{{model="{name}"}} 1.0' in text
    assert metric(server.url, "embedstack_computed_inputs_total", '{model="embedder"}') >= 1


def test_two_served_models_may_not_share_a_name(models):
    with pytest.raises(ValueError, match="'same' is given to 2 served models; give each its own name"):
        embedstack.server.create_app([NamedModel("same", models["embedder"]), NamedModel("same", models["reranker"])])
    with pytest.raises(ValueError, match="answer to 'x'"):
        embedstack.server.create_app(
            [NamedModel("a", models["embedder"], frozenset({"x"})), NamedModel("x", models["reranker"])]
        )


def test_one_folder_served_twice_answers_to_its_two_names_only(models, stack_folder):
    twice = [NamedModel(name, models["embedder"], frozenset({str(stack_folder)})) for name in ("first", "second")]
    app = embedstack.server.create_app(twice)  # the shared path alias is dropped, not a conflict
    entries = app.state.embedstack.models
    assert list(entries) == ["first", "second"]
    assert all(str(stack_folder) not in entry.aliases for entry in entries.values())


def test_a_model_whose_batches_fail_leaves_the_other_serving(stack_folder, cross_encoder_path):
    broken = SentenceTransformer(str(stack_folder), device="cpu")
    healthy = CrossEncoder(str(cross_encoder_path), device="cpu")
    settings = ServerSettings(port=0, max_consecutive_failures=2)
    with start_server([NamedModel("broken", broken), NamedModel("healthy", healthy)], settings) as server:
        url = server.url

        def fail(features, module_kwargs):
            raise RuntimeError("injected fault")

        broken.forward_modules = fail
        for _ in range(2):
            assert httpx.post(f"{url}/embed", json={"inputs": "x"}).status_code == 500
        health = httpx.get(f"{url}/health")
        assert health.status_code == 503 and health.json()["models"]["healthy"] == "ok"
        assert "broken: The model worker stopped" in health.json()["reason"]
        assert httpx.get(f"{url}/health", params={"model": "healthy"}).status_code == 200
        assert httpx.post(f"{url}/embed", json={"inputs": "x"}).status_code == 503  # the broken one, at once
        for _ in range(3):  # the other keeps answering
            answer = httpx.post(f"{url}/v1/rerank", json={"query": "q", "documents": ["a", "b"]})
            assert answer.status_code == 200 and len(answer.json()["results"]) == 2
        assert metric(url, "embedstack_worker_up", '{model="broken"}') == 0
        assert metric(url, "embedstack_worker_up", '{model="healthy"}') == 1


def test_round_slots_are_shared_in_arrival_order():
    occupancy = Occupancy(cores=2, share=1, slots=1)
    order: list[str] = []
    assert occupancy.enter(small=True) == 2  # alone and small: every core

    def second() -> None:
        occupancy.enter(small=False)
        order.append("second ran")
        occupancy.leave()

    waiter = threading.Thread(target=second)
    waiter.start()
    time.sleep(0.2)
    assert order == []  # waits while the slot is held
    order.append("first left")
    occupancy.leave()
    waiter.join(10)
    assert order == ["first left", "second ran"]


def test_a_round_that_comes_when_a_slot_frees_does_not_overtake_one_that_waits():
    occupancy = Occupancy(cores=2, share=1, slots=1)
    order: list[str] = []
    occupancy.enter(small=False)

    def waiting(name: str) -> None:
        occupancy.enter(small=False)
        order.append(name)
        occupancy.leave()

    waiters = []
    for name in ("a", "b"):  # two rounds wait, in this order
        waiters.append(threading.Thread(target=waiting, args=(name,), daemon=True))
        waiters[-1].start()
        deadline = time.monotonic() + 10
        while len(occupancy._waiting) < len(waiters) and time.monotonic() < deadline:
            time.sleep(0.01)
    occupancy.leave()
    waiting("newcomer")  # comes as the slot frees, holding the lock first: still enters after both
    for waiter in waiters:
        waiter.join(10)
    assert order == ["a", "b", "newcomer"]


def test_serve_takes_several_models_and_a_models_file(tmp_path, stack_folder, cross_encoder_path, monkeypatch):
    served = []
    monkeypatch.setattr(embedstack.server, "serve", lambda model, *args, **kwargs: served.append(model))
    command = ["serve", "--port", "0", "--backend", "torch", "--model", str(stack_folder)]
    assert main([*command, "--model", str(cross_encoder_path), "--model-name", "emb", "--model-name", "rr"]) == 0
    assert [(named.name, type(named.model)) for named in served[0]] == [
        ("emb", SentenceTransformer),
        ("rr", CrossEncoder),
    ]
    models_file = tmp_path / "models.toml"
    models_file.write_text(
        f'[[models]]\nname = "emb"\npath = "{stack_folder}"\nbackend = "torch"\n\n'
        f'[[models]]\nname = "rr"\npath = "{cross_encoder_path}"\nkind = "CrossEncoder"\n'
    )
    assert main(["serve", "--port", "0", "--models-file", str(models_file)]) == 0
    assert [(named.name, named.model.model_type) for named in served[1]] == [
        ("emb", "SentenceTransformer"), ("rr", "CrossEncoder"),
    ]  # fmt: skip
    (tmp_path / "models.json").write_text(json.dumps({"models": [{"path": str(stack_folder)}]}))
    assert main(["serve", "--port", "0", "--models-file", str(tmp_path / "models.json")]) == 0
    assert isinstance(served[2], SentenceTransformer)  # one model: served as before


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('[[models]]\nname = "a"\n', "models[0] needs 'path'"),
        ('[[models]]\npath = "p"\ncolour = "red"\n', "models[0] has unknown keys ['colour']"),
        ('[[models]]\npath = "p"\nkind = "Reranker"\n', "models[0] key 'kind' is 'Reranker'"),
        ('[[models]]\npath = "p"\ntrust_remote_code = "false"\n', "models[0] key 'trust_remote_code' must be true or"),
        ('[[models]]\npath = "p"\nbackend = "tpu"\n', "models[0] key 'backend' is 'tpu'; it must be one of"),
        ("models = 3\n", "must hold a non-empty list 'models'"),
        ("[[models]\n", "is not valid TOML"),
    ],
)
def test_a_bad_models_file_names_the_file_entry_and_key(tmp_path, content, message):
    models_file = tmp_path / "models.toml"
    models_file.write_text(content)
    args = argparse.Namespace(models_file=str(models_file), model=None, model_name=None)
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        served_models(args)
    assert str(models_file) in str(pytest.raises(ValueError, served_models, args).value)


def test_a_model_kind_in_the_file_is_checked(tmp_path, stack_folder, capsys):
    models_file = tmp_path / "models.json"
    models_file.write_text(json.dumps({"models": [{"path": str(stack_folder), "kind": "CrossEncoder"}]}))
    assert main(["serve", "--port", "0", "--models-file", str(models_file)]) != 0
    error = capsys.readouterr().err
    expected = f"{models_file} models[0] key 'kind' is 'CrossEncoder', but {stack_folder} holds a SentenceTransformer"
    assert expected in error
