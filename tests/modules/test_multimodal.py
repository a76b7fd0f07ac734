"""Images, audio and chat messages through the Transformer module: same vectors as sentence-transformers 6.2.

Each tiny backbone is saved as a plain Hugging Face folder, loaded by both libraries and fed every input kind
it takes; a model saved by either library loads in the other. Tolerance: max abs diff 1e-5 in float32.
"""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch
from sentence_transformers import SentenceTransformer as Reference

from embedstack import SentenceTransformer
from embedstack.errors import UnsupportedModalityError
from helpers import short_texts
from multimodal_backbones import sample_clips, sample_images, tiny_audio, tiny_chat_lm, tiny_clip, tiny_llava

TOLERANCE = 1e-5


def assert_close(actual, expected) -> None:
    assert actual.shape == expected.shape
    assert np.abs(actual - expected).max() <= TOLERANCE


@pytest.fixture(scope="module")
def clip_path(tmp_path_factory):
    return tiny_clip(tmp_path_factory.mktemp("clip"))


@pytest.fixture(scope="module")
def chat_path(tmp_path_factory):
    return tiny_chat_lm(tmp_path_factory.mktemp("chat-lm"))


@pytest.fixture(scope="module")
def llava_path(tmp_path_factory):
    return tiny_llava(tmp_path_factory.mktemp("llava"))


@pytest.fixture(scope="module")
def audio_path(tmp_path_factory):
    return tiny_audio(tmp_path_factory.mktemp("audio"))


def test_clip_text_and_images(clip_path, tmp_path):
    ours, theirs = SentenceTransformer(str(clip_path), device="cpu"), Reference(str(clip_path), device="cpu")
    assert repr(ours) == repr(theirs)
    assert ours.modalities == theirs.modalities == ["text", "image"]
    images = sample_images()
    images[0].save(tmp_path / "photo.png")
    texts = short_texts()[:12]
    assert_close(ours.encode(texts), theirs.encode(texts))
    assert_close(ours.encode(texts[:3], prompt="a photo of "), theirs.encode(texts[:3], prompt="a photo of "))
    assert_close(ours.encode(images), theirs.encode(images))
    arrays = [np.asarray(image) for image in images]
    assert_close(ours.encode(arrays), theirs.encode(images))  # (H, W, C) arrays are images
    assert_close(ours.encode([str(tmp_path / "photo.png"), {"image": images[1]}]), theirs.encode(images[:2]))


def test_clip_mixed_batch_is_grouped_by_modality(clip_path):
    """sentence-transformers refuses a batch mixing texts and images for a model without a chat template;
    embedstack runs one pass per modality and keeps the input order."""
    ours, theirs = SentenceTransformer(str(clip_path), device="cpu"), Reference(str(clip_path), device="cpu")
    images, texts = sample_images(), ["a red square", "two dogs", "a cat on a mat"]
    mixed = [texts[0], images[0], texts[1], images[1], images[2], texts[2]]
    expected_texts, expected_images = theirs.encode(texts), theirs.encode(images)
    expected = np.stack(
        [
            expected_texts[0],
            expected_images[0],
            expected_texts[1],
            expected_images[1],
            expected_images[2],
            expected_texts[2],
        ]
    )
    assert_close(ours.encode(mixed), expected)
    with pytest.raises(ValueError, match="mixes multiple modalities"):
        theirs.encode(mixed)
    streamed = np.stack(list(ours.encode_iter(iter(mixed), window_size=4)))
    assert_close(streamed, expected)


def test_clip_saved_by_either_loads_in_both(clip_path, tmp_path):
    images, texts = sample_images(2), ["a photo of a dog", "a drawing"]
    for writer in (SentenceTransformer, Reference):
        writer(str(clip_path), device="cpu").save(str(tmp_path / writer.__module__))
        config = json.loads((tmp_path / writer.__module__ / "sentence_bert_config.json").read_text())
        assert config["module_output_name"] == "sentence_embedding"
        assert set(config["modality_config"]) == {"text", "image"}
        expected = Reference(str(clip_path), device="cpu")
        for reader in (SentenceTransformer, Reference):
            loaded = reader(str(tmp_path / writer.__module__), device="cpu")
            assert_close(loaded.encode(images), expected.encode(images))
            assert_close(loaded.encode(texts), expected.encode(texts))


