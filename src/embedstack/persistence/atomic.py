"""Atomic folder writes: build the folder beside the target, then swap it into place."""

from __future__ import annotations

import json
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
    """Swap the model files of ``target`` for those of ``staging``, keeping the folder's other entries.

    The old model's entries (those the new model writes, and the module folders its modules.json listed) move into
    a retired folder first; the new ones move in with modules.json last, so a reader never sees a modules.json
    naming files that are not in place; then the retired folder is deleted.
    """
    old = {entry.name for entry in staging.iterdir()} | _listed_modules(target)
    retired = target / f".retired-{uuid.uuid4().hex[:8]}"
    retired.mkdir()
    for name in sorted(old):
        if (target / name).exists() or (target / name).is_symlink():
            os.rename(target / name, retired / name)
    for entry in sorted(staging.iterdir(), key=lambda path: path.name == "modules.json"):
        os.rename(entry, target / entry.name)
    shutil.rmtree(retired, ignore_errors=True)


def _listed_modules(folder: Path) -> set[str]:
    """The top-level module folders a saved model's modules.json names (none when it cannot be read)."""
    try:
        entries = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
        return {str(entry["path"]).split("/")[0] for entry in entries if entry.get("path")}
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return set()


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current
