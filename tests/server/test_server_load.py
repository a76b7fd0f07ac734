"""The server under load and faults, on a real server on loopback (every loop bounded in count and time):
32 concurrent clients, overload, a client that disconnects, a broken and a stuck model worker."""

from __future__ import annotations

import asyncio
import base64
import json
import random
import socket
import threading
import time

import httpx
import numpy as np
import pytest

from embedstack import SentenceTransformer
from embedstack.server import ServerSettings, start_server
from server_support import assert_close, long_texts, metric, short_texts, wait_for

pytest.importorskip("fastapi")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served(minilm_path):
    return SentenceTransformer(str(minilm_path), device="cpu", backend="auto")


@pytest.fixture(scope="module")
def pool(minilm):
    texts = short_texts(120) + long_texts(40)
    return texts, minilm.encode(texts)


async def _request(client: httpx.AsyncClient, url: str, texts: list[str], route: str) -> tuple[int, object]:
    if route == "tei":
        response = await client.post(f"{url}/embed", json={"inputs": texts})
        return response.status_code, response.json() if response.status_code == 200 else response
    encoding = "base64" if route == "base64" else "float"
    response = await client.post(f"{url}/v1/embeddings", json={"input": texts, "encoding_format": encoding})
    if response.status_code != 200:
        return response.status_code, response
    data = response.json()["data"]
    if encoding == "base64":
        return 200, [np.frombuffer(base64.b64decode(item["embedding"]), dtype="<f4") for item in data]
    return 200, [item["embedding"] for item in data]


def test_32_concurrent_clients_each_get_the_vectors_of_their_own_inputs(served, pool):
    texts, expected = pool
    failures: list[str] = []
    done = 0

    async def client_loop(client: httpx.AsyncClient, url: str, seed: int, deadline: float) -> None:
        nonlocal done
        rng = random.Random(seed)
        while time.monotonic() < deadline and done < 320:
            picks = [rng.randrange(len(texts)) for _ in range(rng.randint(1, 12))]  # duplicates too
            route = rng.choice(["float", "base64", "tei"])
            status, vectors = await _request(client, url, [texts[i] for i in picks], route)
            if status != 200:
                failures.append(f"{status}: {vectors.text}")
                continue
            assert_close(vectors, expected[picks])
            done += 1

    async def main(url: str) -> None:
        limits = httpx.Limits(max_connections=32)
        async with httpx.AsyncClient(limits=limits, timeout=60) as client:
            deadline = time.monotonic() + 6
            await asyncio.gather(*(client_loop(client, url, seed, deadline) for seed in range(32)))

    with start_server(served) as server:
        asyncio.run(main(server.url))
        rounds = metric(server.url, "embedstack_batch_inputs_count")
    assert failures == [] and done >= 32
    assert rounds < done  # requests shared forward rounds


def test_overload_answers_429_at_once_and_accepted_requests_stay_correct(served, pool):
    texts, expected = pool
    long_ones = list(range(120, 160))
    settings = ServerSettings(port=0, max_queue_tokens=1500, window_tokens=800)

    async def burst(url: str) -> list[tuple[int, object, list[int], httpx.Headers | None]]:
        async with httpx.AsyncClient(limits=httpx.Limits(max_connections=48), timeout=60) as client:

            async def one(seed: int):
                picks = random.Random(seed).sample(long_ones, 8)
                response = await client.post(f"{url}/v1/embeddings", json={"input": [texts[i] for i in picks]})
                body = response.json()
                return response.status_code, body, picks, response.headers

            return await asyncio.gather(*(one(seed) for seed in range(48)))

    with start_server(served, settings) as server:
        results = asyncio.run(burst(server.url))
        statuses = [status for status, *_ in results]
        assert set(statuses) <= {200, 429}, statuses
        assert statuses.count(429) > 0 and statuses.count(200) > 0
        for status, body, picks, headers in results:
            if status == 429:
                assert int(headers["retry-after"]) >= 1 and body["error"]["code"] == "queue_full"
            else:
                assert_close([item["embedding"] for item in body["data"]], expected[picks])
        assert server.state.service.queue.peak_tokens <= 1500  # memory stays bounded
        assert httpx.get(f"{server.url}/health").status_code == 200
        assert httpx.post(f"{server.url}/v1/embeddings", json={"input": "after the storm"}).status_code == 200
        labels = '{model="embedstack-model",reason="queue_full"}'
        assert metric(server.url, "embedstack_rejected_requests_total", labels) == statuses.count(429)