def test_text_only_model_refuses_images_clearly(tiny_bert_path):
    model = SentenceTransformer(str(tiny_bert_path), device="cpu")
    with pytest.raises(UnsupportedModalityError, match="cannot take 'image' inputs.*it takes text"):
        model.encode(sample_images(1))


def conversations() -> list:
    return [
        [{"role": "user", "content": "What is the capital of France?"}],
        [{"role": "user", "content": "hello there"}, {"role": "assistant", "content": "hi, how can I help?"}],
        {"role": "user", "content": "a single message"},
    ]


def test_chat_model_texts_messages_and_prompts(chat_path):
    ours, theirs = SentenceTransformer(str(chat_path), device="cpu"), Reference(str(chat_path), device="cpu")
    assert repr(ours) == repr(theirs)
    message = ours[0].modality_config["message"]
    assert message["format"] == "flat" and ours[1].pooling_mode == "lasttoken"
    texts = short_texts()[:10] + ["word " * 300]  # the last one is truncated: the template's end is restored
    assert_close(ours.encode(texts), theirs.encode(texts))
    assert_close(
        ours.encode(texts[:4], prompt="Represent this sentence: "),
        theirs.encode(texts[:4], prompt="Represent this sentence: "),
    )
    short = {"text": {"max_length": 8}}  # per call, through the chat template path
    assert_close(ours.encode(texts[:4], processing_kwargs=short), theirs.encode(texts[:4], processing_kwargs=short))
    chats = conversations()
    assert_close(ours.encode(chats), theirs.encode(chats))
    assert_close(ours.encode(chats, prompt="You embed text."), theirs.encode(chats, prompt="You embed text."))
    assert_close(ours.encode(chats[0]), theirs.encode(chats[0]))  # one conversation gives one vector
    mixed = ours.encode([texts[0], chats[1]])  # a text and a conversation in one batch: each its own conversation
    assert_close(mixed, np.stack([theirs.encode(texts[0]), theirs.encode(chats[1])]))


def test_chat_model_saved_by_either_loads_in_both(chat_path, tmp_path):
    texts, chats = ["first text", "a second, longer text"], conversations()[:2]
    expected = Reference(str(chat_path), device="cpu")
    for writer in (SentenceTransformer, Reference):
        folder = tmp_path / writer.__module__
        writer(str(chat_path), device="cpu", prompts={"query": "Query: "}).save(str(folder))
        saved = json.loads((folder / "sentence_bert_config.json").read_text())["modality_config"]
        assert saved["message"]["format"] == "flat"
        for reader in (SentenceTransformer, Reference):
            loaded = reader(str(folder), device="cpu")
            assert_close(loaded.encode(texts), expected.encode(texts))
            assert_close(loaded.encode_query(chats), expected.encode(chats, prompt="Query: "))


def test_audio_arrays_and_dicts(audio_path, tmp_path):
    ours, theirs = SentenceTransformer(str(audio_path), device="cpu"), Reference(str(audio_path), device="cpu")
    assert repr(ours) == repr(theirs) and ours.modalities == ["audio"]
    clips = sample_clips()
    assert_close(ours.encode(clips), theirs.encode(clips))
    wrapped = [{"array": clip, "sampling_rate": 16000} for clip in clips]
    assert_close(ours.encode(wrapped), theirs.encode(wrapped))
    assert_close(ours.encode([{"audio": wrapped[0]}]), theirs.encode(clips[:1]))
    tensors = [torch.from_numpy(clip) for clip in clips]  # the reference's feature extractor fails on tensors
    assert_close(ours.encode(tensors), theirs.encode(clips))
    with pytest.raises(UnsupportedModalityError, match="cannot take 'text' inputs.*it takes audio"):
        ours.encode(["not audio"])
    ours.save(str(tmp_path / "ours"))
    theirs.save(str(tmp_path / "theirs"))
    assert_close(Reference(str(tmp_path / "ours"), device="cpu").encode(clips), theirs.encode(clips))
    assert_close(SentenceTransformer(str(tmp_path / "theirs"), device="cpu").encode(clips), theirs.encode(clips))


