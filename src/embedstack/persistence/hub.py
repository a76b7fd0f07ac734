"""The only place that turns a model id into a local folder (through huggingface_hub's cache)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from embedstack.errors import ModelNotFoundError

logger = logging.getLogger(__name__)

DEFAULT_ORGANIZATION = "sentence-transformers"
# Hub ids without an organization that name original transformers checkpoints, not sentence-transformers ones.
ORIGINAL_TRANSFORMER_MODELS = frozenset(
    """albert-base-v1 albert-base-v2 albert-large-v1 albert-large-v2 albert-xlarge-v1 albert-xlarge-v2
    albert-xxlarge-v1 albert-xxlarge-v2 bert-base-cased-finetuned-mrpc bert-base-cased bert-base-chinese
    bert-base-german-cased bert-base-german-dbmdz-cased bert-base-german-dbmdz-uncased bert-base-multilingual-cased
    bert-base-multilingual-uncased bert-base-uncased bert-large-cased-whole-word-masking-finetuned-squad
    bert-large-cased-whole-word-masking bert-large-cased bert-large-uncased-whole-word-masking-finetuned-squad
    bert-large-uncased-whole-word-masking bert-large-uncased camembert-base ctrl distilbert-base-cased-distilled-squad
    distilbert-base-cased distilbert-base-german-cased distilbert-base-multilingual-cased
    distilbert-base-uncased-distilled-squad distilbert-base-uncased-finetuned-sst-2-english distilbert-base-uncased
    distilgpt2 distilroberta-base gpt2-large gpt2-medium gpt2-xl gpt2 openai-gpt roberta-base-openai-detector
    roberta-base roberta-large-mnli roberta-large-openai-detector roberta-large t5-11b t5-3b t5-base t5-large
    t5-small transfo-xl-wt103 xlm-clm-ende-1024 xlm-clm-enfr-1024 xlm-mlm-100-1280 xlm-mlm-17-1280
    xlm-mlm-en-2048 xlm-mlm-ende-1024 xlm-mlm-enfr-1024 xlm-mlm-enro-1024 xlm-mlm-tlm-xnli15-1024
    xlm-mlm-xnli15-1024 xlm-roberta-base xlm-roberta-large-finetuned-conll02-dutch
    xlm-roberta-large-finetuned-conll02-spanish xlm-roberta-large-finetuned-conll03-english
    xlm-roberta-large-finetuned-conll03-german xlm-roberta-large xlnet-base-cased xlnet-large-cased""".split()
)


def hub_repo_id(name: str) -> str:
    """``all-MiniLM-L6-v2`` -> ``sentence-transformers/all-MiniLM-L6-v2``; ids with an organization are kept."""
    if "/" in name or name in ORIGINAL_TRANSFORMER_MODELS:
        return name
    return f"{DEFAULT_ORGANIZATION}/{name}"


def resolve_model_path(
    model_name_or_path: str | os.PathLike,
    *,
    cache_folder: str | None = None,
    revision: str | None = None,
    token: bool | str | None = None,
    local_files_only: bool = False,
) -> Path:
    """A local model folder for a path or a Hub id, downloading into (or reading from) the Hub cache.

    Raises:
        NotADirectoryError: The path is an existing file.
        ModelNotFoundError: Neither a local folder nor a Hub id that can be had.
    """
    path = Path(model_name_or_path).expanduser()
    if path.is_dir():
        return path
    name = str(model_name_or_path)
    if path.exists():
        raise NotADirectoryError(f"{name} is a file; a model is a folder (holding modules.json or config.json).")
    if name.count("/") > 1 or name.startswith((".", "/", "~")) or "\\" in name:
        raise ModelNotFoundError(
            f"{name} is not a folder on this machine and not a Hub id (owner/name). Check the path."
        )
    repo_id = hub_repo_id(name)
    cache_folder = cache_folder or os.environ.get("SENTENCE_TRANSFORMERS_HOME")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, RepositoryNotFoundError

    try:
        folder = snapshot_download(
            repo_id, revision=revision, cache_dir=cache_folder, token=token, local_files_only=local_files_only
        )
    except (LocalEntryNotFoundError, RepositoryNotFoundError, HfHubHTTPError, OSError, ValueError) as exc:
        raise ModelNotFoundError(
            f"Model {repo_id!r} is not a local folder and could not be had from the Hugging Face Hub "
            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}). Offline (HF_HUB_OFFLINE=1) only "
            "models already in the Hub cache load; pass a local folder path or download the model first."
        ) from None
    logger.info("Resolved %s to %s", repo_id, folder)
    return Path(folder)
