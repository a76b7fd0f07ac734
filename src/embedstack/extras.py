"""Optional extras: the packages each one brings, the check that they are installed, and the lazy import after it.

The core never imports an extra; the code that needs one checks it here first, so a missing one raises
MissingExtraError with the pip command instead of a bare ImportError from deep inside.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

from embedstack.errors import MissingExtraError

TRAIN_PACKAGES = ("accelerate", "datasets")  # the train extra: transformers' Trainer needs accelerate


def require_extra(extra: str, packages: tuple[str, ...], what: str = "This") -> None:
    """Raise MissingExtraError naming the missing ``packages`` of ``extra`` and the pip command, if any is missing."""
    missing = [package for package in packages if importlib.util.find_spec(package) is None]
    if missing:
        raise MissingExtraError(
            f"{what} needs the {extra} extra ({', '.join(missing)} not installed). "
            f"Run: pip install 'embedstack[{extra}]'"
        )


def extra_module(name: str, needs: tuple[str, ...], extra: str) -> Any:
    """Our module ``name``, imported only here, after checking that the packages it ``needs`` are installed."""
    require_extra(extra, needs)
    return importlib.import_module(name)