@pytest.mark.parametrize(
    ("backbone", "expected"),
    [
        ("clip_path", ["Modalities: text, image"]),
        ("chat_path", ["Modalities: text, message", "Message format: flat"]),
        ("audio_path", ["Modalities: audio"]),
        ("llava_path", ["Modalities: text, image, message", "Message format: structured"]),
    ],
)
def test_info_prints_modalities_and_message_format(backbone, expected, request, capsys):
    from embedstack.cli import main

    # In this process: four `python -m embedstack.cli info` subprocesses spent ~20 s importing torch and transformers
    # (the entry point itself runs as a subprocess in test_shards.py and test_server_cli.py).
    assert main(["info", str(request.getfixturevalue(backbone))]) == 0
    out = capsys.readouterr().out
    for line in expected:
        assert line in out.splitlines()


def test_missing_pillow_names_the_extra(clip_path, monkeypatch):
    import importlib.util

    from embedstack.errors import MissingExtraError

    model = SentenceTransformer(str(clip_path), device="cpu")
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "PIL" else real_find_spec(name, *a)
    )
    with pytest.raises(MissingExtraError, match=r"pip install 'embedstack\[image\]'"):
        model.encode([np.zeros((32, 32, 3), dtype=np.uint8)])


def test_legacy_clip_model_module(clip_path, tmp_path):
    """Folders naming the legacy CLIPModel module: as sentence-transformers 2.x wrote them (a 0_CLIPModel folder,
    no module config) and as 6.2 writes them; ours loads in the reference too."""
    import shutil

    from sentence_transformers.sentence_transformer.modules import CLIPModel as ReferenceCLIP

    images, texts = sample_images(2), ["a photo of a dog", "a drawing"]
    expected = Reference(str(clip_path), device="cpu")
    old = tmp_path / "old"
    shutil.copytree(clip_path, old / "0_CLIPModel")
    (old / "modules.json").write_text(
        json.dumps([{"idx": 0, "name": "0", "path": "0_CLIPModel", "type": "sentence_transformers.models.CLIPModel"}])
    )
    Reference(modules=[ReferenceCLIP(str(clip_path))], device="cpu").save(str(tmp_path / "current"))
    for folder in (old, tmp_path / "current"):
        ours = SentenceTransformer(str(folder), device="cpu")
        assert type(ours[0]).__name__ == "CLIPModel"
        assert_close(ours.encode(images), expected.encode(images))
        assert_close(ours.encode(texts), expected.encode(texts))
    ours.save(str(tmp_path / "resaved"))
    assert json.loads((tmp_path / "resaved" / "modules.json").read_text())[0]["type"].endswith("clip_model.CLIPModel")
    assert_close(Reference(str(tmp_path / "resaved"), device="cpu").encode(images), expected.encode(images))


def test_router_with_modality_routes(clip_path, tiny_bert_path, tmp_path):
    """A cross-modal Router: images through CLIP, texts through a BERT stack; a mixed batch is split by modality."""
    import sentence_transformers.sentence_transformer.modules as st_modules
    import torch

    import embedstack.modules as our_modules

    def build(m):
        torch.manual_seed(0)
        text_route = [m.Transformer(str(tiny_bert_path)), m.Pooling(32), m.Dense(32, 16)]
        return [m.Router({"text": text_route, "image": [m.Transformer(str(clip_path))]}), m.Normalize()]

    images, texts = sample_images(2), ["a photo of a dog", "a drawing"]
    theirs = Reference(modules=build(st_modules), device="cpu")
    theirs.save(str(tmp_path / "router"))
    ours = SentenceTransformer(str(tmp_path / "router"), device="cpu")
    assert ours.modalities == ["image", "text"]
    mixed = ours.encode([texts[0], images[0], texts[1], images[1]])
    expected_texts, expected_images = theirs.encode(texts), theirs.encode(images)
    assert_close(mixed, np.stack([expected_texts[0], expected_images[0], expected_texts[1], expected_images[1]]))
    mine = SentenceTransformer(modules=build(our_modules), device="cpu")
    mine.save(str(tmp_path / "ours"))
    reloaded = Reference(str(tmp_path / "ours"), device="cpu")
    assert_close(reloaded.encode(images), mine.encode(images))
    assert_close(reloaded.encode(texts), mine.encode(texts))


