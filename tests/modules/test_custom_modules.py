"""Custom modules written against the seed's contract: input modules with modalities, the modality check before
preprocess, the deprecated tokenize bridged both ways, and plain nn.Module modules with an old-style load(path)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

from embedstack import SentenceTransformer
from embedstack.errors import UnsupportedModalityError
from embedstack.modules import InputModule, Module, Normalize


class ToyMultimodal(InputModule):
    """Text -> character histogram; an image array (with text) -> its mean pixel appended. 4-wide output."""

    config_keys: list[str] = ["scale"]

    def __init__(self, scale: float = 1.0, **kwargs) -> None:
        super().__init__()
        self.scale = scale
        self.calls: list[tuple] = []

    @property
    def modalities(self):
        return ["text", ("image", "text")]

    def preprocess(self, inputs, prompt=None, **kwargs):
        self.calls.append((len(inputs), prompt))
        rows, modality = [], "text"
        for item in inputs:
            text = item["text"] if isinstance(item, dict) else item
            text = (prompt or "") + text
            pixel = float(np.mean(item["image"])) if isinstance(item, dict) else 0.0
            modality = ("image", "text") if isinstance(item, dict) else "text"
            rows.append([len(text), text.count("a"), text.count(" "), pixel])
        return {"values": torch.tensor(rows, dtype=torch.float32), "modality": modality}

    def forward(self, features, **kwargs):
        offset = 100.0 if features["modality"] == ("image", "text") else 0.0
        features["sentence_embedding"] = features["values"] * self.scale + offset
        return features

    def get_embedding_dimension(self) -> int:
        return 4

    def save(self, output_path, *args, safe_serialization=True, **kwargs) -> None:
        self.save_config(output_path)


class OldTokenizeOnly(InputModule):
    """A module written against the deprecated API: tokenize() and no preprocess()."""

    def tokenize(self, texts, **kwargs):
        return {"values": torch.tensor([[float(len(t)), float(t.count("x"))] for t in texts])}

    def forward(self, features, **kwargs):
        features["sentence_embedding"] = features["values"]
        return features

    def save(self, output_path, *args, **kwargs) -> None:
        pass


class PlainScale(torch.nn.Module):
    """A pre-Module custom module: a plain nn.Module with save(path) and a static load(path)."""

    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, features):
        features["sentence_embedding"] = features["sentence_embedding"] * self.factor
        return features

    def save(self, path: str) -> None:
        with open(f"{path}/scale.json", "w") as handle:
            json.dump({"factor": self.factor}, handle)

    @staticmethod
    def load(path: str) -> PlainScale:
        with open(f"{path}/scale.json") as handle:
            return PlainScale(**json.load(handle))


def test_input_module_with_compound_modality_and_prompt():
    module = ToyMultimodal(scale=2.0)
    model = SentenceTransformer(modules=[module], device="cpu")
    assert model.modalities == ["text", ("image", "text")] and model.supports(("text", "image"))
    image = np.full((4, 4, 3), 0.5)
    texts = model.encode(["a banana", "aaa"], prompt="q: ")
    np.testing.assert_allclose(texts[0], [2 * 11, 2 * 4, 2 * 2, 0])
    both = model.encode([{"text": "a cat", "image": image}])
    np.testing.assert_allclose(both[0], [2 * 5 + 100, 2 * 2 + 100, 2 * 1 + 100, 2 * 0.5 + 100])
    assert module.calls[0] == (2, "q: ")


def test_unsupported_modality_is_refused_before_preprocess():
    module = ToyMultimodal()
    model = SentenceTransformer(modules=[module], device="cpu")
    with pytest.raises(UnsupportedModalityError, match=r"cannot take 'image' inputs; it takes text, image\+text"):
        model.encode([np.zeros((4, 4, 3))])
    with pytest.raises(UnsupportedModalityError, match=r"'message' inputs \(a mix of image, text\)"):
        model.encode(["a text", np.zeros((4, 4, 3))])
    with pytest.raises(UnsupportedModalityError, match="cannot take 'audio'"):
        model.preprocess([np.zeros(16000)])
    assert module.calls == []


def test_deprecated_tokenize_is_bridged_both_ways():
    old = SentenceTransformer(modules=[OldTokenizeOnly()], device="cpu")
    np.testing.assert_allclose(old.encode(["xx", "abc"], prompt="x"), [[3, 3], [4, 1]])
    new = ToyMultimodal()
    with pytest.warns(DeprecationWarning, match="tokenize"):
        features = new.tokenize(["a a"])
    np.testing.assert_allclose(features["values"], [[3, 2, 1, 0]])
    with pytest.warns(FutureWarning, match="tokenize"):
        SentenceTransformer(modules=[new], device="cpu").tokenize(["a"])


def test_plain_nn_module_with_old_style_load_round_trips(tmp_path, tiny_bert_path):
    from embedstack.modules import Pooling, Transformer

    model = SentenceTransformer(
        modules=[Transformer(str(tiny_bert_path)), Pooling(32), PlainScale(3.0), Normalize()], device="cpu"
    )
    expected = model.encode(["plain modules", "still work"])
    model.save(str(tmp_path / "m"))
    entry = json.loads((tmp_path / "m" / "modules.json").read_text())[2]
    assert entry["type"].endswith("test_custom_modules.PlainScale")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no deprecation noise for a module that does nothing wrong
        loaded = SentenceTransformer(str(tmp_path / "m"), device="cpu", trust_remote_code=True)
    assert loaded[2].factor == 3.0
    np.testing.assert_allclose(loaded.encode(["plain modules", "still work"]), expected, atol=1e-6)


def test_module_kwargs_default_load_and_init_defaults(tmp_path):
    module = ToyMultimodal(scale=0.5)
    module.save(str(tmp_path))
    assert json.loads((tmp_path / "config.json").read_text()) == {"scale": 0.5}
    assert ToyMultimodal.load(str(tmp_path), some_future_option=True).scale == 0.5
    (tmp_path / "config.json").unlink()
    assert ToyMultimodal.load(str(tmp_path), init_defaults={"scale": 4.0}).scale == 4.0


class WithWeights(Module):
    """The seed's 'module with weights is a few lines' promise: config + safetensors through the helpers."""

    config_keys: list[str] = ["dimension"]

    def __init__(self, dimension: int, **kwargs) -> None:
        super().__init__()
        self.dimension = dimension
        self.linear = torch.nn.Linear(dimension, dimension)

    def forward(self, features, **kwargs):
        features["sentence_embedding"] = self.linear(features["sentence_embedding"])
        return features

    def save(self, output_path, *args, safe_serialization=True, **kwargs) -> None:
        self.save_config(output_path)
        self.save_torch_weights(output_path, safe_serialization=safe_serialization)

    @classmethod
    def load(cls, model_name_or_path, subfolder="", **kwargs):
        module = super().load(model_name_or_path, subfolder=subfolder, **kwargs)
        return cls.load_torch_weights(model_name_or_path, subfolder=subfolder, model=module)


