"""How encode schedules work: ordering, batching and running batches through a model.

The engine knows nothing about file formats; it sees a model with ``preprocess`` and ``forward``.
"""

from embedstack.engine.runner import EncodePlan, run

__all__ = ["EncodePlan", "run"]
