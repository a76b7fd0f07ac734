"""The README.md model card written with a saved model."""

from __future__ import annotations

from typing import Any

SIMILARITY_NAMES = {
    "cosine": "Cosine Similarity",
    "dot": "Dot Product",
    "euclidean": "Euclidean Distance",
    "manhattan": "Manhattan Distance",
}
_PLACEHOLDER = 'SentenceTransformer("sentence_transformers_model_id"'


def model_card_text(model: Any, *, model_name: str | None = None, loaded_card: str | None = None) -> str:
    """A loaded model's own card (with the model id filled in), or a new card describing the model."""
    model_id = model_name or "sentence_transformers_model_id"
    if loaded_card is not None:
        if model_name:
            return loaded_card.replace(_PLACEHOLDER, f'SentenceTransformer("{model_name}"')
        return loaded_card
    dimension = model.get_embedding_dimension()
    similarity = SIMILARITY_NAMES.get(model.similarity_fn_name, model.similarity_fn_name)
    return f"""---
library_name: sentence-transformers
pipeline_tag: sentence-similarity
tags:
- sentence-transformers
- sentence-similarity
- feature-extraction
- dense
- embedstack
---

# SentenceTransformer

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
"""
