"""The checks, warnings and error phrases of the Transformer, Pooling and Router modules, side by side with
sentence-transformers 6.2 in the same run: each case runs in both libraries and the reference's key phrase (what
its users and tests match on) must be in both messages. The cases are tables; a new case is one row."""

from __future__ import annotations

import json
import logging
import re
import warnings
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import transformers.utils.logging
from sentence_transformers import SentenceTransformer as Reference
from sentence_transformers.base.modules import transformer as reference_transformer_module
from sentence_transformers.base.modules.router import Router as ReferenceRouter
from sentence_transformers.base.modules.transformer import Transformer as ReferenceTransformer
from sentence_transformers.sentence_transformer.modules import Pooling as ReferencePooling
from sentence_transformers.sentence_transformer.modules import StaticEmbedding as ReferenceStatic
from tokenizers import Tokenizer

import embedstack.modules.transformer.checks as checks
from embedstack import SentenceTransformer
from embedstack.modules import Pooling, Router, StaticEmbedding, Transformer
from multimodal_backbones import tiny_chat_lm

TEXT = {"text": {"method": "forward", "method_output_name": "last_hidden_state"}}


@pytest.fixture(autouse=True)
def fresh_warning_once():
    """The reference logs some warnings once per process (transformers' warning_once): start each test afresh."""
    transformers.utils.logging.warning_once.cache_clear()


def outcome(call, caplog) -> str:
    """What ``call`` raised (its message) and logged or warned, as one text."""
    caplog.clear()
    with caplog.at_level(logging.WARNING), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            call()
            raised = ""
        except (ValueError, TypeError) as exc:
            raised = f"{type(exc).__name__}: {exc}"
    return " | ".join([raised, caplog.text, *(str(w.message) for w in caught)])


def assert_both(phrase: str, ours: str, theirs: str) -> None:
    assert phrase in theirs, f"the reference no longer says {phrase!r}: {theirs}"
    assert phrase in ours, f"ours lacks the reference's {phrase!r}: {ours}"


# ----- Transformer ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def transformers_pair(tiny_bert_path):
    return Transformer(str(tiny_bert_path)), ReferenceTransformer(str(tiny_bert_path))


CONSTRUCTION_CASES = [  # (Transformer keyword arguments, the reference's phrase); "{path}" is the tiny BERT
    ({"unpad_inputs": True}, "unpad_inputs=True was set"),
    ({"processing_kwargs": {"padding_side": {"value": "left"}}}, "Unknown keys in `processing_kwargs`"),
    ({"tokenizer_name_or_path": "{path}"}, "`tokenizer_name_or_path` argument is deprecated"),
    ({"model_args": {}}, "deprecated"),
    ({"transformer_task": "nonexistent-task"}, "Unsupported transformer_task 'nonexistent-task'"),
    ({"backend": "invalid_backend"}, "Unsupported backend 'invalid_backend'"),
    ({"modality_config": TEXT}, "requires also providing module_output_name"),
    (
        {"modality_config": {"text": {"method": "forward"}}, "module_output_name": "token_embeddings"},
        "'method' and 'method_output_name'",
    ),
]


@pytest.mark.parametrize(("kwargs", "phrase"), CONSTRUCTION_CASES, ids=[c[1][:40] for c in CONSTRUCTION_CASES])
def test_construction_checks_and_warnings(kwargs, phrase, tiny_bert_path, caplog):
    kwargs = {key: str(tiny_bert_path) if value == "{path}" else value for key, value in kwargs.items()}
    ours = outcome(lambda: Transformer(str(tiny_bert_path), **kwargs), caplog)
    theirs = outcome(lambda: ReferenceTransformer(str(tiny_bert_path), **kwargs), caplog)
    assert_both(phrase, ours, theirs)


def test_a_plain_construction_warns_about_none_of_them(tiny_bert_path, caplog):
    text = outcome(lambda: Transformer(str(tiny_bert_path), model_kwargs={}, processing_kwargs={"text": {}}), caplog)
    assert not any(phrase in text for _, phrase in CONSTRUCTION_CASES)


