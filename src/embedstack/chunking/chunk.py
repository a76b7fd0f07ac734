"""Chunk-first encoding: inputs longer than the window become overlapping token windows, each encoded.

Short inputs keep the rows the plain encode path tokenizes, so they give exactly its vectors. All rows, short inputs
and windows alike, go through the engine in one run (batched by token count).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from embedstack.chunking.options import ChunkEmbeddings, LongInputs
from embedstack.chunking.tokens import covering_spans, token_windows, tokenize_whole
from embedstack.engine.protocol import Encoder
from embedstack.engine.runner import EncodePlan, Prepared, run_prepared
from embedstack.engine.tokenized import TokenizedTexts


@dataclass
class ChunkRows:
    """Rows to encode and, per input, which rows are its chunks, their token counts and character spans."""

    tokenized: TokenizedTexts
    owners: list[list[int]]  # per input, its rows
    weights: list[np.ndarray]  # per input, tokens of text in each of its rows
    spans: list[np.ndarray]  # per input, (rows, 2) character spans
    truncated: np.ndarray  # per input, whether it was longer than the window


def chunk_rows(model: Encoder, texts: list[str], options: LongInputs, plan: EncodePlan) -> ChunkRows:
    """Tokenize ``texts``: one row for each input that fits the window, overlapping windows for the others."""
    batcher = model.token_batcher
    plain = batcher.tokenize_unpadded(texts, prompt=plan.prompt, **plan.preprocess_kwargs) if batcher else None
    if plain is None:
        raise ValueError(
            "long_inputs='pool'/'split' needs a text model whose input module tokenizes with a fast tokenizer "
            "(a Transformer), inputs that are strings, and no processing_kwargs or max_length. Use "
            "long_inputs='truncate' for this call."
        )
    input_module = getattr(model, "input_module", None)
    long_positions = np.flatnonzero(plain.truncated)
    documents = dict(
        zip(long_positions.tolist(), tokenize_whole(input_module, [texts[i] for i in long_positions], plan.prompt))
    )
    limit = int(plain.lengths.max()) if len(plain.lengths) else 0
    ids: list[list[int]] = []
    type_ids: list[list[int]] = []
    owners, weights, spans = [], [], []
    for position, text in enumerate(texts):
        document = documents.get(position)
        if document is None:
            owners.append([len(ids)])
            ids.append(plain.input_ids[position])
            type_ids.append(plain.token_type_ids[position] if plain.token_type_ids is not None else [])
            weights.append(np.array([max(int(plain.lengths[position]), 1)], dtype=np.float64))
            spans.append(np.array([[0, len(text)]], dtype=np.int64))
            continue
        room = limit - document.prefix - document.suffix
        size = min(options.chunk_tokens or room, room)
        if size < 1:
            raise ValueError(
                f"The prompt and special tokens take {document.prefix + document.suffix} of the "
                f"{limit} tokens of the window, leaving none for the text. Shorten the prompt."
            )
        windows = token_windows(document.content, size, options.overlap)
        owners.append(list(range(len(ids), len(ids) + len(windows))))
        for start, end in windows:
            row_ids, row_types = document.row(start, end)
            ids.append(row_ids)
            type_ids.append(row_types)
        weights.append(np.array([end - start for start, end in windows], dtype=np.float64))
        spans.append(covering_spans(document, windows, len(text)))
    tokenized = TokenizedTexts(
        input_ids=ids,
        token_type_ids=type_ids if plain.token_type_ids is not None else None,
        lengths=np.fromiter(map(len, ids), dtype=np.int64, count=len(ids)),
        truncated=np.zeros(len(ids), dtype=bool),
        prompt_length=plain.prompt_length,
    )
    return ChunkRows(tokenized, owners, weights, spans, plain.truncated.copy())


def encode_rows(model: Encoder, rows: ChunkRows, plan: EncodePlan) -> torch.Tensor:
    """Every row's vector, (rows, dim), through the engine (no dedupe: rows are distinct by construction)."""
    count = len(rows.tokenized)
    prepared = Prepared(unique=list(range(count)), inverse=np.arange(count), tokenized=rows.tokenized)
    result = run_prepared(model, prepared, dataclasses.replace(plan, progress=None, to_cpu=True))
    return result.embeddings


def pool_rows(vectors: torch.Tensor, weights: np.ndarray, pooling: str, renormalize: bool) -> torch.Tensor:
    """One vector from an input's chunk vectors (chunks, dim): token-weighted mean or element-wise max."""
    if len(vectors) == 1:
        return vectors[0]
    if pooling == "max":
        pooled = vectors.max(dim=0).values
    else:
        w = torch.from_numpy(weights).to(torch.float64).unsqueeze(1)  # (chunks, 1)
        pooled = ((vectors.to(torch.float64) * w).sum(dim=0) / w.sum()).to(vectors.dtype)
    return F.normalize(pooled, p=2, dim=0) if renormalize else pooled


def pool_chunks(rows: ChunkRows, vectors: torch.Tensor, pooling: str, renormalize: bool) -> torch.Tensor:
    """One vector per input, (N, dim), from the vectors of ``rows``' chunks, (chunks, dim)."""
    pooled = [pool_rows(vectors[owned], w, pooling, renormalize) for owned, w in zip(rows.owners, rows.weights)]
    return torch.stack(pooled) if pooled else torch.empty(0)


def encode_pooled(
    model: Encoder, texts: list[str], options: LongInputs, plan: EncodePlan, *, normalized: bool
) -> torch.Tensor:
    """Mode "pool": one vector per input, (N, dim), pooled from the vectors of its overlapping windows."""
    rows = chunk_rows(model, texts, options, plan)
    vectors = encode_rows(model, rows, plan)
    pooled = pool_chunks(rows, vectors, options.pooling, normalized)
    if plan.progress is not None:
        plan.progress.update(len(texts))
    return pooled


def encode_split(model: Encoder, texts: list[str], options: LongInputs, plan: EncodePlan) -> list[ChunkEmbeddings]:
    """Mode "split": per input, the vector and character span of each chunk (one chunk for a short input)."""
    rows = chunk_rows(model, texts, options, plan)
    vectors = encode_rows(model, rows, plan).float().numpy()
    if plan.progress is not None:
        plan.progress.update(len(texts))
    return [ChunkEmbeddings(vectors[owned], spans) for owned, spans in zip(rows.owners, rows.spans)]
