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
def atomic_folder(target: str | os.PathLike, *, keep_others: bool = False) -> Iterator[Path]:
    """Yield a fresh temporary sibling folder; on success it replaces ``target`` whole.

    A crash or an exception while writing leaves ``target`` as it was. Replacing a folder that is in use
    (for example the one the model's weights are memory-mapped from) is safe, since the old files are only
    unlinked after the new folder is in place.

    With ``keep_others`` (a trainer's output folder, which also holds checkpoints and logs), each file and folder
    written replaces its namesake in ``target`` one by one, and everything else in ``target`` stays.
    """
    target = Path(target).absolute()
    if target.exists() and not target.is_dir():
        raise FolderInUseError(f"{target} is a file; pass a folder path to save the model into.")
    holds_model = any((target / name).exists() for name in MODEL_MARKER_FILES)
    if target.is_dir() and not keep_others and any(target.iterdir()) and not holds_model:
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
        if target.exists() and keep_others:
            _replace_entries(staging, target)
        elif target.exists():
            retired = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
            os.rename(target, retired)
            os.rename(staging, target)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.rename(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _replace_entries(staging: Path, target: Path) -> None:
    """Move each entry of ``staging`` over its namesake in ``target`` (folders swapped whole)."""
    for entry in sorted(staging.iterdir()):
        destination = target / entry.name
        if destination.is_dir() and not destination.is_symlink():
            retired = target / f".{entry.name}.old-{uuid.uuid4().hex[:8]}"
            os.rename(destination, retired)
            os.rename(entry, destination)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.replace(entry, destination)


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current
