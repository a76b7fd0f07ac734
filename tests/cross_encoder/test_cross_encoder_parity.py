"""CrossEncoder both ways with sentence-transformers 6.2, computed in the same run: folders the reference saves (1
and 3 labels) score the same here, what embedstack saves scores the same there, plain Hugging Face classifiers and
the folders of older releases (activation in config.json) load the same way in both, and a custom module after the
classifier head is saved and loaded by its type name in both."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from sentence_transformers import CrossEncoder as Reference

from embedstack import CrossEncoder
from embedstack.modules import Transformer
from helpers import tiny_cross_encoder

PAIRS = [
    ("How many people live in Berlin?", "Berlin had a population of 3,520,031 registered inhabitants."),
    ("How many people live in Berlin?", "Berlin is well known for its museums."),
    ("A man is eating food.", "A man is eating a piece of bread."),
    ("A man is eating food.", "The girl is carrying a baby."),
    ("short", "a much longer second text of the pair, so the pairs of this batch differ in length " * 3),
    ("A man is eating food.", "A man is eating a piece of bread."),  # a duplicate: computed once here
    ("", "an empty query"),
]
QUERY = "Who wrote 'To Kill a Mockingbird'?"
DOCUMENTS = [
    "'To Kill a Mockingbird' is a novel by Harper Lee published in 1960.",
    "The novel 'Moby-Dick' was written by Herman Melville and first published in 1851.",
    "Harper Lee, an American novelist, was born in 1926 in Monroeville, Alabama.",
    "Jane Austen was an English novelist known primarily for her six major novels.",
    "The 'Harry Potter' series consists of seven fantasy novels written by J.K. Rowling.",
]


@pytest.fixture(scope="module")
def three_label_path(tmp_path_factory):
    return tiny_cross_encoder(tmp_path_factory.mktemp("three-labels"), num_labels=3, seed=1)


@pytest.fixture(scope="module")
def reference_saved(tmp_path_factory, cross_encoder_path, three_label_path):
    """The tiny classifiers (1 and 3 labels) loaded and saved by sentence-transformers 6.2."""
    folders = {}
    for labels, source in ((1, cross_encoder_path), (3, three_label_path)):
        folder = tmp_path_factory.mktemp(f"reference-saved-{labels}") / "model"
        Reference(str(source), device="cpu").save(str(folder))
        folders[labels] = folder
    return folders


@pytest.mark.parametrize("labels", [1, 3])
def test_folders_the_reference_saves_score_the_same(reference_saved, labels):
    folder = reference_saved[labels]
    reference, ours = Reference(str(folder), device="cpu"), CrossEncoder(str(folder), device="cpu")
    theirs, mine = reference.predict(PAIRS), ours.predict(PAIRS)
    assert mine.shape == theirs.shape == ((len(PAIRS),) if labels == 1 else (len(PAIRS), 3))
    assert np.abs(mine - theirs).max() <= 1e-5
    assert ours.num_labels == reference.num_labels == labels
    assert type(ours.activation_fn) is type(reference.activation_fn)
    assert np.abs(ours.predict(PAIRS, apply_softmax=True) - reference.predict(PAIRS, apply_softmax=True)).max() <= 1e-5
    single_theirs, single_mine = reference.predict(PAIRS[0]), ours.predict(PAIRS[0])
    assert np.shape(single_mine) == np.shape(single_theirs)
    assert np.abs(single_mine - single_theirs).max() <= 1e-5


def test_rank_gives_the_reference_order_and_scores(reference_saved):
    folder = reference_saved[1]
    reference, ours = Reference(str(folder), device="cpu"), CrossEncoder(str(folder), device="cpu")
    theirs = reference.rank(QUERY, DOCUMENTS, return_documents=True)
    mine = ours.rank(QUERY, DOCUMENTS, return_documents=True)
    assert [hit["corpus_id"] for hit in mine] == [hit["corpus_id"] for hit in theirs]
    assert [hit["text"] for hit in mine] == [hit["text"] for hit in theirs]
    assert np.allclose([hit["score"] for hit in mine], [hit["score"] for hit in theirs], atol=1e-5)
    scores = [hit["score"] for hit in mine]
    assert scores == sorted(scores, reverse=True) and max(scores) - min(scores) > 1e-3  # a ranking, not ties
    top = ours.rank(QUERY, DOCUMENTS, top_k=2)
    assert top == [{"corpus_id": hit["corpus_id"], "score": hit["score"]} for hit in mine[:2]]


def test_rank_refuses_a_model_with_several_labels(reference_saved):
    with pytest.raises(ValueError, match="num_labels=3"):
        CrossEncoder(str(reference_saved[3]), device="cpu").rank(QUERY, DOCUMENTS)


@pytest.mark.parametrize("labels", [1, 3])
def test_what_embedstack_saves_the_reference_loads_with_the_same_scores(
    cross_encoder_path, three_label_path, tmp_path, labels
):
    ours = CrossEncoder(str(cross_encoder_path if labels == 1 else three_label_path), device="cpu")
    ours.save(str(tmp_path / "saved"))
    config = json.loads((tmp_path / "saved" / "config_sentence_transformers.json").read_text())
    assert config["model_type"] == "CrossEncoder"
    expected = "torch.nn.modules.activation.Sigmoid" if labels == 1 else "torch.nn.modules.linear.Identity"
    assert config["activation_fn"] == expected
    module_config = json.loads((tmp_path / "saved" / "sentence_bert_config.json").read_text())
    assert module_config["transformer_task"] == "sequence-classification"
    assert module_config["module_output_name"] == "scores"
    reference = Reference(str(tmp_path / "saved"), device="cpu")
    assert np.abs(reference.predict(PAIRS) - ours.predict(PAIRS)).max() <= 1e-5
    again = CrossEncoder(str(tmp_path / "saved"), device="cpu")
    assert np.abs(again.predict(PAIRS) - ours.predict(PAIRS)).max() <= 1e-6


def test_a_plain_hugging_face_classifier_loads_the_same_way_in_both(cross_encoder_path, three_label_path):
    for folder in (cross_encoder_path, three_label_path):
        reference, ours = Reference(str(folder), device="cpu"), CrossEncoder(str(folder), device="cpu")
        assert [type(module).__name__ for module in ours] == ["Transformer"]
        assert ours[0].transformer_task == "sequence-classification"
        assert np.abs(reference.predict(PAIRS) - ours.predict(PAIRS)).max() <= 1e-5


def test_a_bare_backbone_gets_a_one_label_head_as_in_the_reference(tiny_bert_path):
    reference, ours = Reference(str(tiny_bert_path), device="cpu"), CrossEncoder(str(tiny_bert_path), device="cpu")
    assert ours.num_labels == reference.num_labels == 1
    assert ours.predict(PAIRS).shape == reference.predict(PAIRS).shape == (len(PAIRS),)  # the new head is random


@pytest.mark.parametrize(
    "legacy_key",
    [
        {"sentence_transformers": {"activation_fn": "torch.nn.modules.linear.Identity", "version": "4.1.0"}},
        {"sbert_ce_default_activation_function": "torch.nn.modules.linear.Identity"},
    ],
    ids=["4.x-5.x", "before-4.0"],
)
def test_older_folders_keep_the_activation_they_saved_in_config_json(cross_encoder_path, tmp_path, legacy_key):
    folder = tmp_path / "old"
    shutil.copytree(cross_encoder_path, folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, **legacy_key}))
    reference, ours = Reference(str(folder), device="cpu"), CrossEncoder(str(folder), device="cpu")
    assert type(ours.activation_fn) is type(reference.activation_fn) is torch.nn.Identity
    theirs, mine = reference.predict(PAIRS), ours.predict(PAIRS)
    assert np.abs(mine - theirs).max() <= 1e-5 and (mine > 1).any()  # raw logits, not sigmoid scores


def test_an_untrusted_activation_path_is_not_imported(cross_encoder_path, tmp_path, caplog):
    folder = tmp_path / "foreign"
    CrossEncoder(str(cross_encoder_path), device="cpu").save(str(folder))
    config_file = folder / "config_sentence_transformers.json"
    config = json.loads(config_file.read_text())
    config_file.write_text(json.dumps({**config, "activation_fn": "os.getcwd"}))
    model = CrossEncoder(str(folder), device="cpu")
    assert isinstance(model.activation_fn, torch.nn.Sigmoid) and "not a torch class" in caplog.text


def test_an_explicit_activation_and_the_legacy_arguments(cross_encoder_path):
    model = CrossEncoder(str(cross_encoder_path), device="cpu", activation_fn=torch.nn.Identity(), max_length=16)
    reference = Reference(str(cross_encoder_path), device="cpu", activation_fn=torch.nn.Identity(), max_length=16)
    assert model.max_seq_length == reference.max_seq_length == 16
    assert np.abs(model.predict(PAIRS) - reference.predict(PAIRS)).max() <= 1e-5
    old_style = CrossEncoder(str(cross_encoder_path), 1, 16, device="cpu", default_activation_function=torch.nn.Tanh())
    assert isinstance(old_style.activation_fn, torch.nn.Tanh) and old_style.max_seq_length == 16
    assert np.abs(old_style.predict(PAIRS) - np.tanh(model.predict(PAIRS))).max() <= 1e-5
    renamed = model.predict(sentences=PAIRS, activation_fct=torch.nn.Sigmoid())
    assert np.abs(renamed - reference.predict(PAIRS, activation_fn=torch.nn.Sigmoid())).max() <= 1e-5


def test_a_custom_module_after_the_head_is_saved_and_loaded_by_type_name_in_both(cross_encoder_path, tmp_path):
    """As in the seed's custom-module example: the module's code lives in the model folder and loads with
    trust_remote_code=True."""
    code = """import torch