def test_unpad_inputs_warns_on_every_assignment(transformers_pair, caplog):
    ours, theirs = transformers_pair
    for module in (ours, theirs):
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            module.unpad_inputs = True
        assert "unpad_inputs=True was set" in caplog.text and module.can_flatten_inputs is False
        module.unpad_inputs = None


IMAGE = np.zeros((8, 8, 3), dtype=np.uint8)
CALL_CASES = [  # (what the module is given, the reference's phrase)
    ("per-call section", "Unknown keys in per-call `processing_kwargs`"),
    ("image", "Modality 'image' is not supported by this Transformer module. Supported modalities: text"),
    ("text and image", "mixes multiple modalities (image, text), but this Transformer module does not support image"),
    ("conversation", "does not support chat-style 'message' inputs"),
    ("missing method", "Model does not have the requested 'nonexistent_method' method"),
    ("unknown processor", "Could not determine modalities from processor of type object"),
]


def run_call(module, case: str):
    if case == "per-call section":
        return module.preprocess(["a text"], processing_kwargs={"bogus": {"max_length": 2}})
    if case == "unknown processor":
        return module.infer_modalities_from_processor(object())
    if case == "missing method":
        features = module.preprocess(["a text"])
        module.modality_config["text"]["method"] = "nonexistent_method"
        try:
            return module.forward(features)
        finally:
            module.modality_config["text"]["method"] = "forward"
    inputs = {"image": [IMAGE], "text and image": ["a text", IMAGE]}.get(case, [[{"role": "user", "content": "hi"}]])
    return module.preprocess(inputs)


@pytest.mark.parametrize(("case", "phrase"), CALL_CASES, ids=[c[0] for c in CALL_CASES])
def test_per_call_checks(case, phrase, transformers_pair, caplog):
    ours, theirs = transformers_pair
    assert_both(phrase, outcome(lambda: run_call(ours, case), caplog), outcome(lambda: run_call(theirs, case), caplog))


@pytest.mark.parametrize(("flag", "value", "minimum"), [("is_causal", False, "5.2.0")])
@pytest.mark.parametrize("where", ["config", "sub-config", "absent"])
def test_attention_settings_an_older_transformers_ignores(flag, value, minimum, where, monkeypatch, caplog):
    monkeypatch.setattr(reference_transformer_module, "_TRANSFORMERS_SUPPORTS_IS_CAUSAL_FALSE", False)
    sub = SimpleNamespace(**({flag: value} if where == "sub-config" else {}))
    config = SimpleNamespace(sub_configs={"text_config": None}, text_config=sub)
    if where == "config":
        setattr(config, flag, value)
    with monkeypatch.context() as patched:  # the reference only checks PretrainedConfig sub-configs
        patched.setattr(reference_transformer_module, "PretrainedConfig", SimpleNamespace)
        theirs = outcome(lambda: ReferenceTransformer._warn_on_unsupported_attention_config(config), caplog)
    ours = outcome(lambda: checks.warn_unsupported_attention(config, "5.1.0"), caplog)
    phrase = f"`{flag}={value}`"
    assert (phrase in ours) is (phrase in theirs) is (where != "absent")
    assert (f"transformers>={minimum}" in ours) is (where != "absent")
    assert phrase not in outcome(lambda: checks.warn_unsupported_attention(config, minimum), caplog)


DIMENSION_CASES = [  # (the backbone's config, module_output_name, the width both libraries read)
    (SimpleNamespace(hidden_sizes=[64, 128, 256]), "token_embeddings", 256),
    (SimpleNamespace(hidden_dim=384), "token_embeddings", 384),
    (SimpleNamespace(embed_dims=[32, 96]), "token_embeddings", 96),
    (SimpleNamespace(neck_hidden_sizes=[8, 24], hidden_dim=5), "token_embeddings", 24),
    (SimpleNamespace(text_config=SimpleNamespace(hidden_size=48)), "token_embeddings", 48),
    (
        SimpleNamespace(sub_configs={"vision_config": 0}, vision_config=SimpleNamespace(hidden_size=40)),
        "token_embeddings",
        40,
    ),
    (SimpleNamespace(projection_dim=16, hidden_size=32), "sentence_embedding", 16),
    (SimpleNamespace(projection_dim=16, hidden_size=32), "token_embeddings", 32),
    (SimpleNamespace(model_type="mystery"), "token_embeddings", "Could not determine embedding dimension"),
]


