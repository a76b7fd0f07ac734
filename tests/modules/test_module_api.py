"""Module-level public behaviour that sentence-transformers' own tests exercise (Pooling, Transformer, Router),
compared with sentence-transformers 6.2 in the same run."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sentence_transformers import SentenceTransformer as Reference
from sentence_transformers.base.modules.router import Router as ReferenceRouter
from sentence_transformers.base.modules.transformer import Transformer as ReferenceTransformer
from sentence_transformers.sentence_transformer.modules import Pooling as ReferencePooling

from embedstack import SentenceTransformer
from embedstack.modules import Pooling, Router, Transformer

MODES = ["cls", "max", "mean", "mean_sqrt_len_tokens", "weightedmean", "lasttoken"]


# ----- Pooling ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["mean", ["mean"], ["mean", "max"], ("cls", "lasttoken")])
def test_pooling_attributes(mode):
    ours, theirs = Pooling(8, pooling_mode=mode), ReferencePooling(8, pooling_mode=mode)
    assert Pooling.POOLING_MODES == ReferencePooling.POOLING_MODES
    assert ours.pooling_mode == theirs.pooling_mode and type(ours.pooling_mode) is type(theirs.pooling_mode)
    assert ours.pooling_output_dimension == theirs.pooling_output_dimension == ours.get_embedding_dimension()


def _flattened(lengths: list[int], dim: int = 8):
    """A batch as DataCollatorWithFlattening gives it (one row, boundaries in cu_seq_lens_q) and padded."""
    generator = torch.Generator().manual_seed(sum(lengths))
    tokens = torch.randn(1, sum(lengths), dim, generator=generator)
    bounds = torch.tensor([0, *np.cumsum(lengths)], dtype=torch.int32)
    flat = {"token_embeddings": tokens, "cu_seq_lens_q": bounds, "cu_seq_lens_k": bounds}
    padded = torch.zeros(len(lengths), max(lengths), dim)
    mask = torch.zeros(len(lengths), max(lengths), dtype=torch.int64)
    for row, (start, length) in enumerate(zip(bounds[:-1].tolist(), lengths)):
        padded[row, :length] = tokens[0, start : start + length]
        mask[row, :length] = 1
    return flat, {"token_embeddings": padded, "attention_mask": mask}


@pytest.mark.parametrize("mode", [*MODES, ["mean", "max"]])
@pytest.mark.parametrize("include_prompt", [True, False])
def test_flattened_batches_give_one_row_per_sequence(mode, include_prompt):
    lengths = [3, 6, 2, 5]
    flat, padded = _flattened(lengths)
    extra = {} if include_prompt else {"prompt_length": torch.tensor([1] * len(lengths))}  # per row, as in training
    ours = Pooling(8, pooling_mode=mode, include_prompt=include_prompt)
    theirs = ReferencePooling(8, pooling_mode=mode, include_prompt=include_prompt)
    result = ours({**flat, **extra})["sentence_embedding"]
    expected = theirs({**flat, **extra})["sentence_embedding"]
    assert result.shape == (len(lengths), ours.get_embedding_dimension())
    torch.testing.assert_close(result, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(result, ours({**padded, **extra})["sentence_embedding"], atol=1e-5, rtol=1e-5)


# ----- Transformer ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def transformers(tiny_bert_path):
    return Transformer(str(tiny_bert_path)), ReferenceTransformer(str(tiny_bert_path))


def test_transformer_attributes(transformers):
    ours, theirs = transformers
    assert ours.model_forward_params == theirs.model_forward_params
    assert ours.can_flatten_inputs is theirs.can_flatten_inputs is False  # no flash attention on this machine
    assert ours.infer_modalities_from_processor(ours.processor) == theirs.infer_modalities_from_processor(
        theirs.processor
    )
    assert ours.preprocess([]) == theirs.preprocess([]) == {}


def test_projection_dim_is_the_width_of_a_projected_sentence_embedding(clip_path):
    ours, theirs = Transformer(str(clip_path)), ReferenceTransformer(str(clip_path))
    assert ours.module_output_name == theirs.module_output_name == "sentence_embedding"
    assert ours.get_embedding_dimension() == theirs.get_embedding_dimension() == 16  # projection_dim, not 32


def test_max_seq_length_without_a_tokenizer_is_ignored(audio_path):
    ours, theirs = Transformer(str(audio_path)), ReferenceTransformer(str(audio_path))
    assert ours.tokenizer is None and theirs.tokenizer is None
    ours.max_seq_length = 12
    theirs.max_seq_length = 12
    assert ours.max_seq_length == theirs.max_seq_length


def test_a_hidden_states_output_path(tiny_bert_path):
    config = {"text": {"method": "forward", "method_output_name": ["hidden_states", -2]}}
    ours = Transformer(str(tiny_bert_path), modality_config=config, module_output_name="token_embeddings")
    theirs = ReferenceTransformer(str(tiny_bert_path), modality_config=config, module_output_name="token_embeddings")
    texts = ["a short text", "and another one"]
    layer = ours(ours.preprocess(texts))["token_embeddings"]  # (batch, seq, dim) of the second-to-last layer
    torch.testing.assert_close(layer, theirs(theirs.preprocess(texts))["token_embeddings"], atol=1e-6, rtol=1e-6)
    last = Transformer(str(tiny_bert_path))
    assert not torch.allclose(layer, last(last.preprocess(texts))["token_embeddings"])


def test_four_dimensional_outputs_become_token_sequences(convnet_path):
    images = _images(2)
    ours = SentenceTransformer(modules=[Transformer(str(convnet_path)), Pooling(16)], device="cpu")
    theirs = Reference(modules=[ReferenceTransformer(str(convnet_path)), ReferencePooling(16)], device="cpu")
    np.testing.assert_allclose(ours.encode(images), theirs.encode(images), atol=1e-5)


def test_compound_modality_keys_are_tuples_in_memory(clip_path, tmp_path):
    config = {
        "text": {"method": "get_text_features", "method_output_name": "pooler_output"},
        "image": {"method": "get_image_features", "method_output_name": "pooler_output"},
    }
    module = Transformer(str(clip_path), modality_config=config, module_output_name="sentence_embedding")
    SentenceTransformer(modules=[module], device="cpu").save(str(tmp_path / "m"))
    file = tmp_path / "m" / "sentence_bert_config.json"
    saved = json.loads(file.read_text())
    saved["modality_config"]["image+text"] = {"method": "forward", "method_output_name": "text_embeds"}
    file.write_text(json.dumps(saved))
    ours, theirs = SentenceTransformer(str(tmp_path / "m"), device="cpu"), Reference(str(tmp_path / "m"), device="cpu")
    assert ("image", "text") in ours[0].modality_config and ("image", "text") in theirs[0].modality_config
    assert ours.modalities == theirs.modalities


# ----- Router -----------------------------------------------------------------------------------------------
def test_router_forward_kwargs_is_an_attribute(tiny_bert_path):
    assert not isinstance(Router.__dict__.get("forward_kwargs"), property)
    route = [Transformer(str(tiny_bert_path)), Pooling(32)]
    router = Router.for_query_document(route, route)
    assert {"task", "modality"} <= set(router.forward_kwargs) and set(ReferenceRouter.forward_kwargs) <= set(
        router.forward_kwargs
    )


def test_a_router_first_is_saved_in_the_model_root_as_the_reference_does(tiny_bert_path, tmp_path):
    query, document = (
        [Transformer(str(tiny_bert_path)), Pooling(32)],
        [Transformer(str(tiny_bert_path)), Pooling(32, "cls")],
    )
    ours = SentenceTransformer(modules=[Router.for_query_document(query, document)], device="cpu")
    ours.save(str(tmp_path / "ours"))
    theirs = Reference(str(tmp_path / "ours"), device="cpu")
    theirs.save(str(tmp_path / "theirs"))

    def layout(folder):
        return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and p.name != "README.md")

    assert layout(tmp_path / "ours") == layout(tmp_path / "theirs")
    assert json.loads((tmp_path / "ours" / "modules.json").read_text())[0]["path"] == ""
    texts = ["where is the station?", "the station is north"]
    np.testing.assert_allclose(ours.encode_query(texts), theirs.encode_query(texts), atol=1e-6)
    np.testing.assert_allclose(ours.encode_document(texts), theirs.encode_document(texts), atol=1e-6)


# ----- fixtures ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def clip_path(tmp_path_factory):
    from multimodal_backbones import tiny_clip

    return tiny_clip(tmp_path_factory.mktemp("clip"))


@pytest.fixture(scope="module")
def audio_path(tmp_path_factory):
    from multimodal_backbones import tiny_audio

    return tiny_audio(tmp_path_factory.mktemp("audio"))


@pytest.fixture(scope="module")
def convnet_path(tmp_path_factory):
    """A tiny ResNet: its last_hidden_state is (batch, channels, height, width)."""
    from transformers import ConvNextImageProcessor, ResNetConfig, ResNetModel

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("resnet")
    config = ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="basic")
    ResNetModel(config).save_pretrained(folder)
    ConvNextImageProcessor(size={"shortest_edge": 32}, crop_pct=1.0).save_pretrained(folder)
    return folder


def _images(count):
    from multimodal_backbones import sample_images

    return sample_images(count)
