"""Prometheus metrics of one server (its own registry, so several servers can run in one process).

HTTP metrics (requests, latency, in flight) are the server's; the rest are per served model, under a ``model``
label: :meth:`Metrics.for_model` gives one model's view, with the same attribute names.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
INPUT_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048)
TOKEN_BUCKETS = (16, 64, 256, 1024, 2048, 4096, 8192, 16384, 32768)


class Metrics:
    """The server's counters, gauges and histograms; ``render()`` gives the text ``/metrics`` serves."""

    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry()
        self.requests = Counter(
            "embedstack_requests", "HTTP requests by route and status", ["route", "status"], registry=registry
        )
        self.latency = Histogram(
            "embedstack_request_duration_seconds", "Request latency", ["route"], buckets=LATENCY_BUCKETS,
            registry=registry,
        )  # fmt: skip
        self.in_flight = Gauge("embedstack_requests_in_flight", "Requests being handled", registry=registry)
        model = ["model"]
        self.queue_inputs = Gauge("embedstack_queue_inputs", "Inputs waiting in the queue", model, registry=registry)
        self.queue_tokens = Gauge("embedstack_queue_tokens", "Tokens waiting in the queue", model, registry=registry)
        self.batch_inputs = Histogram(
            "embedstack_batch_inputs", "Inputs per worker round", model, buckets=INPUT_BUCKETS, registry=registry
        )
        self.batch_tokens = Histogram(
            "embedstack_batch_tokens", "Tokens per worker round", model, buckets=TOKEN_BUCKETS, registry=registry
        )
        self.batch_seconds = Histogram(
            "embedstack_batch_duration_seconds", "Time per worker round", model, buckets=LATENCY_BUCKETS,
            registry=registry,
        )  # fmt: skip
        self.computed_inputs = Counter(
            "embedstack_computed_inputs", "Inputs run through the model", model, registry=registry
        )
        self.truncated_inputs = Counter(
            "embedstack_truncated_inputs", "Inputs cut to the model's max_seq_length", model, registry=registry
        )
        self.cancelled_requests = Counter(
            "embedstack_cancelled_requests", "Requests whose client disconnected before the answer", model,
            registry=registry,
        )  # fmt: skip
        self.cancelled_inputs = Counter(
            "embedstack_cancelled_inputs", "Inputs dropped uncomputed because their client disconnected", model,
            registry=registry,
        )  # fmt: skip
        self.rejected = Counter(
            "embedstack_rejected_requests", "Requests refused before queueing, by reason", ["model", "reason"],
            registry=registry,
        )  # fmt: skip
        self.failed_rounds = Counter("embedstack_failed_batches", "Worker rounds that raised", model, registry=registry)
        self.slot_wait = Histogram(
            "embedstack_cpu_slot_wait_seconds", "Time a CPU round waited for a slot (other rounds held the cores)",
            model, buckets=LATENCY_BUCKETS, registry=registry,
        )  # fmt: skip
        self.core_seconds = Counter(
            "embedstack_cpu_core_seconds", "Core-seconds the model's CPU rounds held (wall time x torch threads)",
            model, registry=registry,
        )  # fmt: skip
        self.worker_up = Gauge("embedstack_worker_up", "1 while the model worker can serve", model, registry=registry)

    def for_model(self, name: str) -> ModelMetrics:
        """The metrics of the served model ``name`` (its ``model`` label)."""
        return ModelMetrics(self, name)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)


class ModelMetrics:
    """One served model's metrics: the :class:`Metrics` families bound to its ``model`` label."""

    def __init__(self, metrics: Metrics, name: str) -> None:
        self.name = name
        self.queue_inputs = metrics.queue_inputs.labels(name)
        self.queue_tokens = metrics.queue_tokens.labels(name)
        self.batch_inputs = metrics.batch_inputs.labels(name)
        self.batch_tokens = metrics.batch_tokens.labels(name)
        self.batch_seconds = metrics.batch_seconds.labels(name)
        self.computed_inputs = metrics.computed_inputs.labels(name)
        self.truncated_inputs = metrics.truncated_inputs.labels(name)
        self.cancelled_requests = metrics.cancelled_requests.labels(name)
        self.cancelled_inputs = metrics.cancelled_inputs.labels(name)
        self.failed_rounds = metrics.failed_rounds.labels(name)
        self.slot_wait = metrics.slot_wait.labels(name)
        self.core_seconds = metrics.core_seconds.labels(name)
        self.worker_up = metrics.worker_up.labels(name)
        self.rejected = _Labelled(metrics.rejected, name)

    def observe_round(self, inputs: int, tokens: int, seconds: float) -> None:
        """Count one worker round."""
        self.batch_inputs.observe(inputs)
        self.batch_tokens.observe(tokens)
        self.batch_seconds.observe(seconds)
        self.computed_inputs.inc(inputs)

    def observe_slot(self, waited: float, core_seconds: float) -> None:
        """Count one CPU round's wait for a slot and the core time it then held."""
        self.slot_wait.observe(waited)
        self.core_seconds.inc(core_seconds)


class _Labelled:
    """A metric family with labels after ``model``, bound to one model: ``.labels("queue_full")``."""

    def __init__(self, family: Any, name: str) -> None:
        self._family = family
        self._name = name

    def labels(self, *values: str) -> Any:
        return self._family.labels(self._name, *values)
