"""The server's settings: one object, validated on construction, read from flags or the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields

API_KEY_ENV = "EMBEDSTACK_API_KEY"


@dataclass(frozen=True)
class ServerSettings:
    """How the server listens, batches and protects itself.

    Attributes:
        host: Interface to bind; loopback by default, so nothing outside the machine reaches it by accident.
        port: TCP port; 0 picks a free one (the bound port is on the running server's ``url``).
        api_key: When set, every route but ``/health``, ``/metrics`` and the docs needs
            ``Authorization: Bearer <api_key>``. Defaults to the ``EMBEDSTACK_API_KEY`` environment variable.
        model_name: The name clients send as ``model`` (default: the model folder's name).
        max_batch_tokens: Padded tokens (rows x longest input) per forward pass; default 1,024 on CPU (small
            passes of similar lengths run faster there than large padded ones) and 16,384 elsewhere.
        batch_size: Rows per forward pass.
        workers: Model worker threads, each running its own rounds; default 2 on CPU (each with half the
            cores as torch threads, set for the process while the server runs) and 1 on GPU.
        window_tokens: Real tokens a worker takes from the queue per round; the inputs of one round are
            sorted by length and cut into forward passes together, and their requests are answered together.
            Default on CPU: four forward passes (4,096 tokens), or the tokens of about 64 waiting inputs when
            they are long (at most 16,384; both scale with ``max_batch_tokens`` when it is set): a round ends
            soon, so the waiting times of requests under load stay close to each other, and still holds enough
            long inputs to sort by length. Elsewhere 16,384.
        max_queue_tokens: Tokens waiting in the queue, over all requests; a request that does not fit gets 429.
        max_payload_bytes: Largest request body.
        max_inputs_per_request: Most inputs in one request (the server splits large requests itself).
        max_chars_per_input: Longest input, in characters (inputs longer than the model's window are
            truncated anyway; this bounds tokenizer work).
        stuck_after_s: A forward round running longer than this makes ``/health`` answer 503.
        max_consecutive_failures: After this many failed rounds in a row the worker is considered broken:
            ``/health`` answers 503 and requests fail at once until the server is restarted.
    """

    host: str = "127.0.0.1"
    port: int = 8000
    api_key: str | None = None
    model_name: str | None = None
    max_batch_tokens: int | None = None
    batch_size: int = 32
    workers: int | None = None
    window_tokens: int | None = None
    max_queue_tokens: int = 1 << 20
    max_payload_bytes: int = 16 << 20
    max_inputs_per_request: int = 2048
    max_chars_per_input: int = 100_000
    stuck_after_s: float = 60.0
    max_consecutive_failures: int = 3

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            numeric = field.type in ("int", "float") or (field.type == "int | None" and value is not None)
            if numeric and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise ValueError(f"ServerSettings.{field.name} must be a number, got {value!r}.")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"ServerSettings.port must be between 0 and 65535, got {self.port}.")
        positive = (
            "max_batch_tokens", "batch_size", "workers", "window_tokens", "max_queue_tokens", "max_payload_bytes",
            "max_inputs_per_request", "max_chars_per_input", "stuck_after_s", "max_consecutive_failures",
        )  # fmt: skip
        for name in positive:
            if getattr(self, name) is not None and getattr(self, name) <= 0:
                raise ValueError(f"ServerSettings.{name} must be positive, got {getattr(self, name)!r}.")
        if self.api_key is not None and not self.api_key.strip():
            raise ValueError("ServerSettings.api_key is empty; pass a real key or None to turn auth off.")

    @classmethod
    def from_env(cls, **overrides: object) -> ServerSettings:
        """Settings with ``api_key`` from ``EMBEDSTACK_API_KEY`` unless given (None values are not overrides)."""
        given = {key: value for key, value in overrides.items() if value is not None}
        if "api_key" not in given and os.environ.get(API_KEY_ENV):
            given["api_key"] = os.environ[API_KEY_ENV]
        return cls(**given)  # type: ignore[arg-type]
