"""A sparse encoder's passes stay small enough that their vocabulary-sized logits are bounded, whatever the batch
size asked for, and the output never holds a dense (inputs, vocab) matrix."""

from __future__ import annotations

import torch

from embedstack import SparseEncoder
from embedstack.engine.pass_size import PASS_LOGITS_BYTES, sparse_max_batch_tokens


def test_passes_keep_their_logits_under_the_budget_whatever_the_batch_size(mlm_path):
    model = SparseEncoder(str(mlm_path), device="cpu")
    passes: list[tuple[int, int]] = []
    model[0].register_forward_hook(
        lambda module, args, output: passes.append(tuple(output["token_embeddings"].shape[:2]))
    )
    texts = [f"text number {i} about something, with a few more words to make it longer" for i in range(300)]
    budget = sparse_max_batch_tokens(torch.device("cpu"), 32, 30522)
    assert budget * 30522 * 4 <= PASS_LOGITS_BYTES
    for batch_size in (None, 1000):
        passes.clear()
        embeddings = model.encode(texts, batch_size=batch_size, max_active_dims=8)
        assert embeddings.is_sparse and embeddings.shape == (300, 30522)
        assert len(passes) > 1 and all(rows * tokens <= budget for rows, tokens in passes)
        assert embeddings.coalesce().values().numel() == 300 * 8  # only the kept weights are stored
