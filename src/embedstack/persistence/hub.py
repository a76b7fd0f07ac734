"""The only place that turns a model id into a local folder (through huggingface_hub's cache).

The model resolves its id once, with the caller's :class:`HubOptions`, before any module loads; modules read local
folders only. A download takes the files the load reads (:func:`select_model_files`), not the whole repository.
"""

from __future__ import annotations

import glob
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

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


def hub_repo_id(name: str, organization: str | None = DEFAULT_ORGANIZATION) -> str:
    """``all-MiniLM-L6-v2`` -> ``sentence-transformers/all-MiniLM-L6-v2``; ids with an organization are kept.

    ``organization`` is the model kind's (a CrossEncoder's is "cross-encoder"); None keeps a bare name as it is.
    """
    if "/" in name or name in ORIGINAL_TRANSFORMER_MODELS or organization is None:
        return name
    return f"{organization}/{name}"


def snapshot_revision(folder: Path) -> str | None:
    """The commit hash of a Hub cache snapshot folder (``.../snapshots/<40 hex>``), or None for another folder."""
    name = folder.name
    return name if len(name) == 40 and all(c in "0123456789abcdef" for c in name) else None


@dataclass(frozen=True)
class HubOptions:
    """How to reach the Hugging Face Hub: one set, given by the caller, used for every download of a load.

    Attributes:
        token: An access token (or True for the saved one).
        revision: A branch, tag or commit of the model repository.
        cache_folder: The Hub cache folder (default: ``SENTENCE_TRANSFORMERS_HOME``, else huggingface_hub's).
        local_files_only: Use only what is already in the cache.
        code_revision: The revision of a separate code repository (``{repo_id}--module.Class`` types); as in
            transformers, the model's ``revision`` does not apply there.
    """

    token: bool | str | None = None
    revision: str | None = None
    cache_folder: str | None = None
    local_files_only: bool = False
    code_revision: str | None = None

    @property
    def cache_dir(self) -> str | None:
        """The Hub cache folder to use, or None for huggingface_hub's."""
        return self.cache_folder or os.environ.get("SENTENCE_TRANSFORMERS_HOME")


# Files a load never reads: other frameworks' weights and exports, unless a backend asks for them.
_OTHER_FRAMEWORKS = ("onnx/", "openvino/", "coreml/")
_OTHER_SUFFIXES = (".onnx", ".onnx_data", ".h5", ".msgpack", ".ot", ".tflite", ".gguf", ".mlmodel")
_OTHER_PREFIXES = ("tf_model", "flax_model", "rust_model", "openvino_model", "model.onnx")
_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")


def select_model_files(files: list[str], *, backend: str = "torch") -> list[str]:
    """The files of a model repository that loading it with ``backend`` reads.

    Configs, tokenizer and processor files, code and safetensors weights are kept; ONNX / OpenVINO / TF / Flax /
    Rust / Core ML / GGUF files are dropped (ONNX kept for ``backend="onnx"``, OpenVINO for "openvino"); pickled
    weights are kept only in a folder that has no safetensors file.
    """
    keep_dirs = {"onnx": ("onnx/",), "openvino": ("openvino/",)}.get(backend, ())
    with_safetensors = {PurePosixPath(f).parent for f in files if f.endswith(".safetensors")}
    selected = []
    for file in files:
        path = PurePosixPath(file)
        if file.startswith(keep_dirs):
            selected.append(file)
        elif (
            file.startswith(_OTHER_FRAMEWORKS)
            or file.endswith(_OTHER_SUFFIXES)
            or path.name.startswith(_OTHER_PREFIXES)
        ):
            continue
        elif file.endswith(_PICKLE_SUFFIXES) and (path.parent in with_safetensors or "training_args" in path.name):
            continue
        else:
            selected.append(file)
    return selected