@pytest.mark.parametrize("safe", [True, False])
def test_module_with_weights_in_a_few_lines(tmp_path, safe):
    module = WithWeights(6)
    module.save(str(tmp_path), safe_serialization=safe)
    assert (tmp_path / ("model.safetensors" if safe else "pytorch_model.bin")).is_file()
    loaded = WithWeights.load(str(tmp_path))
    x = {"sentence_embedding": torch.randn(2, 6)}
    torch.testing.assert_close(loaded(dict(x))["sentence_embedding"], module(dict(x))["sentence_embedding"])


class OldConfigScale(Module):
    """The seed's way to read an older config: override load_config (its signature), call super, then a tweak."""

    config_keys: list[str] = ["factor"]

    def __init__(self, factor: float = 1.0) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, features, **kwargs):
        features["sentence_embedding"] = features["sentence_embedding"] * self.factor
        return features

    @classmethod
    def load_config(cls, model_name_or_path, subfolder="", config_filename=None, **kwargs):
        config = super().load_config(model_name_or_path, subfolder=subfolder, config_filename=config_filename)
        if "scale_percent" in config:  # the old key
            config["factor"] = config.pop("scale_percent") / 100
        return config


def test_load_config_overrides_and_the_default_save_keep_working(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"scale_percent": 250}))
    module = OldConfigScale.load(str(tmp_path))  # the default load goes through the override
    assert module.factor == 2.5
    (tmp_path / "saved").mkdir()
    module.save(str(tmp_path / "saved"))  # no save of its own: the default writes the config
    assert json.loads((tmp_path / "saved" / "config.json").read_text()) == {"factor": 2.5}
    assert OldConfigScale.load(str(tmp_path / "saved")).factor == 2.5
