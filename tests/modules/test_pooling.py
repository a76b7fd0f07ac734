"""Pooling against sentence-transformers' Pooling on random token embeddings, right and left padded."""

from __future__ import annotations

import pytest
import torch
from sentence_transformers.sentence_transformer.modules import Pooling as ReferencePooling

from embedstack.modules import Pooling
from embedstack.modules.pooling import POOLING_MODES


def features(left_padding: bool, prompt_length: int | None = None) -> dict:
    torch.manual_seed(0)
    lengths = torch.tensor([7, 3, 5, 1])
    mask = (torch.arange(7).unsqueeze(0) < lengths.unsqueeze(1)).long()  # (4, 7)
    if left_padding:
        mask = mask.flip(1)
    out = {"token_embeddings": torch.randn(4, 7, 6), "attention_mask": mask}
    if prompt_length is not None:
        out["prompt_length"] = prompt_length
    return out


@pytest.mark.parametrize("left_padding", [False, True])
@pytest.mark.parametrize("mode", [*POOLING_MODES, ("cls", "mean"), ("max", "weightedmean", "lasttoken")])
def test_modes_match_reference(mode, left_padding):
    mode_arg = list(mode) if isinstance(mode, tuple) else mode
    ours = Pooling(6, pooling_mode=mode_arg)(features(left_padding))["sentence_embedding"]
    theirs = ReferencePooling(6, pooling_mode=mode_arg)(features(left_padding))["sentence_embedding"]
    assert ours.shape == theirs.shape == (4, 6 * (len(mode) if isinstance(mode, tuple) else 1))
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6)


@pytest.mark.parametrize("left_padding", [False, True])
def test_include_prompt_false_matches_reference(left_padding):
    for mode in ("mean", "max", "weightedmean"):
        ours = Pooling(6, mode, include_prompt=False)(features(left_padding, 2))["sentence_embedding"]
        theirs = ReferencePooling(6, mode, include_prompt=False)(features(left_padding, 2))["sentence_embedding"]
        with_prompt = Pooling(6, mode)(features(left_padding, 2))["sentence_embedding"]
        torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6)
        if mode != "max":  # a max may lie outside the prompt, so only the averages must change
            assert not torch.allclose(ours[0], with_prompt[0])


def test_mean_is_the_masked_average():
    f = features(False)
    out = Pooling(6, "mean")(dict(f))["sentence_embedding"]
    torch.testing.assert_close(out[1], f["token_embeddings"][1, :3].mean(0))


def test_invalid_settings_name_the_value():
    with pytest.raises(ValueError, match="'avg'"):
        Pooling(6, "avg")
    with pytest.raises(ValueError, match="-1"):
        Pooling(-1)
    with pytest.raises(ValueError, match="at least one"):
        Pooling(6, [])


def test_legacy_flags_give_the_same_modes_with_a_warning():
    with pytest.warns(FutureWarning):
        pooling = Pooling(6, pooling_mode_cls_token=True, pooling_mode_mean_tokens=True)
    assert pooling.modes == ("cls", "mean")
    assert pooling.get_embedding_dimension() == 12
