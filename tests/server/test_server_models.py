"""Several models in one server process, on loopback: an embedder, a reranker and a sparse encoder side by side,
routed by the request's ``model`` field (or by the route's kind); ``/v1/models`` lists them with their kind and
width; each has its own queue, metrics and health, so one whose batches fail leaves the others serving; the CPU's
round slots are shared by demand, evenly between busy models; ``embedstack serve`` takes several ``--model`` or a
models file."""

from __future__ import annotations

import argparse
import asyncio
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
from embedstack.server.metrics import Metrics
from embedstack.server.occupancy import Occupancy
from embedstack.server.service import EmbeddingService
from embedstack.server.tokens import BatchKey
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
    assert metric(server.url, "embedstack_cpu_core_seconds_total", '{model="embedder"}') > 0
    assert metric(server.url, "embedstack_cpu_slot_wait_seconds_count", '{model="embedder"}') >= 1


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
    first = occupancy.enter()
    assert occupancy.widen(first) == 2 and first.threads == 2  # alone and small: every core

    def second() -> None:
        occupancy.leave(occupancy.enter())
        order.append("second ran")

    waiter = threading.Thread(target=second)
    waiter.start()
    time.sleep(0.2)
    assert order == []  # waits while the slot is held
    order.append("first left")
    occupancy.leave(first)
    waiter.join(10)
    assert order == ["first left", "second ran"]


def _wait_for_waiting(occupancy: Occupancy, count: int) -> None:
    deadline = time.monotonic() + 10
    while len(occupancy._waiting) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(occupancy._waiting) == count


class SteppedClock:
    """The clock the slots charge core time by, moved by the test: the order and shares do not hang on timing."""

    def __init__(self) -> None:
        self.now = 0.0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds


def _round(occupancy: Occupancy, tenant: str | None, order: list, hold=lambda: None) -> threading.Thread:
    """A worker's round of ``tenant`` on its own thread: waits for a slot, records itself, ``hold()``s, leaves."""

    def run() -> None:
        slot = occupancy.enter(tenant=tenant)
        order.append(tenant)
        hold()
        occupancy.leave(slot)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_a_round_that_comes_when_a_slot_frees_does_not_overtake_one_that_waits():
    occupancy = Occupancy(cores=2, share=1, slots=1)
    order: list[str | None] = []
    held = occupancy.enter()
    waiters = []
    for name in ("a", "b"):  # two rounds wait, in this order
        waiters.append(_round(occupancy, None, order))
        _wait_for_waiting(occupancy, len(waiters))
        order.append(name)
    occupancy.leave(held)
    occupancy.leave(occupancy.enter())  # comes as the slot frees: still enters after both
    order.append("newcomer")
    for waiter in waiters:
        waiter.join(10)
    assert order == ["a", "b", None, None, "newcomer"]


def test_a_freed_slot_goes_to_the_model_with_the_least_core_time_and_idle_time_is_not_banked():
    """Model A holds the only slot 0.3 s while B idles; then B's two rounds (0.1 s each) and A's next come. B comes
    in level with A (its idle time earns it nothing), so after B's first round A's turn comes, not B's second (B1, A,
    B2; with B's idle time banked: B1, B2, A)."""
    clock = SteppedClock()
    occupancy = Occupancy(cores=1, share=1, slots=1, clock=clock)
    order: list[str | None] = []
    held = occupancy.enter(tenant="A")
    clock.advance(0.3)
    threads = []
    for tenant in ("B", "B", "A"):  # B's two rounds come first, then A's next
        threads.append(_round(occupancy, tenant, order, hold=lambda: clock.advance(0.1)))
        _wait_for_waiting(occupancy, len(threads))
    occupancy.leave(held)
    for thread in threads:
        thread.join(10)
    assert order == ["B", "A", "B"]


