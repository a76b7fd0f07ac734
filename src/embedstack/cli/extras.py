"""Our modules that need an optional extra, imported by a command only after checking the extra is installed."""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

from embedstack.errors import MissingExtraError


def extra_module(name: str, needs: tuple[str, ...], extra: str) -> Any:
    """Our module ``name``, imported only here, after checking that the packages it ``needs`` are installed."""
    missing = [package for package in needs if importlib.util.find_spec(package) is None]
    if missing:
        raise MissingExtraError(
            f"This needs the {extra} extra ({', '.join(missing)} not installed). Run: pip install 'embedstack[{extra}]'"
        )
    return importlib.import_module(name)
