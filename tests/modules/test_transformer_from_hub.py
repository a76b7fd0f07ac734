"""A Transformer module built from a Hub id (a user assembling a model from a backbone), served offline from a
local Hub cache: a multimodal backbone gets its processor, not only its tokenizer, as in sentence-transformers 6.2.
Compared with the reference in the same run; tolerance: max abs diff 1e-5 in float32."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sentence_transformers import SentenceTransformer as Reference
from sentence_transformers.base.modules.transformer import Transformer as ReferenceTransformer

from embedstack import SentenceTransformer
from embedstack.modules import Transformer
from helpers import add_to_cache
from multimodal_backbones import sample_images, tiny_clip

CLIP_ID, BERT_ID = "someone/tiny-clip", "someone/tiny-bert"
TEXTS = ["a photo of a dog", "a drawing of a house"]


@pytest.fixture(scope="module")
def clip_folder(tmp_path_factory):
    return tiny_clip(tmp_path_factory.mktemp("clip") / "clip")


@pytest.fixture(scope="module")
def hub_cache(tmp_path_factory, clip_folder, tiny_bert_path):
    cache = tmp_path_factory.mktemp("hub")
    add_to_cache(cache, CLIP_ID, clip_folder)
    add_to_cache(cache, BERT_ID, tiny_bert_path)
    return cache


@pytest.fixture
def offline_hub(hub_cache, monkeypatch):
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(hub_cache))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    return hub_cache


def test_a_clip_transformer_from_a_hub_id_encodes_images(offline_hub, clip_folder):
    ours, theirs = Transformer(CLIP_ID), ReferenceTransformer(CLIP_ID)
    assert type(ours.processor) is type(theirs.processor)
    assert type(ours.processor).__name__ == "CLIPProcessor"  # not only its CLIPTokenizer
    assert ours.modalities == theirs.modalities == ["text", "image"]
    assert ours.module_output_name == theirs.module_output_name == "sentence_embedding"
    model = SentenceTransformer(modules=[ours], device="cpu")
    reference = Reference(modules=[theirs], device="cpu")
    images = sample_images(3)
    expected_images, expected_texts = reference.encode(images), reference.encode(TEXTS)
    np.testing.assert_allclose(model.encode(images), expected_images, atol=1e-5)
    np.testing.assert_allclose(model.encode(TEXTS), expected_texts, atol=1e-5)
    from_folder = SentenceTransformer(modules=[Transformer(str(clip_folder))], device="cpu")
    np.testing.assert_allclose(from_folder.encode(images), expected_images, atol=1e-5)


def test_a_text_backbone_from_a_hub_id_still_gets_its_tokenizer(offline_hub):
    ours, theirs = Transformer(BERT_ID), ReferenceTransformer(BERT_ID)
    assert type(ours.processor) is type(theirs.processor)
    assert ours.tokenizer is ours.processor and ours.modalities == theirs.modalities == ["text"]
    features, expected = ours.preprocess(TEXTS), theirs.preprocess(TEXTS)
    torch.testing.assert_close(features["input_ids"], expected["input_ids"])
    torch.testing.assert_close(
        ours(features)["token_embeddings"], theirs(expected)["token_embeddings"], atol=1e-5, rtol=1e-5
    )
