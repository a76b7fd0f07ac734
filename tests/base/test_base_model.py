"""BaseModel is a base a new model kind builds on: its own model_type, settings, default stack and calibration
inputs, with loading, devices, prompts, saving and the folder format shared. Checked with a small kind written
here the way CrossEncoder and SparseEncoder subclass it.
"""

import json
from collections import OrderedDict
from typing import Any

import numpy as np
import pytest

from embedstack import SentenceTransformer
from embedstack.base import BaseModel
from embedstack.modules import Pooling, Transformer


class Scorer(BaseModel):
    """A toy kind: a Transformer + CLS pooling, and a ``scale`` setting saved with the model."""

    model_type = "Scorer"

    def __init__(self, model_name_or_path: str | None = None, *, scale: float | None = None, **kwargs: Any) -> None:
        self.scale = scale
        super().__init__(model_name_or_path, **kwargs)

    @staticmethod
    def _default_stack(folder, options):
        transformer = Transformer.load(str(folder), **options.load_kwargs())
        return OrderedDict([("0", transformer), ("1", Pooling(transformer.get_embedding_dimension(), "cls"))])

    def _apply_saved_config(self, config, prompt_table):
        super()._apply_saved_config(config, prompt_table)
        if self.scale is None:
            self.scale = config.get("scale", 1.0)

    def _saved_settings(self):
        return {"scale": self.scale}

    def calibration_inputs(self, texts):
        return [f"scored: {text}" for text in texts]


def test_a_kind_builds_from_a_plain_folder_with_its_own_default_stack(tiny_bert_path):
    model = Scorer(str(tiny_bert_path), device="cpu")
    assert [type(module).__name__ for module in model] == ["Transformer", "Pooling"]
    assert model[1].get_config_dict()["pooling_mode"] == "cls"
    assert model.scale == 1.0 and model.prompts == {"query": "", "document": ""}


def test_a_kind_saves_its_type_and_settings_and_loads_them_back(tiny_bert_path, tmp_path):
    model = Scorer(str(tiny_bert_path), device="cpu", scale=2.5, prompts={"query": "q: "})
    model.save(tmp_path / "scorer")
    config = json.loads((tmp_path / "scorer" / "config_sentence_transformers.json").read_text())
    assert config["model_type"] == "Scorer" and config["scale"] == 2.5 and config["prompts"]["query"] == "q: "
    assert "similarity_fn_name" not in config  # a SentenceTransformer setting, not every kind's
    again = Scorer(str(tmp_path / "scorer"), device="cpu")
    assert again.scale == 2.5 and again.prompts["query"] == "q: "
    assert again._resolve_prompt(None, None, task="query") == "q: "


def test_a_folder_of_another_kind_gets_the_default_stack_and_none_of_its_settings(stack_folder, caplog):
    sentence_transformer = SentenceTransformer(str(stack_folder), device="cpu")
    assert len(sentence_transformer) == 4  # Transformer, Pooling, Dense, Normalize
    scorer = Scorer(str(stack_folder), device="cpu")
    assert [type(module).__name__ for module in scorer] == ["Transformer", "Pooling"]
    assert "Converting the SentenceTransformer model" in caplog.text


def test_the_int8_self_check_runs_the_kinds_calibration_inputs(tiny_bert_path):
    pytest.importorskip("onnxruntime")
    model = Scorer(str(tiny_bert_path), device="cpu")
    encode_with = model._calibration_encoder(["a cat", "a dog"])
    vectors = encode_with(model[0])
    assert vectors.shape == (2, model[0].get_embedding_dimension())
    direct = model.preprocess(["scored: a cat", "scored: a dog"])
    assert np.allclose(vectors, model(direct)["sentence_embedding"].detach().numpy(), atol=1e-6)