from sentence_transformers.base.modules import Module


class ScoreShift(Module):
    config_keys = ["shift"]

    def __init__(self, shift: float = 0.0) -> None:
        super().__init__()
        self.shift = shift

    def forward(self, features, **kwargs):
        features["scores"] = features["scores"] * 2.0 + self.shift
        return features

    def save(self, output_path, *args, safe_serialization=True, **kwargs):
        self.save_config(output_path)
"""
    folder = tmp_path / "custom"
    CrossEncoder(str(cross_encoder_path), device="cpu").save(str(folder))
    (folder / "score_shift.py").write_text(code)
    (folder / "1_ScoreShift").mkdir()
    (folder / "1_ScoreShift" / "config.json").write_text(json.dumps({"shift": -1.5}))
    modules = json.loads((folder / "modules.json").read_text())
    modules.append({"idx": 1, "name": "1", "path": "1_ScoreShift", "type": "score_shift.ScoreShift"})
    (folder / "modules.json").write_text(json.dumps(modules))

    plain = CrossEncoder(str(cross_encoder_path), device="cpu", activation_fn=torch.nn.Identity()).predict(PAIRS)
    ours = CrossEncoder(str(folder), device="cpu", trust_remote_code=True, activation_fn=torch.nn.Identity())
    reference = Reference(str(folder), device="cpu", trust_remote_code=True, activation_fn=torch.nn.Identity())
    assert np.abs(ours.predict(PAIRS) - (plain * 2.0 - 1.5)).max() <= 1e-5
    assert np.abs(ours.predict(PAIRS) - reference.predict(PAIRS)).max() <= 1e-5
    ours.save(str(tmp_path / "resaved"))
    again = Reference(
        str(tmp_path / "resaved"), device="cpu", trust_remote_code=True, activation_fn=torch.nn.Identity()
    )
    assert np.abs(again.predict(PAIRS) - reference.predict(PAIRS)).max() <= 1e-5


def test_a_stack_built_in_code_saves_and_loads(cross_encoder_path, tmp_path):
    built = CrossEncoder(modules=[Transformer(str(cross_encoder_path), transformer_task="sequence-classification")])
    loaded = CrossEncoder(str(cross_encoder_path), device="cpu")
    assert np.abs(built.predict(PAIRS) - loaded.predict(PAIRS)).max() <= 1e-6
    built.save(str(tmp_path / "built"))
    assert np.abs(Reference(str(tmp_path / "built"), device="cpu").predict(PAIRS) - loaded.predict(PAIRS)).max() <= 1e-5


def test_an_embedding_model_folder_becomes_a_classifier_on_its_backbone_as_in_the_reference(stack_folder, caplog):
    ours, reference = CrossEncoder(str(stack_folder), device="cpu"), Reference(str(stack_folder), device="cpu")
    assert "Converting the SentenceTransformer model" in caplog.text
    assert [type(module).__name__ for module in ours] == [type(module).__name__ for module in reference]
    assert ours[0].transformer_task == "sequence-classification" and ours.num_labels == reference.num_labels == 1
    assert ours.predict(PAIRS).shape == reference.predict(PAIRS).shape == (len(PAIRS),)  # the new head is random
