"""The token-bounded queue on its own: bounds, rounds under a token budget, fairness, cancellation."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

pytest.importorskip("fastapi")

from embedstack.server.occupancy import Occupancy  # noqa: E402
from embedstack.server.queue import Job, RoundSize, TokenQueue  # noqa: E402
from embedstack.server.tokens import BatchKey, RequestTokens  # noqa: E402


@pytest.fixture
def loop():
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def job(loop, lengths, key=None):
    n = len(lengths)
    tokens = RequestTokens(
        [f"t{i}" for i in range(n)], np.arange(n), None, np.asarray(lengths), np.zeros(n, bool), key or BatchKey()
    )
    return Job(tokens, loop, loop.create_future())


def test_the_queue_refuses_what_does_not_fit_and_stays_within_its_bound(loop):
    queue = TokenQueue(max_tokens=100)
    assert queue.put(job(loop, [30, 30]))
    assert not queue.put(job(loop, [50]))  # 60 + 50 > 100
    assert queue.put(job(loop, [40]))
    assert queue.full and queue.tokens == 100 and queue.inputs == 3 and queue.peak_tokens == 100


def test_a_round_stays_within_the_budget_and_a_long_input_runs_alone(loop):
    queue = TokenQueue(max_tokens=10_000)
    big = job(loop, [10] * 20)
    queue.put(big)
    first = queue.take(budget=55)
    assert [(s.start, s.stop) for s in first] == [(0, 5)]
    assert queue.tokens == 150 and queue.inputs == 15
    huge = TokenQueue(max_tokens=10_000)
    huge.put(job(loop, [500, 10]))
    assert [(s.start, s.stop) for s in huge.take(budget=100)] == [(0, 1)]


def test_a_round_of_short_inputs_stops_at_its_tokens_and_long_inputs_get_enough_of_them_to_sort(loop):
    size = RoundSize(tokens=100, inputs=8, most=1000)
    short = TokenQueue(max_tokens=100_000)
    for _ in range(50):  # 50 requests of one 10-token input: a round takes 100 tokens (10 inputs)
        short.put(job(loop, [10]))
    assert sum(s.stop - s.start for s in short.take(size)) == 10
    long = TokenQueue(max_tokens=100_000)
    for _ in range(50):  # 200-token inputs: a round takes 8 of them (1,600 tokens, capped at 1,000: 5)
        long.put(job(loop, [200]))
    assert sum(s.stop - s.start for s in long.take(size)) == 5
    assert RoundSize(tokens=100, inputs=8, most=10_000).budget(waiting_tokens=10_000, waiting_inputs=50) == 1600
    assert RoundSize(tokens=100).budget(waiting_tokens=10_000, waiting_inputs=50) == 100  # fixed: window_tokens


def test_a_large_request_takes_at_most_half_a_round_while_others_wait(loop):
    queue = TokenQueue(max_tokens=10_000)
    large, small = job(loop, [10] * 100), job(loop, [10, 10])
    queue.put(large)
    queue.put(small)
    round_ = queue.take(budget=100)
    assert [(s.job, s.stop - s.start) for s in round_] == [(large, 5), (small, 2)]


def test_a_small_request_that_does_not_fit_waits_whole_for_the_next_round(loop):
    queue = TokenQueue(max_tokens=10_000)
    first, second, third = job(loop, [30, 30]), job(loop, [25, 25]), job(loop, [5])
    for item in (first, second, third):
        queue.put(item)
    # 40 tokens left: the second (50) waits whole, and the third keeps its place behind it.
    assert [(s.job, s.stop - s.start) for s in queue.take(budget=100)] == [(first, 2)]
    assert [(s.job, s.stop - s.start) for s in queue.take(budget=100)] == [(second, 2), (third, 1)]


def test_idle_workers_share_one_request(loop):
    queue = TokenQueue(max_tokens=10_000)
    rounds: list[list] = []
    workers = [threading.Thread(target=lambda: rounds.append(queue.take(budget=1000, timeout=10))) for _ in range(2)]
    for worker in workers:
        worker.start()
    deadline = time.monotonic() + 10
    while queue._idle < 2 and time.monotonic() < deadline:  # both workers wait for work
        time.sleep(0.01)
    queue.put(job(loop, [10] * 16))
    for worker in workers:
        worker.join(10)
    assert sorted(sum(s.stop - s.start for s in round_) for round_ in rounds) == [8, 8]


def test_a_worker_that_frees_up_while_another_computes_takes_only_its_share(loop):
    queue = TokenQueue(max_tokens=10_000, workers=2)
    for _ in range(20):  # 20 one-text requests wait; the other worker is busy (not in take)
        queue.put(job(loop, [10]))
    assert sum(s.stop - s.start for s in queue.take(budget=1000)) == 10  # half: the rest for the next free worker
    assert sum(s.stop - s.start for s in queue.take(budget=1000)) == 5
    alone = TokenQueue(max_tokens=10_000)  # one worker: it takes what waits, up to the budget
    for _ in range(20):
        alone.put(job(loop, [10]))
    assert sum(s.stop - s.start for s in alone.take(budget=1000)) == 20


def test_requests_with_other_prompts_wait_for_their_own_round(loop):
    queue = TokenQueue(max_tokens=10_000)
    plain, query = job(loop, [5]), job(loop, [5], BatchKey(prompt="query: "))
    queue.put(plain)
    queue.put(query)
    assert [s.job for s in queue.take(budget=100)] == [plain]
    assert [s.job for s in queue.take(budget=100)] == [query]


def test_cancel_drops_what_still_waits(loop):
    queue = TokenQueue(max_tokens=10_000)
    work = job(loop, [10] * 10)
    queue.put(work)
    queue.take(budget=30)
    assert queue.cancel(work) == 7 and work.cancelled
    assert queue.tokens == 0 and queue.inputs == 0 and queue.take(budget=30, timeout=0) == []
    assert queue.cancel(work) == 0


def test_a_closed_queue_ends_the_worker_once_empty(loop):
    queue = TokenQueue(max_tokens=100)
    queue.put(job(loop, [5]))
    queue.close()
    assert len(queue.take(budget=100)) == 1
    assert queue.take(budget=100) is None
    with pytest.raises(Exception, match="shutting down"):
        queue.put(job(loop, [5]))


def test_wait_says_whether_work_waits_without_taking_it(loop):
    queue = TokenQueue(max_tokens=100)
    assert queue.wait(timeout=0) is False
    woken: list[bool | None] = []
    waiter = threading.Thread(target=lambda: woken.append(queue.wait(timeout=10)))
    waiter.start()
    queue.put(job(loop, [5]))
    waiter.join(10)
    assert woken == [True] and queue.inputs == 1  # woken by the put, the job still queued
    assert len(queue.take(budget=100, timeout=0)) == 1
    queue.close()
    assert queue.wait(timeout=0) is None  # closed and empty: the worker stops


def test_a_lone_small_round_gets_every_core_and_busy_workers_keep_their_share():
    occupancy = Occupancy(cores=2, share=1)
    first = occupancy.enter()
    assert occupancy.widen(first) == 2 and first.threads == 2  # alone and small: both cores
    second = occupancy.enter()
    assert occupancy.widen(second) == 1 and second.threads == 1  # another worker is busy: its share
    occupancy.leave(first)
    occupancy.leave(second)
    large = occupancy.enter()  # a large round is not widened
    assert large.threads == 1  # a large round keeps the share even alone
    occupancy.leave(large)
    small = occupancy.enter()
    assert occupancy.widen(small) == 2 and small.threads == 2


def _served_round(rounds: list[list], target) -> int | None:
    """The index of the first round that took inputs of ``target``."""
    return next((i for i, round_ in enumerate(rounds) if any(s.job is target for s in round_)), None)


@pytest.mark.parametrize("same_prompt", [True, False])
def test_a_stream_of_large_requests_does_not_starve_a_small_one(loop, same_prompt):
    """Large requests keep arriving (one per round, each several rounds long); a one-text request that arrives
    behind them is answered within two rounds, with the same prompt or another one."""
    queue = TokenQueue(max_tokens=1_000_000)
    queue.put(job(loop, [10] * 50))  # already waiting: five full rounds of work
    small = job(loop, [5], None if same_prompt else BatchKey(prompt="query: "))
    queue.put(small)
    rounds = []
    for _ in range(6):
        queue.put(job(loop, [10] * 50))  # the stream goes on
        rounds.append(queue.take(budget=100))
    assert _served_round(rounds, small) is not None and _served_round(rounds, small) <= 1
    assert small.cursor == small.size  # whole, so it is answered at once


@pytest.mark.parametrize("same_prompt", [True, False])
def test_a_stream_of_small_requests_does_not_starve_a_large_one(loop, same_prompt):
    """Small requests keep arriving (more each round than a round holds); a large request waiting among them gets
    inputs at least every other round and is done in a bounded number of rounds."""
    queue = TokenQueue(max_tokens=1_000_000)
    large = job(loop, [10] * 20, None if same_prompt else BatchKey(prompt="query: "))
    queue.put(job(loop, [10, 10]))
    queue.put(large)
    rounds = []
    for _ in range(12):
        for _ in range(8):
            queue.put(job(loop, [10, 10]))
        rounds.append(queue.take(budget=100))
        if large.cursor == large.size:
            break
    served = [i for i, round_ in enumerate(rounds) if any(s.job is large for s in round_)]
    assert large.cursor == large.size, "the large request must finish while the stream goes on"
    assert served[0] <= 1 and all(b - a <= 2 for a, b in zip(served, served[1:]))
    assert len(rounds) <= 2 * (200 // 50) + 1  # half a round (50 tokens) at least every other round


def test_three_prompts_take_turns(loop):
    """With three prompts waiting, none waits through more than two rounds of the others in a row."""
    queue = TokenQueue(max_tokens=1_000_000)
    keys = [BatchKey(), BatchKey(prompt="query: "), BatchKey(prompt="passage: ")]
    for key in keys:
        queue.put(job(loop, [10] * 40, key))
    served_keys = []
    for _ in range(9):
        for key in keys[:2]:  # two of the prompts keep getting new work
            queue.put(job(loop, [10] * 10, key))
        served_keys.append(queue.take(budget=100)[0].job.tokens.key)
    for key in keys:
        turns = [i for i, served in enumerate(served_keys) if served == key]
        assert turns and turns[0] <= 2 and all(b - a <= 3 for a, b in zip(turns, turns[1:])), (key, served_keys)
