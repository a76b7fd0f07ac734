"""The optimizer's parameter groups: weight decay or not, and the learning rates of ``learning_rate_mapping``."""

from __future__ import annotations

import re
from typing import Any

from torch import nn


def parameter_groups(
    named: list[tuple[str, nn.Parameter]], decay: set[str], weight_decay: float, rates: dict[str, float]
) -> list[dict[str, Any]]:
    """Optimizer groups: with and without weight decay, and more per ``rates`` pattern with its own rate.

    As in sentence-transformers, a parameter several patterns match takes the rate of the last one; a pattern
    that matches no parameter at all is an error.
    """
    rate_of: dict[str, float | None] = {name: None for name, p in named if p.requires_grad}
    for pattern, rate in rates.items():
        matching = [name for name, _ in named if re.search(pattern, name)]
        if not matching:
            raise ValueError(
                f"learning_rate_mapping pattern {pattern!r} matches no parameter. Parameter names look like "
                f"{[name for name, _ in named[:3]]}."
            )
        rate_of.update({name: rate for name in matching if name in rate_of})
    groups: list[dict[str, Any]] = []
    choices: list[float | None] = [None, *dict.fromkeys(rates.values())]
    for chosen in choices:
        for with_decay in (True, False):
            params = [
                p for name, p in named if name in rate_of and rate_of[name] == chosen and (name in decay) == with_decay
            ]
            if params or chosen is None:
                group: dict[str, Any] = {"params": params, "weight_decay": weight_decay if with_decay else 0.0}
                if chosen is not None:
                    group["lr"] = chosen
                groups.append(group)
    return groups
