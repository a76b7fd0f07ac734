"""embedstack.util against sentence_transformers.util (6.2), computed in the same run: MaxSim in every input form
(lists of token sets, padded tensors with masks, one set, numpy), with length normalization and small chunk
budgets, AnglE pair similarity with even and odd widths, and the old cos_sim name."""

import numpy as np
import pytest
import torch
from sentence_transformers import util as reference

from embedstack import util


def token_sets(generator: torch.Generator, count: int, dim: int = 8) -> list[torch.Tensor]:
    lengths = torch.randint(1, 12, (count,), generator=generator)
    return [torch.randn(int(length), dim, generator=generator) for length in lengths]


@pytest.mark.parametrize("chunk_elements", [None, 50])
@pytest.mark.parametrize("length_normalize", [False, True])
def test_maxsim_of_token_lists_matches_the_reference(chunk_elements, length_normalize):
    generator = torch.Generator().manual_seed(0)
    queries, documents = token_sets(generator, 5), token_sets(generator, 7)
    options = dict(chunk_elements=chunk_elements, length_normalize=length_normalize)
    ours, theirs = util.maxsim(queries, documents, **options), reference.maxsim(queries, documents, **options)
    assert ours.shape == (5, 7) and ours.dtype == torch.float32
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)
    pairs = util.maxsim_pairwise(queries, documents[:5], **options)
    torch.testing.assert_close(
        pairs, reference.maxsim_pairwise(queries, documents[:5], **options), rtol=1e-5, atol=1e-5
    )


def test_maxsim_of_padded_tensors_with_masks_single_sets_and_numpy_matches_the_reference():
    generator = torch.Generator().manual_seed(1)
    a, b = torch.randn(3, 6, 4, generator=generator), torch.randn(4, 9, 4, generator=generator)
    a_mask, b_mask = torch.rand(3, 6, generator=generator) > 0.3, torch.rand(4, 9, generator=generator) > 0.3
    a_mask[:, 0] = b_mask[:, 0] = True
    cases = [
        ((a, b), dict(a_mask=a_mask, b_mask=b_mask)),
        ((a[0], b), dict(a_mask=a_mask[0])),
        ((a.numpy(), b.numpy()), {}),
        ((a, b[1]), dict(b_mask=b_mask[1], length_normalize=True)),
    ]
    for (left, right), options in cases:
        torch.testing.assert_close(util.maxsim(left, right, **options), reference.maxsim(left, right, **options))
    torch.testing.assert_close(
        util.maxsim_pairwise(a, b[:3], a_mask=a_mask, b_mask=b_mask[:3]),
        reference.maxsim_pairwise(a, b[:3], a_mask=a_mask, b_mask=b_mask[:3]),
    )


def test_maxsim_pairwise_needs_as_many_documents_as_queries():
    with pytest.raises(ValueError, match="a has 2 items and b 1"):
        util.maxsim_pairwise([torch.ones(2, 3)] * 2, [torch.ones(2, 3)])


@pytest.mark.parametrize("dim", [8, 7])
def test_pairwise_angle_sim_and_the_old_cos_sim_name_match_the_reference(dim):
    generator = np.random.default_rng(2)
    x, y = generator.normal(size=(6, dim)).astype(np.float32), generator.normal(size=(6, dim)).astype(np.float32)
    torch.testing.assert_close(util.pairwise_angle_sim(x, y), reference.pairwise_angle_sim(x, y))
    torch.testing.assert_close(util.pytorch_cos_sim(x, y), reference.pytorch_cos_sim(torch.tensor(x), torch.tensor(y)))


def test_zero_rows_of_padded_tensors_are_padding_and_empty_documents_rank_last():
    generator = torch.Generator().manual_seed(3)
    a, b = -torch.rand(2, 5, 4, generator=generator), torch.rand(3, 6, 4, generator=generator)  # all dots negative
    a[:, 3:] = 0.0
    b[0, 2:] = 0.0
    b_mask = torch.ones(3, 6, dtype=torch.bool)
    b_mask[1] = False  # a document with no token left
    for options in ({}, {"length_normalize": True}):
        torch.testing.assert_close(util.maxsim(a, b, **options), reference.maxsim(a, b, **options))
        torch.testing.assert_close(util.maxsim(a.numpy(), b.numpy(), **options), reference.maxsim(a, b, **options))
    ours, theirs = util.maxsim(a, b, b_mask=b_mask), reference.maxsim(a, b, b_mask=b_mask)
    torch.testing.assert_close(ours, theirs)
    assert bool((ours[:, 1] == -1e9).all())
    pairs, their_pairs = (module.maxsim_pairwise(a, b[:2], b_mask=b_mask[:2]) for module in (util, reference))
    torch.testing.assert_close(pairs, their_pairs)
