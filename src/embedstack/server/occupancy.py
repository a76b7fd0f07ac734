"""The CPU's round slots, shared by the workers of every model a process serves, and fair between the models.

Each model has its own queue and workers; a worker with work waiting waits here for a slot, then takes its round.
The cores go to the models with work (an idle model holds none), and when several models wait, the slot goes to the
one that has had the least core time so far (the core-seconds of its finished rounds plus those of its running
ones), its rounds in arrival order: max-min fair sharing. A model that needs less than an even share gets all it
needs and the rest goes to the others; models that all have more work than the machine each get an even share of it,
whatever the size of their rounds. Without this, a model whose rounds are long (a reranker's query-document pairs)
took 70% of two cores from an embedder with short rounds when both were under the same load (measured with
``benchmarks/server_models.py``). A model that comes back from idling starts level with the least-served busy model,
so time it did not use is not banked against the others; when no round runs, all start level.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass


@dataclass(eq=False)
class Slot:
    """One round's hold on the cores: whose it is, when it was admitted and with how many torch threads."""

    tenant: Hashable
    sequence: int
    threads: int = 0
    started: float = 0.0
    charged: float = 0.0  # core-seconds held before ``started`` (at an earlier thread count)


class Occupancy:
    """The CPU's rounds in flight, over every served model: at most ``slots`` at once, and their torch threads.

    A round is admitted with ``share`` threads; one that turns out small (one forward pass) while no other round
    runs is widened to every core (:meth:`widen`), so a lone request at low traffic is not held to one core. A small
    round ends quickly, so a round that starts meanwhile oversubscribes the cores only briefly.

    Args:
        cores: The cores of the process.
        share: The torch threads of a round when several run.
        slots: Rounds that run at once (default: ``cores // share``).
        clock: Seconds, for the core time (``time.monotonic``; a test may step its own).
    """

    def __init__(
        self, cores: int, share: int, slots: int | None = None, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.cores = max(1, cores)
        self.share = max(1, share)
        self.slots = slots or max(1, self.cores // self.share)
        self.clock = clock
        self._waiting: list[Slot] = []
        self._running: list[Slot] = []
        self._used: dict[Hashable, float] = {}  # core-seconds of each tenant's finished rounds
        self._sequence = itertools.count()
        self._condition = threading.Condition()

    def enter(self, tenant: Hashable = None) -> Slot:
        """Wait for a slot and hold it, with ``share`` torch threads (see :meth:`widen`).

        Args:
            tenant: Whose round it is (the model's queue); rounds of one tenant enter in the order they came.
        """
        with self._condition:
            slot = Slot(tenant, next(self._sequence))
            if not any(held.tenant == tenant for held in (*self._waiting, *self._running)):
                self._level(tenant)
            self._waiting.append(slot)
            self._admit()
            try:
                while slot.threads == 0:  # admitted rounds have at least one thread
                    self._condition.wait()
            except BaseException:  # interrupted while waiting: the slot must not stay held or queued
                if slot in self._waiting:
                    self._waiting.remove(slot)
                elif slot in self._running:
                    self._release(slot)
                raise
            return slot

    def widen(self, slot: Slot) -> int:
        """Give admitted ``slot`` every core when no other round runs (its round is small); its threads.

        A worker takes its round only once admitted (so the round holds what came while it waited), and widens the
        slot when the round turns out to be one forward pass.
        """
        with self._condition:
            if slot in self._running and len(self._running) == 1 and slot.threads != self.cores:
                now = self.clock()
                slot.charged = self._held(slot, now)
                slot.started = now
                slot.threads = self.cores
            return slot.threads

    def leave(self, slot: Slot) -> float:
        """Free ``slot``, charging its tenant the core time the round held; returns that core time (seconds)."""
        with self._condition:
            return self._release(slot)

    def _release(self, slot: Slot) -> float:
        held = self._held(slot, self.clock())
        self._running.remove(slot)
        self._used[slot.tenant] = self._used.get(slot.tenant, 0.0) + held
        self._admit()
        if not self._running:  # idle: every tenant starts level again
            self._used.clear()
        return held

    def _admit(self) -> None:
        """Hand free slots to the waiting rounds of the least-served tenants; the caller holds the lock."""
        now = self.clock()
        while self._waiting and len(self._running) < self.slots:
            slot = min(self._waiting, key=lambda s: (self._charge(s.tenant, now), s.sequence))
            self._waiting.remove(slot)
            self._running.append(slot)
            slot.started = now
            slot.threads = self.share
            self._condition.notify_all()

    def _level(self, tenant: Hashable) -> None:
        """A tenant with nothing waiting or running starts no lower than the least-served busy tenant."""
        now = self.clock()
        busy = {held.tenant for held in (*self._waiting, *self._running)}
        if busy:
            floor = min(self._charge(other, now) for other in busy)
            self._used[tenant] = max(self._used.get(tenant, 0.0), floor)

    def _charge(self, tenant: Hashable, now: float) -> float:
        return self._used.get(tenant, 0.0) + sum(self._held(s, now) for s in self._running if s.tenant == tenant)

    @staticmethod
    def _held(slot: Slot, now: float) -> float:
        return slot.charged + (now - slot.started) * slot.threads
