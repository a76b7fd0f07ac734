"""The exceptions embedstack raises.

Every class also subclasses the builtin a caller would catch for the same problem (``ValueError``,
``LookupError``, ...), so code written against sentence-transformers keeps working. Each message says what
happened (file, key, value), why it matters, and how to fix it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class EmbedstackError(Exception):
    """Base class of every error embedstack raises on purpose."""


class ModelFormatError(EmbedstackError, ValueError):
    """A model folder holds a file that is missing, malformed, or inconsistent with its config."""


class ModelNotFoundError(EmbedstackError, FileNotFoundError):
    """A model path or Hub id does not resolve to a model folder."""


class UnknownModuleTypeError(EmbedstackError, LookupError):
    """A ``modules.json`` entry names a module type that cannot be resolved."""


class UntrustedCodeError(EmbedstackError, ValueError):
    """Loading would run code from the model folder, and ``trust_remote_code`` was not given."""


class UnsupportedModalityError(EmbedstackError, ValueError):
    """An input is of a modality (image, audio, ...) the model cannot take."""


class MissingExtraError(EmbedstackError, ImportError):
    """An optional dependency is not installed."""


class CorpusError(EmbedstackError, ValueError):
    """A corpus file for a batch job is missing, unreadable, or lacks the text column."""


class JobFolderError(EmbedstackError, ValueError):
    """A batch job's output folder holds the shards of a different job, or files that are not shards."""


class ClusterResourcesError(EmbedstackError, ValueError):
    """A Ray job asks for more CPUs or GPUs than the cluster has, or for so many that it would hang."""


class BackendOptionError(EmbedstackError, ValueError):
    """A loading option that only another backend reads (e.g. an ONNX ``file_name`` for the torch backend)."""


class Int8QualityError(EmbedstackError, ValueError):
    """An int8 model's vectors are further from the fp32 ones than the threshold allows, on this machine."""


class UnknownPromptError(EmbedstackError, ValueError):
    """A prompt name that is not one of the model's prompts."""


def close_matches(word: str, candidates: Iterable[str], n: int = 3) -> str:
    """Return ``" Did you mean: a, b?"`` for the closest candidates, or an empty string."""
    matches = difflib.get_close_matches(word, list(candidates), n=n, cutoff=0.6)
    return f" Did you mean: {', '.join(matches)}?" if matches else ""
