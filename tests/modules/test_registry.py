"""The registry: every name list derives from it, and installed packages register their own modules (by decorator
or entry point) so that folders naming them load without trust_remote_code."""

from __future__ import annotations

import sys
import textwrap

import pytest
import torch

import embedstack.modules as modules
import embedstack.registry as registry
from embedstack import SentenceTransformer
from embedstack.errors import UntrustedCodeError
from embedstack.modules import Module, Pooling, Transformer
from embedstack.registry import ST, register_module, registered_modules, resolve_module_class, type_name_for


def test_name_lists_derive_from_the_registry():
    builtins = registered_modules(builtin_only=True)
    assert set(modules.BUILTIN_MODULE_NAMES) == set(builtins)
    for name, spec in builtins.items():
        assert getattr(modules, name) is spec.cls
        assert spec.type_name.startswith((f"{ST}.", "embedstack.modules."))
        for spelling in (spec.type_name, *spec.aliases):
            assert resolve_module_class(spelling, model_path=None, trust_remote_code=False, where="t") is spec.cls


@pytest.mark.parametrize(
    "spelling",
    [
        "sentence_transformers.models.Pooling",
        "sentence_transformers.models.Pooling.Pooling",
        "sentence_transformers.sentence_transformer.modules.Pooling",
        "sentence_transformers.sentence_transformer.modules.pooling.Pooling",
        "embedstack.modules.Pooling",
        "embedstack.modules.pooling.Pooling",
    ],
)
def test_every_spelling_of_a_builtin_resolves(spelling):
    assert resolve_module_class(spelling, model_path=None, trust_remote_code=False, where="t") is Pooling


def test_legacy_type_names_come_from_the_declaration():
    assert type_name_for(Pooling(4), legacy=True) == "sentence_transformers.models.Pooling"
    assert type_name_for(Pooling(4)) == "sentence_transformers.sentence_transformer.modules.pooling.Pooling"


@register_module("my_package.Halve")
class Halve(Module):
    """A module an installed package registers with the decorator."""

    def forward(self, features, **kwargs):
        features["sentence_embedding"] = features["sentence_embedding"] / 2
        return features

    def save(self, output_path, *args, **kwargs):
        self.save_config(output_path)


def _model_with(module, tiny_bert_path):
    return SentenceTransformer(modules=[Transformer(str(tiny_bert_path)), Pooling(32), module], device="cpu")


def test_a_package_registers_a_module_with_the_decorator(tiny_bert_path, tmp_path):
    model = _model_with(Halve(), tiny_bert_path)
    model.save(str(tmp_path / "m"))
    assert '"my_package.Halve"' in (tmp_path / "m" / "modules.json").read_text()
    loaded = SentenceTransformer(str(tmp_path / "m"), device="cpu")  # no trust_remote_code needed
    assert type(loaded[2]) is Halve
    torch.testing.assert_close(torch.as_tensor(loaded.encode(["a text"])), torch.as_tensor(model.encode(["a text"])))


def test_a_package_registers_a_module_through_an_entry_point(tiny_bert_path, tmp_path, monkeypatch):
    site = tmp_path / "site"
    (site / "doubling_pkg").mkdir(parents=True)
    (site / "doubling_pkg" / "__init__.py").write_text(
        textwrap.dedent(
            """
            from embedstack.modules import Module

            class Double(Module):
                def forward(self, features, **kwargs):
                    features["sentence_embedding"] = features["sentence_embedding"] * 2
                    return features

                def save(self, output_path, *args, **kwargs):
                    self.save_config(output_path)
            """
        )
    )
    dist = site / "doubling_pkg-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: doubling-pkg\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[embedstack.modules]\ndouble = doubling_pkg:Double\n")
    folder = tmp_path / "m"
    _model_with(Halve(), tiny_bert_path).save(str(folder))  # then point its last entry at the plug-in's type
    text = (folder / "modules.json").read_text()
    (folder / "modules.json").write_text(text.replace('"my_package.Halve"', '"doubling_pkg.Double"'))
    with pytest.raises(UntrustedCodeError):  # not installed yet: code from outside embedstack
        SentenceTransformer(str(folder), device="cpu")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setattr(registry, "_entry_points_loaded", False)
    try:
        loaded = SentenceTransformer(str(folder), device="cpu")
        assert type(loaded[2]).__module__ == "doubling_pkg" and type(loaded[2]).__name__ == "Double"
        assert type_name_for(loaded[2]) == "doubling_pkg.Double"
        plain = SentenceTransformer(modules=[loaded[0], loaded[1]], device="cpu")
        torch.testing.assert_close(
            torch.as_tensor(loaded.encode(["a text"])), 2 * torch.as_tensor(plain.encode(["a text"]))
        )
    finally:
        sys.modules.pop("doubling_pkg", None)


def test_a_type_registered_twice_for_different_classes_is_refused():
    class Other(Module):
        def forward(self, features, **kwargs):
            return features

        def save(self, output_path, *args, **kwargs):
            pass

    with pytest.raises(ValueError, match="registered twice"):
        register_module(f"{ST}.sentence_transformer.modules.pooling.Pooling")(Other)