def resolve_model_path(
    model_name_or_path: str | os.PathLike[str],
    options: HubOptions | None = None,
    *,
    backend: str = "torch",
    organization: str | None = DEFAULT_ORGANIZATION,
) -> Path:
    """A local model folder for a path or a Hub id.

    Downloads the files a load with ``backend`` reads into the Hub cache (or finds them there).

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
    options = options or HubOptions()
    return _download(
        hub_repo_id(name, organization),
        options,
        lambda files: select_model_files(files, backend=backend),
        options.revision,
    )


def resolve_code_repo(repo_id: str, options: HubOptions | None = None) -> Path:
    """A local folder with the Python files of the Hub repository ``repo_id``.

    For ``{repo_id}--module.Class`` module types; fetched with the model's token, cache folder and offline setting,
    at ``code_revision``.
    """
    options = options or HubOptions()
    return _download(repo_id, options, lambda files: [f for f in files if f.endswith(".py")], options.code_revision)


def _download(
    repo_id: str, options: HubOptions, select: Callable[[list[str]], list[str]], revision: str | None
) -> Path:
    from huggingface_hub import HfApi, snapshot_download
    from huggingface_hub.constants import is_offline_mode
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, RepositoryNotFoundError

    cache_dir, token = options.cache_dir, options.token
    try:
        if options.local_files_only or is_offline_mode():
            folder = snapshot_download(
                repo_id, revision=revision, local_files_only=True, cache_dir=cache_dir, token=token
            )
        else:
            # List the repository at one commit, then fetch only the files the load reads, at that commit.
            info = HfApi().model_info(repo_id, revision=revision, token=options.token)
            wanted = [glob.escape(file) for file in select([sibling.rfilename for sibling in info.siblings or []])]
            folder = snapshot_download(
                repo_id, revision=info.sha or revision, allow_patterns=wanted, cache_dir=cache_dir, token=token
            )
    except (LocalEntryNotFoundError, RepositoryNotFoundError, HfHubHTTPError, OSError, ValueError) as exc:
        raise ModelNotFoundError(
            f"Model {repo_id!r} is not a local folder and could not be had from the Hugging Face Hub "
            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}). Offline (HF_HUB_OFFLINE=1) only "
            "models already in the Hub cache load; pass a local folder path or download the model first."
        ) from None
    logger.info("Resolved %s to %s", repo_id, folder)
    return Path(folder)


@dataclass(frozen=True)
class HubUpload:
    """Where and how ``push_to_hub`` uploads: the repository, its creation and the commit."""

    repo_id: str
    token: str | None = None
    private: bool | None = None
    exist_ok: bool = False
    revision: str | None = None
    create_pr: bool = False
    commit_message: str | None = None


def repo_has_file(upload: HubUpload, filename: str) -> bool:
    """Whether the repository already holds ``filename`` (False when the repository does not exist yet).

    When the Hub cannot tell, True: an existing model card is never overwritten by mistake.
    """
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

    try:
        return bool(HfApi(token=upload.token).file_exists(upload.repo_id, filename, revision=upload.revision))
    except RepositoryNotFoundError:
        return False
    except (HfHubHTTPError, OSError, ValueError) as exc:
        logger.warning("Could not check for %s in %s (%s); keeping the existing one.", filename, upload.repo_id, exc)
        return True


def push_folder(folder: Path, upload: HubUpload, *, model_repr: str) -> str:
    """Upload the saved model ``folder`` to ``upload.repo_id``, creating the repository if needed.

    Returns:
        The commit URL, or the pull request's with ``create_pr``.
    """
    from huggingface_hub import HfApi

    api = HfApi(token=upload.token)
    repo = api.create_repo(upload.repo_id, private=upload.private, exist_ok=upload.exist_ok or upload.create_pr)
    if upload.revision is not None:
        api.create_branch(repo.repo_id, branch=upload.revision, exist_ok=True)
    description = f"Adds a SentenceTransformer model saved by embedstack:\n\n```\n{model_repr}\n```"
    commit = api.upload_folder(
        repo_id=repo.repo_id,
        folder_path=str(folder),
        commit_message=upload.commit_message or "Add new SentenceTransformer model",
        commit_description=description if upload.create_pr else None,
        create_pr=upload.create_pr,
        revision=upload.revision,
    )
    logger.info("Uploaded %s to %s", folder, repo.repo_id)
    return str(commit.pr_url if upload.create_pr else commit.commit_url)