def test_vision_language_chat_model(llava_path, tmp_path):
    """A chat model with images: every input becomes a structured conversation, mixed batches included."""
    ours, theirs = SentenceTransformer(str(llava_path), device="cpu"), Reference(str(llava_path), device="cpu")
    assert repr(ours) == repr(theirs)
    assert ours.modalities == ["text", "image", "message"]
    assert ours[0].modality_config["message"]["format"] == "structured"
    images = sample_images(2)
    chat = [
        [{"role": "user", "content": [{"type": "image", "image": images[0]}, {"type": "text", "text": "what is it"}]}]
    ]
    cases = [
        (["a text", "a somewhat longer text"], {}),
        (images, {}),
        ([{"text": "a caption", "image": images[0]}, {"text": "another", "image": images[1]}], {}),
        (["a text", images[1], {"text": "both", "image": images[0]}], {}),  # mixed: one batch of conversations
        (chat, {}),
        (["a text"], {"prompt": "Embed this."}),
        (images[:1], {"prompt": "Describe the image."}),
    ]
    for inputs, kwargs in cases:
        assert_close(ours.encode(inputs, **kwargs), theirs.encode(inputs, **kwargs))
    ours.save(str(tmp_path / "saved"))
    theirs.save(str(tmp_path / "theirs"))
    assert_close(Reference(str(tmp_path / "saved"), device="cpu").encode(images), theirs.encode(images))
    assert_close(SentenceTransformer(str(tmp_path / "theirs"), device="cpu").encode(chat), theirs.encode(chat))
    assert (
        json.loads((tmp_path / "saved" / "sentence_bert_config.json").read_text())["modality_config"]["message"][
            "format"
        ]
        == "structured"
    )


def test_processing_kwargs_per_module_and_per_call(caplog, clip_path, tmp_path):
    """processing_kwargs on the module are saved with it; per call they override it section by section."""
    from sentence_transformers.sentence_transformer.modules import Transformer as ReferenceTransformer

    from embedstack.modules import Transformer

    per_module = {"text": {"max_length": 6}, "image": {"do_normalize": False}}
    ours = SentenceTransformer(modules=[Transformer(str(clip_path), processing_kwargs=per_module)], device="cpu")
    theirs = Reference(modules=[ReferenceTransformer(str(clip_path), processing_kwargs=per_module)], device="cpu")
    texts, images = ["a long text that the max length of six tokens cuts short", "short"], sample_images(2)
    assert_close(ours.encode(texts), theirs.encode(texts))
    assert_close(ours.encode(images), theirs.encode(images))
    per_call = {"text": {"max_length": 4}}
    assert_close(ours.encode(texts, processing_kwargs=per_call), theirs.encode(texts, processing_kwargs=per_call))
    assert not np.allclose(ours.encode(texts, processing_kwargs=per_call), ours.encode(texts))
    ours.save(str(tmp_path / "saved"))
    assert json.loads((tmp_path / "saved" / "sentence_bert_config.json").read_text())["processing_kwargs"] == per_module
    assert_close(Reference(str(tmp_path / "saved"), device="cpu").encode(images), theirs.encode(images))
    with caplog.at_level(logging.WARNING, logger="embedstack"):  # ignored with a warning, as the reference does
        ignored = ours.encode(texts, processing_kwargs={"txt": {"max_length": 2}})
    assert "Ignoring processing_kwargs section 'txt'" in caplog.text
    assert_close(ignored, theirs.encode(texts, processing_kwargs={"txt": {"max_length": 2}}))


def test_video_model_without_torchvision_names_the_environment(tmp_path):
    """A video-language model in an environment without torchvision (this one, on CPU torch 2.13): loading it
    says which environment runs it. tests/modules/test_video.py loads the same folder where torchvision is installed."""
    import importlib.util

    from embedstack.errors import MissingExtraError
    from video_backbones import qwen2_vl_files

    if importlib.util.find_spec("torchvision") is not None:
        pytest.skip("torchvision is installed here; tests/modules/test_video.py runs this folder")
    folder = qwen2_vl_files(tmp_path / "qwen2-vl")
    with pytest.raises(MissingExtraError, match=r"needs torchvision.*scripts/setup\.sh video.*embedstack\[video\]"):
        SentenceTransformer(str(folder), device="cpu")
