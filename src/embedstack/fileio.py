"""Small file helpers shared by every layer.

JSON read and write with errors that name the file, and the check that keeps a path inside a model folder.
Imports nothing of embedstack but its errors.
"""

from __future__ import annotations

import json
import os
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from embedstack.errors import ModelFormatError


def read_json(path: str | os.PathLike[str]) -> Any:
    """Read a JSON file, raising :class:`ModelFormatError` that names the file when it is not valid JSON."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except json.JSONDecodeError as exc:
        raise ModelFormatError(
            f"{path} is not valid JSON ({exc.msg}: line {exc.lineno}, column {exc.colno}). The model folder "
            "is damaged or was truncated while copying; restore the file from the original model."
        ) from None
    except UnicodeDecodeError:
        raise ModelFormatError(f"{path} is not UTF-8 text. Restore the file from the original model.") from None


def write_json(path: str | os.PathLike[str], value: Any, *, indent: int = 2, sort_keys: bool = False) -> None:
    """Write ``value`` as JSON (UTF-8). Callers write into a staging folder, so the write needs no atomicity."""
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(value, handle, indent=indent, sort_keys=sort_keys)


def check_module_path(folder: Path, path: str, where: str) -> None:
    """Refuse module paths that are absolute, climb with ``..``, hold NUL, or escape through a symlink.

    ``where`` names the entry in the error (e.g. "<model>/modules.json entry 1").
    """
    bad = (
        "\x00" in path
        or PurePosixPath(path).is_absolute()
        or PureWindowsPath(path).is_absolute()
        or bool(PureWindowsPath(path).drive)
        or ".." in PurePosixPath(path.replace("\\", "/")).parts
    )
    if not bad and path:
        root = folder.resolve()
        resolved = (folder / path).resolve()
        bad = resolved != root and root not in resolved.parents
    if bad:
        raise ModelFormatError(
            f"{where} has path {path!r}, which points outside the model folder. A module path must be a "
            "relative folder inside the model (e.g. '1_Pooling'); fix that entry."
        )
