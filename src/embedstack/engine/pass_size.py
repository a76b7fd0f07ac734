"""How many padded tokens one forward pass holds when the caller sets no limit: the engine's token budget.

On a GPU, large passes keep the device busy: 16,384 tokens. On a CPU the best pass is much smaller, and it
depends on the model's width. Measured with ``benchmarks/pass_size.py`` (all-MiniLM-L6-v2, width 384, 2 cores,
AVX-512; texts/s against the budget, no row limit, medians of interleaved runs):

==========  =====  =====  =====  =====  =====  ======
budget        256    512  1,024  2,048  4,096  16,384
==========  =====  =====  =====  =====  =====  ======
STS-B         518    558    548    566    539     380
Wikipedia      61     70     72     76     74      57
mixed         174    188    194    194    184     127
==========  =====  =====  =====  =====  =====  ======

Below the best, few rows leave the matrix units underused and the fixed cost of a pass weighs more; above it,
a pass's activations no longer fit in the CPU's caches (the feed-forward layer's intermediate activation,
rows x 4 x width floats, is 12 MiB at 2,048 tokens of width 384). So the CPU budget keeps that activation near
12 MiB: 2,048 tokens at width 384, 1,024 at 768, 768 at 1,024. On a random 6-layer BERT of width 768
(``benchmarks/pass_size.py --width 768 --texts 400 --runs 2``, same machine) texts/s is flat from 512 to 4,096
tokens (STS-B 202-205, extracts 20.3-21.1), so the rule's 1,024 costs nothing there; what it guards against is
the drop at large passes measured at width 384.
"""

from __future__ import annotations

import torch

DEFAULT_MAX_BATCH_TOKENS = 16384  # accelerators
CPU_PASS_ACTIVATION_BYTES = 12 * 2**20  # the feed-forward intermediate activation of one pass, fp32
CPU_PASS_TOKENS = (256, 4096)  # the range the CPU rule stays in
CPU_DEFAULT_WIDTH = 384


def default_max_batch_tokens(device: torch.device | None, width: int | None) -> int:
    """The token budget of one pass on ``device`` for a model whose hidden size is ``width`` (None: unknown).

    Example:
        >>> [default_max_batch_tokens(torch.device("cpu"), width) for width in (384, 768, 1024, 4096)]
        [2048, 1024, 768, 256]
        >>> default_max_batch_tokens(torch.device("cuda"), 384)
        16384
    """
    if device is not None and device.type != "cpu":
        return DEFAULT_MAX_BATCH_TOKENS
    tokens = CPU_PASS_ACTIVATION_BYTES // (16 * (width or CPU_DEFAULT_WIDTH))  # 4 x width floats of 4 bytes
    low, high = CPU_PASS_TOKENS
    return int(min(max(tokens, low), high))


# A sparse encoder's MLM also holds vocabulary-sized logits per token (30,522 floats for BERT's vocabulary: 122 KB a
# token); its passes are capped so those logits stay near this size, whatever the batch.
PASS_LOGITS_BYTES = 128 * 2**20  # CPU; accelerators take 4x
PASS_LOGITS_TOKENS = (64, DEFAULT_MAX_BATCH_TOKENS)


def sparse_max_batch_tokens(device: torch.device | None, width: int | None, vocabulary: int | None) -> int:
    """The token budget of one pass of a masked language model with ``vocabulary`` logits per token.

    The dense rule's budget (:func:`default_max_batch_tokens`), lowered so a pass's logits stay near
    ``PASS_LOGITS_BYTES`` (4x that on an accelerator).

    Example:
        >>> sparse_max_batch_tokens(torch.device("cpu"), 768, 30522)  # BERT-base: 1,024 tokens, 125 MB of logits
        1024
        >>> sparse_max_batch_tokens(torch.device("cuda"), 768, 30522)
        4397
    """
    dense = default_max_batch_tokens(device, width)
    if not vocabulary:
        return dense
    budget = PASS_LOGITS_BYTES * (1 if device is None or device.type == "cpu" else 4)
    low, high = PASS_LOGITS_TOKENS
    return int(min(dense, max(low, min(high, budget // (4 * vocabulary)))))