def test_models_with_long_and_short_rounds_under_the_same_load_get_even_core_time():
    """Two busy models, two workers each: the one whose rounds last four times longer would take about 80% of the
    core time if the slot went in arrival order; shared by core time, each gets about half."""
    clock = SteppedClock()
    occupancy = Occupancy(cores=1, share=1, slots=1, clock=clock)
    held = {"long": 0.0, "short": 0.0}

    def worker(tenant: str, seconds: float) -> None:
        while clock() < 20:
            slot = occupancy.enter(tenant=tenant)
            clock.advance(seconds)  # one round at a time holds the only slot
            held[tenant] += seconds
            time.sleep(0.002)  # the other workers come back to wait meanwhile
            occupancy.leave(slot)

    workers = [threading.Thread(target=worker, args=(tenant, seconds), daemon=True)
               for tenant, seconds in (("long", 0.4), ("short", 0.1)) for _ in range(2)]  # fmt: skip
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(30)
    share = held["long"] / (held["long"] + held["short"])
    assert 0.4 < share < 0.6, held


def test_a_slot_widens_to_every_core_only_while_alone_and_charges_each_part_at_its_threads():
    clock = SteppedClock()
    occupancy = Occupancy(cores=2, share=1, slots=2, clock=clock)
    slot = occupancy.enter(tenant="A")
    assert slot.threads == 1
    clock.advance(0.1)  # 0.1 s on one core
    assert occupancy.widen(slot) == 2  # nothing else runs: every core
    clock.advance(0.2)  # 0.2 s on two
    other = occupancy.enter(tenant="B")
    assert occupancy.widen(other) == 1  # another round runs: its share
    assert occupancy.leave(slot) == pytest.approx(0.1 + 0.4)
    occupancy.leave(other)


async def _until(condition, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        await asyncio.sleep(0.005)
    assert condition()


def test_a_round_is_taken_when_its_slot_frees_so_it_holds_the_requests_that_came_meanwhile(models):
    """Another model holds the cores; one request comes, then two more while the worker waits for a slot. The worker
    takes its round once admitted: one round of all three (taken before waiting, the round held the first alone)."""
    model = models["embedder"]
    occupancy = Occupancy(cores=2, share=1, slots=1)
    metrics = Metrics()
    service = EmbeddingService(model, ServerSettings(workers=1), metrics.for_model("embedder"), occupancy=occupancy)
    texts = ["the first request", "a second one", "and a third"]

    async def scenario() -> list[np.ndarray]:
        held = occupancy.enter(tenant="another model")
        gone = asyncio.get_running_loop().create_future()
        asked = [asyncio.create_task(service.embed([texts[0]], BatchKey(), truncate=True, disconnected=gone))]
        await _until(lambda: len(occupancy._waiting) == 1)  # the worker waits for the cores
        for text in texts[1:]:
            asked.append(asyncio.create_task(service.embed([text], BatchKey(), truncate=True, disconnected=gone)))
        await _until(lambda: service.queue.inputs == 3)  # all three wait in the queue, none taken yet
        occupancy.leave(held)
        return [answer.vectors[0] for answer in await asyncio.gather(*asked)]

    service.start()
    try:
        vectors = asyncio.run(scenario())
    finally:
        service.stop()
    rounds = metrics.registry.get_sample_value("embedstack_batch_inputs_count", {"model": "embedder"})
    inputs = metrics.registry.get_sample_value("embedstack_batch_inputs_sum", {"model": "embedder"})
    assert (rounds, inputs) == (1, 3)
    np.testing.assert_allclose(np.stack(vectors), model.encode(texts), atol=ATOL)


def test_each_served_model_is_its_own_tenant_of_the_shared_slots(models, monkeypatch):
    """The server's models share one set of CPU slots, each model's rounds counted as its own (what even shares
    are computed over)."""
    tenants: list[object] = []

    class Recording(Occupancy):
        def enter(self, tenant=None):
            tenants.append(tenant)
            return super().enter(tenant)

    slots: list[Occupancy] = []
    monkeypatch.setattr(
        embedstack.server.app,
        "cpu_occupancy",
        lambda workers: slots.append(Recording(2, 1, slots=workers)) or slots[-1],
    )
    served = [NamedModel("embedder", models["embedder"]), NamedModel("reranker", models["reranker"])]
    with start_server(served, ServerSettings(port=0)) as running:
        assert httpx.post(f"{running.url}/v1/embeddings", json={"input": ["a"], "model": "embedder"}).status_code == 200
        answer = httpx.post(f"{running.url}/v1/rerank", json={"query": "q", "documents": ["a"], "model": "reranker"})
        assert answer.status_code == 200
    assert len(slots) == 1  # one set of slots for the process
    assert len(tenants) >= 2 and None not in tenants and len({id(tenant) for tenant in tenants}) == 2


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
