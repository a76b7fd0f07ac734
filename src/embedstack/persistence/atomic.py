"""Atomic folder writes: build the folder beside the target, then swap it into place."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from embedstack.errors import EmbedstackError

MODEL_MARKER_FILES = ("modules.json", "config.json", "config_sentence_transformers.json", "model.safetensors")


class FolderInUseError(EmbedstackError, FileExistsError):
    """The save target is a non-empty folder that does not hold a model."""


@contextmanager
def atomic_folder(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a fresh temporary sibling folder; on success it replaces ``target`` whole.

    A crash or an exception while writing leaves ``target`` as it was. Replacing a folder that is in use
    (for example the one the model's weights are memory-mapped from) is safe, since the old files are only
    unlinked after the new folder is in place.
    """
    target = Path(target).absolute()
    if target.exists() and not target.is_dir():
        raise FolderInUseError(f"{target} is a file; pass a folder path to save the model into.")
    if target.is_dir() and any(target.iterdir()) and not any((target / name).exists() for name in MODEL_MARKER_FILES):
        raise FolderInUseError(
            f"{target} is a non-empty folder that does not hold a model; saving would replace its contents. "
            "Save into a new or empty folder, or into an existing model folder."
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.saving-", dir=target.parent))
    try:
        yield staging
        mode = 0o777 & ~_umask()
        os.chmod(staging, mode)
        if target.exists():
            retired = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
            os.rename(target, retired)
            os.rename(staging, target)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.rename(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current
