"""Code that travels with a model: module classes imported from ``.py`` files in a model folder.

Only called once ``trust_remote_code=True`` was given (see ``registry.py``). A model folder's files are imported
as a package of their own, so ``from .helpers import x`` inside them works; each class remembers the folder and
the dotted module it came from, so saving the model copies those files (and their relative imports) along.
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import logging
import shutil
import sys
import sysconfig
import types
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

CODE_REF_ATTR = "__embedstack_code_ref__"
_PACKAGE_PREFIX = "embedstack_remote_code_"


@dataclass(frozen=True)
class CodeRef:
    """Where a class's code lives: ``root / module.replace('.', '/') + '.py'``.

    ``type_ref`` is what modules.json said, kept as is for ``{repo_id}--{module}.{Class}`` references, which
    resolve to another repository.
    """

    root: Path
    module: str
    type_ref: str | None = None

    @property
    def file(self) -> Path:
        """The ``.py`` file of the class's module."""
        return self.root.joinpath(*self.module.split(".")).with_suffix(".py")


def local_code_file(root: Path, module: str) -> Path | None:
    """The ``.py`` file of dotted ``module`` inside ``root``, or None when there is none (or it escapes root)."""
    if not module or any(not part.isidentifier() for part in module.split(".")):
        return None
    path = root.joinpath(*module.split(".")).with_suffix(".py")
    try:
        inside = root.resolve() in path.resolve().parents
    except OSError:
        return None
    return path if inside and path.is_file() else None


def import_class(root: Path, module: str, class_name: str, *, type_ref: str | None = None) -> type:
    """Import ``class_name`` from ``root/<module>.py`` as part of a package made of ``root``.

    Raises:
        ImportError, AttributeError: the file fails to import or lacks the class.
    """
    file = local_code_file(root, module)
    if file is None:
        raise ImportError(f"{root} has no file {module.replace('.', '/')}.py")
    package = _folder_package(root.resolve(), file.read_bytes())
    loaded = importlib.import_module(f"{package}.{module}")
    cls = getattr(loaded, class_name)
    if isinstance(cls, type) and cls.__module__ == loaded.__name__:
        setattr(cls, CODE_REF_ATTR, CodeRef(root.resolve(), module, type_ref))
    return cls


def _folder_package(root: Path, content: bytes) -> str:
    """A synthetic package whose ``__path__`` is ``root`` (one per folder and file content)."""
    digest = hashlib.sha256(str(root).encode() + b"\0" + content).hexdigest()[:16]
    name = f"{_PACKAGE_PREFIX}{digest}"
    if name not in sys.modules:
        package = types.ModuleType(name, f"Code of the model folder {root}")
        package.__path__ = [str(root)]
        package.__package__ = name
        sys.modules[name] = package
    return name


def code_ref_of(cls: type) -> CodeRef | None:
    """Where the code of ``cls`` can be copied from when a model using it is saved, or None.

    Classes imported from a model folder know their folder. A class from a single top-level ``.py`` file that is
    not an installed package (the seed's ``decay_pooling.py`` next to a script) is carried along as well, so the
    saved folder loads anywhere with ``trust_remote_code=True``.
    """
    ref = cls.__dict__.get(CODE_REF_ATTR)
    if ref is not None:
        return ref
    module = sys.modules.get(cls.__module__)
    file = getattr(module, "__file__", None)
    if "." in cls.__module__ or not file or not file.endswith(".py") or cls.__module__ == "__main__":
        return None
    path = Path(file).resolve()
    installed = {Path(sysconfig.get_paths()[key]).resolve() for key in ("purelib", "platlib", "stdlib")}
    if any(folder in path.parents for folder in installed):
        return None
    return CodeRef(path.parent, cls.__module__)


def relative_import_files(file: Path, root: Path) -> list[Path]:
    """``file`` and every file it reaches through relative imports (``from .x import y``), inside ``root``."""
    seen: dict[Path, None] = {}
    pending = [file.resolve()]
    root = root.resolve()
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen[current] = None
        try:
            tree = ast.parse(current.read_text(encoding="utf-8"), filename=str(current))
        except (OSError, SyntaxError, UnicodeDecodeError):
            continue
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom) or node.level == 0:
                continue
            base = current.parent
            for _ in range(node.level - 1):
                base = base.parent
            names = [node.module] if node.module else [alias.name for alias in node.names]
            for name in names:
                candidate = base.joinpath(*name.split(".")).with_suffix(".py")
                if candidate.is_file() and root in candidate.resolve().parents:
                    pending.append(candidate.resolve())
    return list(seen)


def copy_code(ref: CodeRef, destinations: list[Path]) -> None:
    """Copy the class's file and its relative imports into each destination, keeping paths relative to the root."""
    files = relative_import_files(ref.file, ref.root)
    for destination in destinations:
        for file in files:
            target = destination / file.relative_to(ref.root)
            if target.exists():
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(file, target)
    logger.info("Copied %s into the saved model", ", ".join(str(f.relative_to(ref.root)) for f in files))
