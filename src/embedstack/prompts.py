"""Which prompt a call uses.

Decided here once, for ``encode``, ``encode_query``/``encode_document``, the server and every model kind.

A prompt given as a string wins; else a prompt name (which must be one of the model's); else the prompt of the
task ("query" for queries, the first of "document", "passage", "corpus" for documents) when the model has one;
else the model's default prompt; else none.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Literal

from embedstack.errors import UnknownPromptError

logger = logging.getLogger(__name__)

Task = Literal["query", "document"]
DOCUMENT_PROMPT_NAMES = ("document", "passage", "corpus")


def task_prompt_name(prompts: Mapping[str, str], task: str | None) -> str | None:
    """The prompt name a task uses when the caller names none: "query", or the first document-like name.

    >>> task_prompt_name({"query": "query: ", "passage": "passage: "}, "document")
    'passage'
    """
    if task == "query":
        return "query" if "query" in prompts else None
    if task == "document":
        return next((name for name in DOCUMENT_PROMPT_NAMES if name in prompts), None)
    return None


def resolve_prompt(
    prompts: Mapping[str, str],
    default_prompt_name: str | None,
    *,
    prompt: str | None = None,
    prompt_name: str | None = None,
    task: str | None = None,
) -> str | None:
    """The prompt text to prepend, or None.

    Raises:
        UnknownPromptError: ``prompt_name`` is not one of ``prompts``.

    >>> resolve_prompt({"query": "query: "}, None, task="query")
    'query: '
    >>> resolve_prompt({"query": "query: "}, "query", prompt="")
    ''
    """
    if prompt is not None:
        if prompt_name is not None:
            logger.warning(  # the reference's text
                "Provide either a `prompt`, a `prompt_name`, or neither, but not both. "
                "Ignoring the `prompt_name` in favor of `prompt`."
            )
        return prompt
    if prompt_name is None:
        prompt_name = task_prompt_name(prompts, task)
    if prompt_name is not None:
        if prompt_name not in prompts:
            raise UnknownPromptError(
                f"Prompt name {prompt_name!r} not found in the configured prompts dictionary with keys "
                f"{list(prompts)}. Pass one of those, or the prompt text itself with prompt=..."
            )
        return prompts[prompt_name]
    if default_prompt_name is not None:
        return prompts.get(default_prompt_name)
    return None
