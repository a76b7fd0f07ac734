"""The README.md model card written with a saved model."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

SIMILARITY_NAMES = {
    "cosine": "Cosine Similarity",
    "dot": "Dot Product",
    "euclidean": "Euclidean Distance",
    "manhattan": "Manhattan Distance",
}
_PLACEHOLDER_ID = "sentence_transformers_model_id"


@dataclass
class ModelCardData:
    """What a generated model card says besides the model itself (sentence-transformers' fields).

    Attributes:
        language: Language code(s), e.g. "en" or ["en", "de"].
        license: A license id, e.g. "apache-2.0".
        model_name: A display name.
        model_id: The Hub id the model is (to be) published under; shown in the usage example.
        train_datasets / eval_datasets: ``{"name": ..., "id": ...}`` entries.
        task_name: What the model is for, in words.
        tags: Extra tags for the card's metadata.
        local_files_only / generate_widget_examples: Accepted as in sentence-transformers.
        evaluations: One entry per evaluator call (``set_evaluation_metrics``): the evaluator's class name and
            description, its primary metric, the epoch and step, and the metrics.
    """

    language: str | list[str] | None = field(default_factory=list)
    license: str | None = None
    model_name: str | None = None
    model_id: str | None = None
    train_datasets: list[dict[str, str]] = field(default_factory=list)
    eval_datasets: list[dict[str, str]] = field(default_factory=list)
    task_name: str | None = "retrieval"
    tags: list[str] = field(default_factory=list)
    local_files_only: bool = False
    generate_widget_examples: bool = True
    base_model: str | None = field(default=None, init=False)
    base_model_revision: str | None = field(default=None, init=False)
    evaluations: list[dict[str, Any]] = field(default_factory=list, init=False)
    training: dict[str, Any] = field(default_factory=dict, init=False)  # a training run (embedstack.training)

    def set_model_id(self, model_id: str) -> None:
        """Record the Hub id the model is published under."""
        self.model_id = model_id

    def set_base_model(self, model_id: str, revision: str | None = None) -> None:
        """Record the model this one was loaded (and may be fine-tuned) from, and its revision."""
        self.base_model = model_id
        self.base_model_revision = revision

    def set_evaluation_metrics(self, evaluator: Any, metrics: dict[str, Any], epoch: int = 0, step: int = 0) -> None:
        """Record the results of an evaluator call (what evaluators call after scoring the model)."""
        self.evaluations.append(
            {
                "evaluator": type(evaluator).__name__,
                "description": getattr(evaluator, "description", type(evaluator).__name__),
                "primary_metric": getattr(evaluator, "primary_metric", None),
                "epoch": epoch,
                "step": step,
                "metrics": dict(metrics),
            }
        )

    def metadata_lines(self) -> list[str]:
        """Extra YAML front-matter lines for the card."""
        lines = []
        languages = [self.language] if isinstance(self.language, str) else list(self.language or [])
        if languages:
            lines += ["language:", *(f"- {code}" for code in languages)]
        if self.license:
            lines.append(f"license: {self.license}")
        if self.base_model:
            lines.append(f"base_model: {self.base_model}")
        return lines


def model_card_text(model: Any, *, model_name: str | None = None, loaded_card: str | None = None) -> str:
    """The README.md text for ``model``.

    A loaded model's own card (with the model id filled in), or, when there is none (or it is empty), a new card
    describing the model.
    """
    data: ModelCardData = getattr(model, "model_card_data", None) or ModelCardData()
    model_id = model_name or data.model_id or _PLACEHOLDER_ID
    if loaded_card:
        return _filled_in(loaded_card, "SentenceTransformer", model_name)
    dimension = model.get_embedding_dimension()
    similarity = SIMILARITY_NAMES.get(model.similarity_fn_name, model.similarity_fn_name)
    metadata = "".join(f"{line}\n" for line in data.metadata_lines())
    tags = "".join(f"- {tag}\n" for tag in data.tags)
    title = data.model_name or "SentenceTransformer"
    return f"""---
{metadata}library_name: sentence-transformers
pipeline_tag: sentence-similarity
tags:
- sentence-transformers
- sentence-similarity
- feature-extraction
- dense
- embedstack
{tags}---

# {title}

This is a [sentence-transformers](https://www.SBERT.net) model saved by embedstack. It maps inputs to a \
{dimension}-dimensional dense vector space and can be used for semantic textual similarity, semantic search, \
paraphrase mining, text classification, clustering, and more.

## Model Details

- **Model Type:** Sentence Transformer
- **Maximum Sequence Length:** {model.max_seq_length} tokens
- **Output Dimensionality:** {dimension} dimensions
- **Similarity Function:** {similarity}
- **Supported Modality:** {", ".join(map(str, model.modalities))}

### Full Model Architecture

```
{model!r}
```

## Usage

```python
from sentence_transformers import SentenceTransformer  # or: from embedstack import SentenceTransformer

model = SentenceTransformer("{model_id}")
sentences = [
    "The weather is lovely today.",
    "It's so sunny outside!",
    "He drove to the stadium.",
]
embeddings = model.encode(sentences)
print(embeddings.shape)
# [3, {dimension}]
similarities = model.similarity(embeddings, embeddings)
```
{run_sections(data)}"""


def run_sections(data: ModelCardData) -> str:
    """The card's "Evaluation" and "Training Details" sections, from what evaluators and a trainer recorded."""
    text = ""
    latest = {entry["evaluator"] + str(entry.get("description")): entry for entry in data.evaluations}
    if latest:
        text += "\n## Evaluation\n"
        for entry in latest.values():
            text += f"\n### {entry.get('description') or entry['evaluator']} ({entry['evaluator']})\n\n"
            text += "| Metric | Value |\n|:--|--:|\n"
            text += "".join(f"| {key} | {_number(value)} |\n" for key, value in entry.get("metrics", {}).items())
    training = data.training
    if not training:
        return text
    text += "\n## Training Details\n\nTrained with embedstack's `SentenceTransformerTrainer`.\n\n### Datasets\n\n"
    for entry in training.get("datasets", []):
        name = f" {entry['name']}" if entry.get("name") else ""
        text += f"- {entry['split']}{name}: {entry.get('size', '?')} rows, columns {entry['columns']}\n"
    text += "\n### Loss\n\n"
    for name, loss in training.get("losses", {}).items():
        text += f"- {name + ': ' if name else ''}`{loss['class']}` with `{json.dumps(loss['config'])}`\n"
    text += "\n### Hyperparameters (those not at their default)\n\n"
    text += "".join(f"- `{key}`: `{value}`\n" for key, value in training.get("hyperparameters", {}).items())
    if training.get("evaluation"):
        text += "\n### Last evaluation\n\n| Metric | Value |\n|:--|--:|\n"
        text += "".join(f"| {key} | {_number(value)} |\n" for key, value in training["evaluation"].items())
    if training.get("logs"):
        keys = sorted({key for entry in training["logs"] for key in entry} - {"epoch", "step"})
        text += "\n### Training logs\n\n| Epoch | Step | " + " | ".join(keys) + " |\n"
        text += "|" + ":--|" * (len(keys) + 2) + "\n"
        for entry in training["logs"]:
            values = " | ".join(_number(entry.get(key, "")) for key in keys)
            text += f"| {_number(entry.get('epoch') or 0)} | {entry.get('step')} | {values} |\n"
    return text


def _number(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def kind_card_text(model: Any, *, model_name: str | None = None, loaded_card: str | None = None) -> str:
    """A short README.md for a model kind without a card template of its own: its modules and how to load it."""
    kind = type(model).__name__
    if loaded_card:
        return _filled_in(loaded_card, kind, model_name)
    data: ModelCardData = getattr(model, "model_card_data", None) or ModelCardData()
    model_id = model_name or data.model_id or _PLACEHOLDER_ID
    metadata = "".join(f"{line}\n" for line in data.metadata_lines())
    return f"""---
{metadata}library_name: sentence-transformers
tags:
- sentence-transformers
- embedstack
---

# {data.model_name or kind}

A {kind} model saved by embedstack, in the sentence-transformers folder format.

```
{model!r}
```

```python
from embedstack import {kind}

model = {kind}("{model_id}")
```
"""


def _filled_in(card: str, kind: str, model_name: str | None) -> str:
    """A loaded card with the placeholder model id in its usage example replaced by ``model_name``."""
    if not model_name:
        return card
    return card.replace(f'{kind}("{_PLACEHOLDER_ID}"', f'{kind}("{model_name}"')