@pytest.mark.parametrize(("config", "output", "expected"), DIMENSION_CASES)
def test_embedding_dimension_is_read_as_the_reference_reads_it(config, output, expected, transformers_pair, caplog):
    results = []
    for module in transformers_pair:
        with pytest.MonkeyPatch.context() as patched:
            patched.setattr(module.model, "config", config)
            patched.setattr(module, "module_output_name", output)
            try:
                results.append(module.get_embedding_dimension())
            except ValueError as exc:
                results.append(str(exc))
    if isinstance(expected, int):
        assert results == [expected, expected]
    else:
        assert_both(expected, *results)


# ----- modality_config keys in a saved config ---------------------------------------------------------------
def test_load_config_restores_compound_keys_and_drops_unknown_ones(tiny_bert_path, tmp_path, caplog):
    Transformer(str(tiny_bert_path)).save(str(tmp_path))
    file = tmp_path / "sentence_bert_config.json"
    config = json.loads(file.read_text())
    extra = {"method": "forward", "method_output_name": "last_hidden_state"}
    config["modality_config"].update({"image+text": extra, "smell": extra, "image+smell": extra})
    file.write_text(json.dumps(config))
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        ours = Transformer.load_config(str(tmp_path))["modality_config"]
    theirs = ReferenceTransformer.load_config(str(tmp_path))["modality_config"]
    assert ours == theirs and list(ours) == ["text", ("image", "text")]
    assert re.search(r"Ignoring unknown modality key 'smell'.*\n.*'image\+smell'", caplog.text)


def test_a_folder_saved_before_modalities_stays_text_only(tmp_path, caplog):
    """sentence-transformers < 6 wrote no modality_config: the module was text-only then, so a backbone whose
    tokenizer has a chat template is still run on plain text (inferring 'message' would change every vector)."""
    folder = tiny_chat_lm(tmp_path / "lm")
    (folder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 64, "do_lower_case": False}))
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(
        json.dumps({"word_embedding_dimension": 32, "pooling_mode_lasttoken": True})
    )
    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"}]
    modules.append({"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"})
    (folder / "modules.json").write_text(json.dumps(modules))
    ours_config, theirs_config = Transformer.load_config(str(folder)), ReferenceTransformer.load_config(str(folder))
    for key in ("modality_config", "module_output_name"):
        assert ours_config[key] == theirs_config[key]
    ours, theirs = SentenceTransformer(str(folder), device="cpu"), Reference(str(folder), device="cpu")
    assert ours[0].modality_config == theirs[0].modality_config == TEXT
    texts = ["a short text", "and a second, longer one"]
    np.testing.assert_allclose(ours.encode(texts), theirs.encode(texts), atol=1e-5)


# ----- Pooling ----------------------------------------------------------------------------------------------
POOLING_CASES = [  # (Pooling keyword arguments, the reference's phrase)
    ({"embedding_dimension": 8, "pooling_mode": "median"}, "Invalid pooling mode"),
    ({"embedding_dimension": 8, "pooling_mode_cls_token": True}, "`pooling_mode_cls_token` argument(s) are deprecated"),
    ({"embedding_dimension": 8, "pooling_mode_mean_tokens": False}, "`pooling_mode_mean_tokens` argument(s)"),
    ({"word_embedding_dimension": 8}, "`word_embedding_dimension` argument was renamed"),
]


@pytest.mark.parametrize(("kwargs", "phrase"), POOLING_CASES, ids=[c[1][:30] for c in POOLING_CASES])
def test_pooling_checks_and_warnings(kwargs, phrase, caplog):
    assert_both(phrase, outcome(lambda: Pooling(**kwargs), caplog), outcome(lambda: ReferencePooling(**kwargs), caplog))
    if "median" not in str(kwargs):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            ours, theirs = Pooling(**kwargs), ReferencePooling(**kwargs)
        assert (ours.pooling_mode, ours.get_embedding_dimension()) == (theirs.pooling_mode, theirs.embedding_dimension)


