"""`embedstack serve`: its options, the extra it needs, the core never importing the server's dependencies,
and a graceful SIGTERM with requests in flight (the server in a subprocess)."""

from __future__ import annotations

import concurrent.futures
import importlib.util
import os
import re
import signal
import subprocess
import sys
import threading

import httpx
import pytest

from embedstack.cli import build_parser, main
from server_support import assert_close, long_texts, metric, wait_for

SERVER_DEPENDENCIES = ("fastapi", "uvicorn", "starlette", "orjson", "prometheus_client", "embedstack.server")


def test_serve_options_and_their_defaults():
    args = build_parser().parse_args(["serve"])
    assert (args.host, args.port, args.api_key, args.model, args.backend) == ("127.0.0.1", 8000, None, None, "auto")
    args = build_parser().parse_args(["serve", "--port", "0", "--api-key", "k", "--max-queue-tokens", "5000"])
    assert (args.port, args.api_key, args.max_queue_tokens) == (0, "k", 5000)


def test_the_core_and_the_cli_never_import_the_server():
    code = f"import sys, embedstack, embedstack.cli; print([m for m in {SERVER_DEPENDENCIES!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True).stdout
    assert out.strip() == "[]"


def test_serve_without_the_extra_says_what_to_install(monkeypatch, capsys):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "fastapi" else real(name, *a))
    assert main(["serve"]) == 2
    err = capsys.readouterr().err
    assert "needs the server extra (fastapi not installed)" in err and "pip install 'embedstack[server]'" in err


@pytest.mark.slow
def test_sigterm_answers_the_requests_in_flight_and_exits_0(minilm_path, minilm):
    pytest.importorskip("fastapi")
    # Large enough (about 10,000 tokens each) that all four are still in flight when the fourth arrives, on a
    # fast many-core machine too.
    texts = [[f"{i}.{j} {text}" for j, text in enumerate(long_texts(64))] for i in range(4)]
    command = [sys.executable, "-m", "embedstack.cli", "serve", "--port", "0", "--model", str(minilm_path)]
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    process = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stderr), daemon=True)
    reader.start()
    # The vectors to compare with, computed here while the server starts (one thread each on the 2-core machine).
    local = concurrent.futures.ThreadPoolExecutor(1)
    expected = local.submit(lambda: [minilm.encode(batch) for batch in texts])
    local.shutdown(wait=False)
    try:
        wait_for(lambda: any("embedstack serve:" in line for line in lines), 90, "the server to start")
        url = re.search(r" at (http://\S+) ", next(line for line in lines if "embedstack serve:" in line)).group(1)
        answers: dict[int, httpx.Response | Exception] = {}

        def send(index: int) -> None:
            try:
                answers[index] = httpx.post(f"{url}/v1/embeddings", json={"input": texts[index]}, timeout=120)
            except Exception as exc:  # noqa: BLE001 - recorded and asserted on below
                answers[index] = exc

        clients = [threading.Thread(target=send, args=(index,)) for index in range(len(texts))]
        for client in clients:
            client.start()
        # Four requests in flight, plus the /metrics request that asks.
        wait_for(lambda: metric(url, "embedstack_requests_in_flight") >= 5, 30, "the requests to be in flight")
        process.send_signal(signal.SIGTERM)
        for client in clients:
            client.join(120)
        assert process.wait(timeout=120) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)
    reader.join(10)
    assert all(isinstance(answers.get(i), httpx.Response) and answers[i].status_code == 200 for i in range(4)), answers
    for index, vectors in enumerate(expected.result(timeout=300)):
        assert_close([item["embedding"] for item in answers[index].json()["data"]], vectors)
    assert "Traceback" not in "".join(lines)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/health", timeout=5)
