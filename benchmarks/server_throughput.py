"""Embedding servers side by side, one load generator: embedstack's server, a naive FastAPI server
(``server_naive.py``: ``model.encode`` per request) and infinity-emb 0.0.78 (torch engine, batch 32), all
serving the embedded all-MiniLM-L6-v2 folder on this machine, plus in-process ``encode`` for scale.

    .venv/bin/python benchmarks/server_throughput.py                  # all systems, 2 sweeps, 5 s windows
    .venv/bin/python benchmarks/server_throughput.py --systems embedstack,naive --sweeps 1

The load generator (OpenAI's embeddings route, base64 vectors as the openai client asks) runs C clients in a
closed loop, each sending N texts per request: STS-B sentences (short) or Wikipedia extracts (long). A cell warms
up until every client has had an answer (at least --warmup seconds), counts the texts of requests completed in its
measuring window and their latencies (p50/p99), then waits for the requests still out. Texts/s is the clients'
count times the texts per request over the mean latency (Little's law: a closed loop always has that many out),
which a server answering in bursts cannot move by where its bursts fall; the window's count is in the JSON.

The client runs on the same 2 cores as the server it measures, so what it costs is taken from the server and its
own scheduling delays land in the latencies. ``--client lean`` (the default: ``http_load.Connections``, keep-alive
connections over asyncio streams, on uvloop) costs 0.02 cores at 32 clients x 1 short text; ``--client httpx`` (the
openai client's transport, what the runs before 2026-12-05 used) costs 0.34-0.43 cores there, a fifth of the
machine, and the server that keeps the cores busiest loses the most to it (benchmarks/RESULTS.md). Each cell
records the client's cores (``client_cores``).

All servers run at once (idle while another is measured) and each cell measures the systems back to back, sweep
after sweep, so that a machine shared with other work slows them alike; the table reports each cell's median over
the sweeps. infinity lives in its own virtual environment (it needs sentence-transformers<4 and numpy<2), created
on first use with this machine's torch 2.13.0 wheel installed first: --infinity-venv (default
~/.cache/embedstack-bench/infinity-venv).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import platform
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import numpy as np
from encode_throughput import cpu_flags
from http_load import Connections, run

from embedstack import SentenceTransformer
from embedstack.defaults import default_model_path
from embedstack.evaluation.datasets import sts_benchmark, wikipedia_extracts

HERE = Path(__file__).resolve().parent
MODEL_NAME = "all-MiniLM-L6-v2"
INFINITY = "infinity-emb[server,torch]==0.0.78"
DEFAULT_VENV = Path.home() / ".cache" / "embedstack-bench" / "infinity-venv"
# In-process encode: the library's defaults, and the server's batch settings on CPU.
ENCODE_OPTIONS = {"defaults": {}, "batch_size 32, max_batch_tokens 1024": {"batch_size": 32, "max_batch_tokens": 1024}}


def corpora() -> dict[str, list[str]]:
    pairs = sts_benchmark("test")
    return {"sts": list(dict.fromkeys(pairs.sentences1 + pairs.sentences2)), "wiki": wikipedia_extracts(limit=2000)}


@dataclass
class Cell:
    system: str
    corpus: str
    concurrency: int
    texts_per_request: int
    texts_per_s: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int
    client_cores: float
    counted_texts_per_s: float  # the window's answered texts over its length


async def load(
    url: str, texts: list[str], concurrency: int, size: int, warmup: float, seconds: float, client: str = "lean"
) -> tuple:
    """Closed-loop load over the measuring window: (texts/s, p50 ms, p99 ms, requests, errors, client cores, counted).

    The window opens once every client has had an answer (and ``warmup`` seconds passed), so a cell whose
    requests take longer than the warm-up is still measured in its steady state, and lasts at least as long
    as that took (about one request latency), so slow cells count more than a handful of requests. ``client``:
    "lean" (``http_load.Connections``) or "httpx"; the client's cores are its process's CPU seconds over the cell.
    """
    cursor = 0
    start = time.perf_counter()
    cpu = time.process_time()
    answered: set[int] = set()
    opened: list[float] = []  # the window's start and length, once known
    records: list[tuple[float, float, bool]] = []  # (finished, latency, ok)

    async def one(index: int, post) -> None:
        nonlocal cursor
        while not opened or time.perf_counter() < opened[0] + opened[1]:
            batch = [texts[(cursor + k) % len(texts)] for k in range(size)]
            cursor += size
            sent = time.perf_counter()
            try:
                status, answer = await post({"input": batch, "model": MODEL_NAME, "encoding_format": "base64"})
                ok = status == 200 and len(json.loads(answer)["data"]) == size
            except (httpx.HTTPError, ConnectionError, ValueError):
                ok = False
            finished = time.perf_counter()
            records.append((finished, finished - sent, ok))
            answered.add(index)
            if not opened and len(answered) == concurrency:
                opened.extend([max(finished, start + warmup), max(seconds, finished - start)])

    if client == "httpx":
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(600.0)) as http:

            async def post(body: dict) -> tuple[int, bytes]:
                response = await http.post(url, json=body)
                return response.status_code, response.content

            await asyncio.gather(*(one(index, post) for index in range(concurrency)))
    else:
        parts = urlsplit(url)
        async with Connections(parts.hostname or "127.0.0.1", parts.port or 80, concurrency) as connections:
            post = functools.partial(connections.post, parts.path)
            await asyncio.gather(*(one(index, post) for index in range(concurrency)))
    cores = (time.process_time() - cpu) / (time.perf_counter() - start)
    begin, length = opened
    end = begin + length
    window = [(latency, ok) for finished, latency, ok in records if begin <= finished <= end]
    latencies = [latency for latency, ok in window if ok]
    errors = sum(1 for _, _, ok in records if not ok)  # over the whole cell, warm-up included
    if not latencies:
        return 0.0, float("nan"), float("nan"), 0, errors, cores, 0.0
    # Little's law: ``concurrency`` requests are always out, so texts/s = concurrency x size / mean latency (the
    # answered share of them). A count of the window's answers is the same in the long run, but a server that
    # answers in bursts (infinity at 32 x 16 Wikipedia extracts: 12 s requests ending together) puts a burst in or
    # out of a window about one latency long: its count moved 21-28 texts/s between sweeps while the latencies
    # stayed put (41 texts/s by this law). The count is kept beside it.
    rate = concurrency * size * len(latencies) / len(window) / float(np.mean([latency for latency, _ in window]))
    ms = np.array(latencies) * 1000
    p50, p99 = float(np.median(ms)), float(np.percentile(ms, 99))
    return rate, p50, p99, len(latencies), errors, cores, len(latencies) * size / length


def start(command: list[str], health: str, log: Path, env: dict | None = None) -> subprocess.Popen:
    process = subprocess.Popen(command, stdout=log.open("w"), stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{command[0]} exited with {process.returncode}; see {log}")
        try:
            if httpx.get(health, timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    stop(process)
    raise RuntimeError(f"{' '.join(command)} did not answer {health} within 300 s; see {log}")


def stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(30)


def infinity_venv(venv: Path) -> Path:
    """infinity's own environment: torch 2.13.0 first (this machine's CPU wheel), then infinity."""
    executable = venv / "bin" / "infinity_emb"
    if executable.exists():
        return executable
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, "torch==2.13.0"], check=True)
    subprocess.run([*pip, INFINITY, "torch==2.13.0"], check=True)  # pinned again: pip must not swap torch
    return executable


def server_command(system: str, port: int, folder: str, venv: Path) -> tuple[list[str], str, str]:
    """(command, health URL, embeddings URL) of one system."""
    base = f"http://127.0.0.1:{port}"
    if system == "embedstack":
        command = [sys.executable, "-m", "embedstack.cli", "serve", "--model", folder, "--port", str(port)]
        return [*command, "--model-name", MODEL_NAME], f"{base}/health", f"{base}/v1/embeddings"
    if system == "naive":
        command = [sys.executable, str(HERE / "server_naive.py"), "--model", folder, "--port", str(port)]
        return command, f"{base}/health", f"{base}/v1/embeddings"
    command = [
        str(infinity_venv(venv)), "v2", "--model-id", folder, "--served-model-name", MODEL_NAME, "--engine", "torch",
        "--device", "cpu", "--batch-size", "32", "--host", "127.0.0.1", "--port", str(port),
    ]  # fmt: skip
    return command, f"{base}/health", f"{base}/embeddings"


@functools.cache
def _model(folder: str) -> SentenceTransformer:
    model = SentenceTransformer(folder, device="cpu", backend="auto")
    model.encode(["warm-up"] * 64)
    return model


def in_process(folder: str, texts: list[str], seconds: float, **options: int) -> float:
    """Texts/s of ``model.encode(chunk_of_256, **options)`` over the corpus, in this process."""
    model = _model(folder)
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        chunk = texts[done % len(texts) : done % len(texts) + 256]
        model.encode(chunk, **options)
        done += len(chunk)
    return done / (time.perf_counter() - started)


def markdown(cells: list[Cell], encode: dict[str, list[float]], systems: list[str]) -> str:
    """One row per cell: each system's median texts/s, p50 and p99 over the sweeps; then in-process encode."""
    groups: dict[tuple, dict[str, list[Cell]]] = {}
    for c in cells:
        groups.setdefault((c.corpus, c.texts_per_request, c.concurrency), {}).setdefault(c.system, []).append(c)
    head = " | ".join(f"{s} texts/s | {s} p50/p99 ms" for s in systems)
    lines = [f"| corpus | texts/req | clients | {head} | errors |", "|---" * (4 + 2 * len(systems)) + "|"]
    for (corpus, size, clients), runs in sorted(groups.items()):
        parts, errors = [], 0
        for system in systems:
            got = runs.get(system, [])
            errors += sum(c.errors for c in got)
            rate = np.median([c.texts_per_s for c in got]) if got else float("nan")
            p50, p99 = (np.median([getattr(c, k) for c in got]) if got else float("nan") for k in ("p50_ms", "p99_ms"))
            parts.append(f"{rate:.1f} | {p50:.0f} / {p99:.0f}")
        lines.append(f"| {corpus} | {size} | {clients} | {' | '.join(parts)} | {errors} |")
    lines += ["", "| in-process encode | texts/s (median) |", "|---|---|"]
    lines += [f"| {name} | {np.median(rates):.1f} |" for name, rates in encode.items()]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--systems", default="embedstack,naive,infinity")
    parser.add_argument("--model", type=Path, help="what embedstack and naive serve (default: all-MiniLM-L6-v2)")
    parser.add_argument("--corpora", default="sts,wiki")
    parser.add_argument("--concurrency", default="1,8,32")
    parser.add_argument("--sizes", default="1,16", help="texts per request")
    parser.add_argument("--seconds", type=float, default=5.0, help="measuring window per cell")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--sweeps", type=int, default=2, help="measure every cell this many times; report medians")
    parser.add_argument("--client", choices=("lean", "httpx"), default="lean", help="the load generator's HTTP client")
    parser.add_argument("--port", type=int, default=8790)
    parser.add_argument("--infinity-venv", type=Path, default=DEFAULT_VENV)
    parser.add_argument("--out", type=Path, default=HERE / "out" / "server_throughput.json")
    args = parser.parse_args()
    folder = str(args.model or default_model_path())
    texts = corpora()
    flags = cpu_flags()
    print(f"CPU flags: {flags}; {os.cpu_count()} cores; {platform.processor()}; client {args.client}", flush=True)
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "INFINITY_ANONYMOUS_USAGE_STATS": "0", "DO_NOT_TRACK": "1"}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    systems = args.systems.split(",")
    cells: list[Cell] = []
    encode: dict[str, list[float]] = {}
    processes, urls = [], {}
    try:
        for offset, system in enumerate(systems):
            # infinity's sentence-transformers 3 cannot read a 6.2-format folder (an --model export): it serves the
            # original folder, the same weights.
            served = str(default_model_path()) if system == "infinity" else folder
            command, health, urls[system] = server_command(system, args.port + offset, served, args.infinity_venv)
            processes.append(start(command, health, args.out.parent / f"{system}.log", env))
        for _ in range(args.sweeps):
            for corpus in args.corpora.split(","):
                for name, options in ENCODE_OPTIONS.items():
                    rate = in_process(folder, texts[corpus], args.seconds, **options)
                    encode.setdefault(f"{corpus}, {name}", []).append(rate)
                for size in map(int, args.sizes.split(",")):
                    for concurrency in map(int, args.concurrency.split(",")):
                        for system in systems:
                            result = load(
                                urls[system], texts[corpus], concurrency, size, args.warmup, args.seconds, args.client
                            )
                            cells.append(Cell(system, corpus, concurrency, size, *run(result)))
                            print(asdict(cells[-1]), flush=True)
    finally:
        for process in processes:
            stop(process)
    print(markdown(cells, encode, systems))
    record = {"cells": [asdict(c) for c in cells], "encode": encode, "flags": flags, "client": args.client}
    args.out.write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