# ----- Router -----------------------------------------------------------------------------------------------
class NoLength(torch.nn.Module):
    """A routed module without max_seq_length."""

    def forward(self, features, **kwargs):
        return features


def routers(tiny_bert_path, **kwargs):
    """An embedstack and a reference Router over static embeddings 8 and 16 wide ("query" and "document")."""
    tokenizer = Tokenizer.from_file(str(tiny_bert_path / "tokenizer.json"))
    built = []
    for router, static in ((Router, StaticEmbedding), (ReferenceRouter, ReferenceStatic)):
        routes = {"query": [static(tokenizer, embedding_dim=8)], "document": [static(tokenizer, embedding_dim=16)]}
        built.append(router(routes, **kwargs).eval())
    return built


ROUTER_CASES = [  # (Router arguments, what is done with it, the reference's phrase)
    ({"sub_modules": {}}, None, "The sub_modules dictionary cannot be empty"),
    ({"default_route": "invalid"}, None, "Default route 'invalid' not found in route keys"),
    (
        {"route_mappings": {("query", "text"): "nonexistent"}},
        None,
        "route_mappings contains mapping to 'nonexistent' which is not in sub_modules",
    ),
    ({}, "task=invalid", "No route found for task type 'invalid'. Available routes: task='query' and task='document'"),
    (
        {"allow_empty_key": False},
        "no task",
        "Could not determine route for task=None, modality='text'. Available routes: task='query' and task='document'",
    ),
    ({}, "mixed task keys", "You cannot pass a list of dictionaries with different task types"),
    ({}, "dimension", "Different embedding dimensions detected across routes"),
    ({}, "lengths", "Different max_seq_lengths detected"),
    ({}, "set length", "No modules have a max_seq_length attribute to set"),
]


def use_router(router_class, router, action: str | None, tiny_bert_path):
    if action == "task=invalid":
        router.preprocess(["a text"], task="invalid")
    elif action == "no task":
        router.preprocess(["a text"])
    elif action == "mixed task keys":
        router.preprocess([{"query": "a"}, {"document": "b"}])
    elif action == "dimension":
        router.get_embedding_dimension()
    elif action == "lengths":
        transformer = Transformer if router_class is Router else ReferenceTransformer
        short, long = transformer(str(tiny_bert_path), max_seq_length=16), transformer(str(tiny_bert_path))
        assert router_class({"query": [short], "document": [long]}).max_seq_length == long.max_seq_length
    elif action == "set length":
        router_class({"only": [NoLength()]}).max_seq_length = 64


@pytest.mark.parametrize(("kwargs", "action", "phrase"), ROUTER_CASES, ids=[c[2][:40] for c in ROUTER_CASES])
def test_router_checks_and_warnings(kwargs, action, phrase, tiny_bert_path, caplog):
    if "sub_modules" in kwargs or action is None:
        texts = [
            outcome(
                lambda cls=cls: cls(kwargs.get("sub_modules", {"query": [NoLength()]}), **kwargs_of(kwargs)), caplog
            )
            for cls in (Router, ReferenceRouter)
        ]
    else:
        pair = routers(tiny_bert_path, **kwargs)
        texts = [
            outcome(lambda cls=cls, r=r: use_router(cls, r, action, tiny_bert_path), caplog)
            for cls, r in zip((Router, ReferenceRouter), pair)
        ]
    assert_both(phrase, *texts)


def kwargs_of(kwargs: dict) -> dict:
    return {key: value for key, value in kwargs.items() if key != "sub_modules"}


def test_router_forward_kwargs_are_a_class_attribute(tiny_bert_path):
    assert Router.forward_kwargs == ReferenceRouter.forward_kwargs == {"task", "modality"}
    router, _ = routers(tiny_bert_path)
    assert {"task", "modality"} <= router.forward_kwargs
    router.forward_kwargs.add("extra")  # an instance's set is its own
    assert Router.forward_kwargs == {"task", "modality"}