def test_a_disconnected_clients_waiting_inputs_are_not_computed(served, pool, minilm, monkeypatch):
    texts, expected = pool
    big = [f"{i}: {text}" for i, text in enumerate(long_texts(400))]  # about 40,000 tokens, distinct
    original = served.forward_modules

    def slow(features, module_kwargs):  # at least 2 s for the large request's ~10 rounds, however fast this CPU
        time.sleep(0.2)
        return original(features, module_kwargs)

    monkeypatch.setattr(served, "forward_modules", slow)
    with start_server(served, ServerSettings(port=0, window_tokens=4096)) as server:  # about 10 rounds
        url = server.url
        computed_before = metric(url, "embedstack_computed_inputs_total")
        body = json.dumps({"input": big}).encode()
        host, port = url.removeprefix("http://").split(":")
        sock = socket.create_connection((host, int(port)))
        head = f"POST /v1/embeddings HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        sock.sendall(f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
        wait_for(lambda: metric(url, "embedstack_queue_inputs") > 0, 20, "the large request to be queued")
        other = httpx.post(f"{url}/v1/embeddings", json={"input": texts[:3]}, timeout=60)  # not held back
        assert_close([item["embedding"] for item in other.json()["data"]], expected[:3])
        sock.close()
        wait_for(lambda: metric(url, "embedstack_cancelled_requests_total") == 1, 20, "the cancellation")
        service = server.state.service

        def idle() -> bool:
            return service.queue.inputs == 0 and all(worker.busy_since is None for worker in service.workers)

        wait_for(idle, 20, "the workers to idle")
        computed = metric(url, "embedstack_computed_inputs_total") - computed_before - 3
        dropped = metric(url, "embedstack_cancelled_inputs_total")
        assert computed + dropped == len(big) and dropped >= 100
        assert httpx.get(f"{url}/health").status_code == 200


@pytest.fixture
def fragile(stack_folder):
    """A small model of its own, whose forward pass the tests break."""
    return SentenceTransformer(str(stack_folder), device="cpu")


def test_a_broken_worker_turns_health_503_and_requests_fail_fast(fragile):
    settings = ServerSettings(port=0, max_consecutive_failures=2)
    with start_server(fragile, settings) as server:
        url = server.url
        assert httpx.post(f"{url}/embed", json={"inputs": "fine"}).status_code == 200

        def broken(features, module_kwargs):
            raise RuntimeError("injected fault: device lost")

        fragile.forward_modules = broken
        for _ in range(2):  # each failed batch answers its requests with a 500 naming the fault
            failed = httpx.post(f"{url}/embed", json={"inputs": "x"})
            assert failed.status_code == 500 and "injected fault" in failed.json()["error"]
        health = httpx.get(f"{url}/health")
        assert health.status_code == 503 and "Restart the server" in health.json()["reason"]
        started = time.monotonic()
        refused = httpx.post(f"{url}/v1/embeddings", json={"input": "x"}, timeout=10)
        assert refused.status_code == 503 and time.monotonic() - started < 5  # at once, not after a batch
        assert "worker stopped" in refused.json()["error"]["message"]
        assert metric(url, "embedstack_worker_up") == 0 and metric(url, "embedstack_failed_batches_total") == 2


def test_a_stuck_worker_turns_health_503_until_its_batch_finishes(fragile):
    release = threading.Event()
    original = fragile.forward_modules

    def slow(features, module_kwargs):
        release.wait(timeout=20)
        return original(features, module_kwargs)

    with start_server(fragile, ServerSettings(port=0, stuck_after_s=0.3)) as server:
        url = server.url
        fragile.forward_modules = slow
        answer: list[httpx.Response | Exception] = []

        def send() -> None:
            try:
                answer.append(httpx.post(f"{url}/embed", json={"inputs": "x"}, timeout=60))
            except Exception as exc:  # noqa: BLE001 - asserted on below
                answer.append(exc)

        thread = threading.Thread(target=send)
        thread.start()
        wait_for(lambda: httpx.get(f"{url}/health").status_code == 503, 10, "/health to report the stuck worker")
        assert "recovers by itself" in httpx.get(f"{url}/health").json()["reason"]
        release.set()
        thread.join(20)
        assert isinstance(answer[0], httpx.Response) and answer[0].status_code == 200, answer
        assert httpx.get(f"{url}/health").status_code == 200
