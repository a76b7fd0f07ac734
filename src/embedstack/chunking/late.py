"""Late chunking (Günther et al., arXiv 2409.04701): embed the whole document once, then pool each chunk's tokens.

The document runs through the backbone in passes as long as its position table allows (512 tokens for BERT models,
whatever ``max_seq_length`` says); a longer document runs in overlapping passes, each token taken from the pass in
which it sits further from the edge. Each chunk's token embeddings then go through the modules after the input
module (Pooling, Dense, Normalize, ...). The first chunk also pools the leading special tokens (and the prompt, as
the Pooling module's ``include_prompt`` says), the last one the trailing ones, so a document that fits
``max_seq_length`` and is one chunk gives exactly the vector of plain encode.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from embedstack.chunking.options import ChunkEmbeddings, LongInputs
from embedstack.chunking.tokens import (
    DocumentTokens,
    covering_spans,
    sentence_spans,
    token_windows,
    tokenize_whole,
    tokens_in_span,
)
from embedstack.engine.batching import longest_first, token_budget_batches
from embedstack.engine.runner import EncodePlan, pass_budget
from embedstack.engine.tokenized import TokenizedTexts, pad_batch
from embedstack.modules.pooling import Pooling
from embedstack.modules.transformer.support import position_limit

_SPAN_POOLING = {"mean", "max", "mean_sqrt_len_tokens"}  # modes that pool whatever tokens the mask keeps
_DOCUMENTS_PER_GROUP = 32


def backbone_window(input_module: Any) -> int:
    """Tokens the backbone takes in one pass: its position table (less RoBERTa's padding offset)."""
    positions = position_limit(getattr(input_module, "config", None) or {})
    if positions is None:
        raise ValueError(
            f"Late chunking needs the backbone's max_position_embeddings; {type(input_module).__name__}'s config "
            "has none. Pass LongInputs(mode='late', late_window=N)."
        )
    return min(positions, 8192)


def check_pooling(model: Any) -> Pooling:
    """The Pooling module right after the input module; its mode must pool the tokens a mask keeps."""
    modules = list(model.children())
    pooling = modules[1] if len(modules) > 1 else None
    if not isinstance(pooling, Pooling) or not set(pooling.modes) <= _SPAN_POOLING:
        found = f"{type(pooling).__name__}({getattr(pooling, 'pooling_mode', '')})" if pooling else "nothing"
        raise ValueError(
            f"Late chunking pools each chunk's tokens, so the module after the input module must be a Pooling with "
            f"mode mean, max or mean_sqrt_len_tokens; this model has {found}. Use long_inputs='split' instead."
        )
    return pooling


def chunk_token_ranges(
    document: DocumentTokens, text: str, options: LongInputs, spans: Any, size: int
) -> tuple[list[tuple[int, int]], np.ndarray]:
    """The chunks of one document: text-token ranges and character spans (given, by sentence, or by tokens)."""
    if spans is None and options.boundaries == "tokens":
        windows = token_windows(max(document.content, 1), options.chunk_tokens or size, 0)
        windows = [(a, min(b, document.content)) for a, b in windows]
        if document.content == 0:
            return windows, np.array([[0, len(text)]], dtype=np.int64)
        return windows, covering_spans(document, windows, len(text))
    char_spans = list(spans) if spans is not None else sentence_spans(text)
    ranges = [tokens_in_span(document, int(start), int(end)) for start, end in char_spans]
    return ranges, np.asarray(char_spans, dtype=np.int64).reshape(-1, 2)


def document_token_embeddings(
    model: Any, documents: list[DocumentTokens], window: int, overlap: int, plan: EncodePlan
) -> list[torch.Tensor]:
    """Each document's token embeddings, (tokens, dim), from backbone passes of at most ``window`` tokens."""
    rows: list[tuple[int, int, int]] = []  # (document, first text token, end)
    for index, document in enumerate(documents):
        room = window - document.prefix - document.suffix
        if room < 1:
            raise ValueError(f"The prompt and special tokens fill the late-chunking window of {window} tokens.")
        rows += [(index, a, b) for a, b in token_windows(max(document.content, 1), room, overlap)]
    ids, types = zip(*(documents[d].row(a, min(b, documents[d].content)) for d, a, b in rows))
    tokenized = TokenizedTexts(list(ids), list(types), np.array([len(r) for r in ids]), np.zeros(len(ids), bool))
    input_module = model.input_module
    module_kwargs = plan.module_kwargs.get(next(iter(model.named_children()))[0], {})
    outputs: list[torch.Tensor | None] = [None] * len(rows)
    order = longest_first(tokenized.lengths)
    budget, rows_cap = pass_budget(model, plan), plan.batch_size or len(order)  # the engine's pass size
    for batch in token_budget_batches(order, tokenized.lengths, max_batch_tokens=budget, batch_size=rows_cap):
        features = pad_batch(tokenized, batch, pad_id=_pad_id(input_module))
        features = {k: v.to(plan.device) if isinstance(v, torch.Tensor) else v for k, v in features.items()}
        hidden = input_module(features, **module_kwargs)["token_embeddings"]  # (batch, seq, dim)
        for slot, row in enumerate(batch):
            outputs[row] = hidden[slot, : int(tokenized.lengths[row])].float().cpu()
    passes: list[list[tuple[int, int, Any]]] = [[] for _ in documents]
    for (owner, start, end), output in zip(rows, outputs):
        passes[owner].append((start, end, output))
    return [_stitch(document, own) for document, own in zip(documents, passes)]


def _stitch(document: DocumentTokens, passes: list[tuple[int, int, Any]]) -> torch.Tensor:
    """One document's token embeddings from its passes: overlaps split at their middle."""
    prefix, suffix = document.prefix, document.suffix
    pieces = [passes[0][2][:prefix]]
    for index, (start, end, hidden) in enumerate(passes):
        end = min(end, document.content)
        keep_from = start if index == 0 else (passes[index - 1][1] + start) // 2
        keep_to = end if index == len(passes) - 1 else (end + passes[index + 1][0]) // 2
        pieces.append(hidden[prefix + keep_from - start : prefix + keep_to - start])
    last = passes[-1][2]
    pieces.append(last[len(last) - suffix :] if suffix else last[:0])
    return torch.cat(pieces)  # (prefix + content + suffix, dim)


def encode_late(model: Any, texts: list[str], options: LongInputs, plan: EncodePlan) -> list[ChunkEmbeddings]:
    """Mode "late": per input, one vector per chunk (with its character span), from one embedding of the whole."""
    check_pooling(model)
    if options.spans is not None and len(options.spans) != len(texts):
        raise ValueError(f"long_inputs spans has {len(options.spans)} lists of spans for {len(texts)} inputs.")
    results: list[ChunkEmbeddings] = []
    for start in range(0, len(texts), _DOCUMENTS_PER_GROUP):  # bounds the token embeddings held at once
        group = range(start, min(start + _DOCUMENTS_PER_GROUP, len(texts)))
        results += _encode_group(model, texts, group, options, plan)
    return results


def _encode_group(model: Any, texts: list[str], group: range, options: LongInputs, plan: EncodePlan) -> list[Any]:
    pooling = check_pooling(model)
    window = options.late_window or backbone_window(model.input_module)
    documents = tokenize_whole(model.input_module, [texts[i] for i in group], plan.prompt)
    hidden = document_token_embeddings(model, documents, window, options.late_overlap, plan)
    size = max(1, (model.max_seq_length or window) - max((d.prefix + d.suffix for d in documents), default=0))
    results = []
    skip_prefix = bool(plan.prompt) and not pooling.include_prompt
    for index, document, tokens in zip(group, documents, hidden):
        text = texts[index]
        spans = options.spans[index] if options.spans is not None else None
        ranges, char_spans = chunk_token_ranges(document, text, options, spans, size)
        pieces = []
        for number, (first, last) in enumerate(ranges):
            start = document.prefix + first if (number or skip_prefix) else 0
            end = document.prefix + last if number < len(ranges) - 1 else len(tokens)
            if end <= start:
                span = tuple(int(x) for x in char_spans[number])
                raise ValueError(
                    f"Chunk {number} {span} of input {index} holds no token; give spans that each cover some text."
                )
            pieces.append(tokens[start:end])
        vectors = _pool_pieces(model, pieces, plan)
        results.append(ChunkEmbeddings(vectors.numpy(), char_spans))
        if plan.progress is not None:
            plan.progress.update(1)
    return results


def _pool_pieces(model: Any, pieces: list[torch.Tensor], plan: EncodePlan) -> torch.Tensor:
    """Run each chunk's token embeddings through the modules after the input module: (chunks, dim)."""
    width = max(len(piece) for piece in pieces)
    dim = pieces[0].shape[-1]
    tokens = torch.zeros(len(pieces), width, dim)  # (chunks, seq, dim)
    mask = torch.zeros(len(pieces), width, dtype=torch.int64)
    for row, piece in enumerate(pieces):
        tokens[row, : len(piece)] = piece
        mask[row, : len(piece)] = 1
    features: dict[str, Any] = {"token_embeddings": tokens.to(plan.device), "attention_mask": mask.to(plan.device)}
    features["modality"] = "text"
    for name, module in list(model.named_children())[1:]:
        features = module(features, **plan.module_kwargs.get(name, {}))
    vectors = features["sentence_embedding"]
    if plan.truncate_dim is not None:
        vectors = vectors[..., : plan.truncate_dim]
    if plan.normalize_embeddings:
        vectors = F.normalize(vectors, p=2, dim=1)
    return vectors.float().cpu()


def _pad_id(input_module: Any) -> int:
    pad = getattr(input_module, "pad_token_id", None)
    if pad is None:
        pad = getattr(getattr(input_module, "tokenizer", None), "pad_token_id", None)
    return int(pad) if pad is not None else 0
