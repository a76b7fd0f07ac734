"""SparseEncoder both ways with sentence-transformers 6.2, computed in the same run: tiny MLMs saved by the reference
(max and sum pooling, relu and log1p_relu) give the same sparse vectors, decode tokens and similarities here; what
embedstack saves, the reference loads with the same vectors; the options (max_active_dims, output types, prompts)
behave as the reference's."""

from __future__ import annotations

import json
import warnings

import pytest
import torch
from sentence_transformers import SparseEncoder as Reference
from sentence_transformers.sparse_encoder.modules import SpladePooling as ReferencePooling

from embedstack import SparseEncoder
from embedstack.modules import Transformer
from embedstack.modules.splade_pooling import SpladePooling

TEXTS = [
    "The weather is lovely today.",
    "It's so sunny outside!",
    "He drove to the stadium.",
    "a",
    "A much longer text, so that the texts of one batch differ in length and padding is left out. " * 3,
    "It's so sunny outside!",  # a duplicate: computed once here
]


def dense(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.to_dense() if tensor.is_sparse else tensor


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((dense(a) - dense(b)).abs().max())


def same_decoding(ours: list, theirs: list) -> bool:
    """The same tokens in the same order, with weights equal up to float rounding."""
    return [token for token, _ in ours] == [token for token, _ in theirs] and all(
        abs(a - b) <= 1e-5 for (_, a), (_, b) in zip(ours, theirs)
    )


@pytest.fixture(scope="module", params=[("max", "relu"), ("sum", "relu"), ("max", "log1p_relu"), ("sum", "log1p_relu")])
def reference_saved(request, mlm_path, tmp_path_factory):
    """A SparseEncoder built and saved by the reference on the tiny MLM, with each pooling and activation."""
    from sentence_transformers.base.modules import Transformer as ReferenceTransformer

    strategy, activation = request.param
    folder = tmp_path_factory.mktemp(f"reference-{strategy}-{activation}") / "model"
    modules = [
        ReferenceTransformer(str(mlm_path), transformer_task="fill-mask"),
        ReferencePooling(strategy, activation),
    ]
    Reference(modules=modules, device="cpu").save(str(folder))
    return folder


def test_folders_the_reference_saves_give_the_same_vectors(reference_saved):
    reference, ours = Reference(str(reference_saved), device="cpu"), SparseEncoder(str(reference_saved), device="cpu")
    theirs, mine = reference.encode(TEXTS), ours.encode(TEXTS)
    assert mine.is_sparse and mine.shape == theirs.shape == (len(TEXTS), 30522)
    assert max_diff(mine, theirs) <= 1e-5
    assert same_decoding(ours.decode(mine[0], top_k=8), reference.decode(theirs[0], top_k=8))
    # dot products of ~20,000 weights each (the random MLM is far from sparse): equal up to float rounding
    assert torch.allclose(ours.similarity(mine, mine), reference.similarity(theirs, theirs), rtol=1e-5)
    assert ours.sparsity(mine) == pytest.approx(reference.sparsity(theirs))
    assert ours.similarity_fn_name == reference.similarity_fn_name == "dot"


def test_max_active_dims_keeps_the_same_weights(reference_saved):
    reference, ours = Reference(str(reference_saved), device="cpu"), SparseEncoder(str(reference_saved), device="cpu")
    theirs, mine = reference.encode(TEXTS, max_active_dims=16), ours.encode(TEXTS, max_active_dims=16)
    assert max_diff(mine, theirs) <= 1e-5
    assert ours.sparsity(mine)["active_dims"] == 16
    assert all(same_decoding(a, b) for a, b in zip(ours.decode(mine), reference.decode(theirs)))


def test_what_embedstack_saves_the_reference_loads_with_the_same_vectors(mlm_path, tmp_path):
    ours = SparseEncoder(str(mlm_path), device="cpu", max_active_dims=64)
    ours.save(str(tmp_path / "saved"))
    config = json.loads((tmp_path / "saved" / "config_sentence_transformers.json").read_text())
    assert config["model_type"] == "SparseEncoder" and config["max_active_dims"] == 64
    module_config = json.loads((tmp_path / "saved" / "sentence_bert_config.json").read_text())
    assert module_config["transformer_task"] == "fill-mask"
    reference = Reference(str(tmp_path / "saved"), device="cpu")
    assert reference.max_active_dims == 64
    assert max_diff(reference.encode(TEXTS), ours.encode(TEXTS)) <= 1e-5
    again = SparseEncoder(str(tmp_path / "saved"), device="cpu")
    assert again.max_active_dims == 64 and max_diff(again.encode(TEXTS), ours.encode(TEXTS)) == 0


def test_a_plain_mlm_folder_loads_the_same_way_in_both(mlm_path):
    reference, ours = Reference(str(mlm_path), device="cpu"), SparseEncoder(str(mlm_path), device="cpu")
    assert [type(m).__name__ for m in ours] == [type(m).__name__ for m in reference] == ["Transformer", "SpladePooling"]
    assert max_diff(ours.encode(TEXTS), reference.encode(TEXTS)) <= 1e-5
    assert ours.get_embedding_dimension() == 30522


def test_output_types_follow_the_reference(mlm_path):
    reference, ours = Reference(str(mlm_path), device="cpu"), SparseEncoder(str(mlm_path), device="cpu")
    one, theirs_one = ours.encode(TEXTS[0]), reference.encode(TEXTS[0])
    assert one.shape == theirs_one.shape == (30522,) and max_diff(one, theirs_one) <= 1e-5
    listed = ours.encode(TEXTS[:3], convert_to_tensor=False)
    assert isinstance(listed, list) and len(listed) == 3 and listed[0].shape == (30522,)
    assert not ours.encode(TEXTS[:2], convert_to_sparse_tensor=False).is_sparse
    empty, theirs_empty = ours.encode([]), reference.encode([])
    assert empty.is_sparse and theirs_empty.is_sparse and empty.numel() == theirs_empty.numel() == 0
    assert max_diff(ours.encode(TEXTS, batch_size=2), ours.encode(TEXTS)) <= 1e-5


def test_query_and_document_prompts_as_in_the_reference(mlm_path):
    prompts = {"query": "query: ", "document": "passage: "}
    reference = Reference(str(mlm_path), device="cpu", prompts=prompts)
    ours = SparseEncoder(str(mlm_path), device="cpu", prompts=prompts)
    assert max_diff(ours.encode_query(TEXTS[:3]), reference.encode_query(TEXTS[:3])) <= 1e-5
    assert max_diff(ours.encode_document(TEXTS[:3]), reference.encode_document(TEXTS[:3])) <= 1e-5
    assert max_diff(ours.encode_query(TEXTS[:3]), ours.encode(TEXTS[:3])) > 1e-3


def test_worker_processes_give_the_same_vectors(mlm_path):
    model = SparseEncoder(str(mlm_path), device="cpu")
    spread = model.encode(TEXTS, device=["cpu", "cpu"])
    assert spread.is_sparse and max_diff(spread, model.encode(TEXTS)) <= 1e-5


def test_splade_pooling_pools_in_chunks_with_the_same_result(mlm_path):
    transformer = Transformer(str(mlm_path), transformer_task="fill-mask")
    features = transformer(transformer.preprocess(TEXTS))
    whole = SpladePooling("max", chunk_size=10_000)(dict(features))["sentence_embedding"]
    for strategy in ("max", "sum"):
        reference = ReferencePooling(strategy).eval()(
            dict(features, token_embeddings=features["token_embeddings"].clone())
        )
        chunked = SpladePooling(strategy, chunk_size=3)(
            dict(features, token_embeddings=features["token_embeddings"].clone())
        )
        assert max_diff(chunked["sentence_embedding"], reference["sentence_embedding"]) <= 1e-4
    assert max_diff(whole, SpladePooling("max")(dict(features))["sentence_embedding"]) <= 1e-6


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"pooling_strategy": "mean"}, "pooling_strategy must be one of"),
        ({"activation_function": "gelu"}, "activation"),
    ],
)
def test_bad_pooling_settings_are_refused(arguments, message):
    with pytest.raises(ValueError, match=message):
        SpladePooling(**arguments)


def test_bad_max_active_dims_is_refused(mlm_path):
    with pytest.raises(ValueError, match="max_active_dims must be a positive integer"):
        SparseEncoder(str(mlm_path), device="cpu", max_active_dims=0)


def test_an_inference_free_router_model_gives_the_reference_vectors(mlm_path, tmp_path):
    """Queries through the MLM and SpladePooling, documents through SparseStaticEmbedding (inference-free SPLADE),
    routed by a Router, as the reference builds it."""
    from sentence_transformers.base.modules import Router as ReferenceRouter
    from sentence_transformers.base.modules import Transformer as ReferenceTransformer
    from sentence_transformers.sparse_encoder.modules import SparseStaticEmbedding as ReferenceStatic

    query_side = [ReferenceTransformer(str(mlm_path), transformer_task="fill-mask"), ReferencePooling("max")]
    tokenizer = query_side[0].tokenizer
    torch.manual_seed(0)
    document_side = [ReferenceStatic(tokenizer, weight=torch.rand(tokenizer.vocab_size), frozen=True)]
    router = ReferenceRouter.for_query_document(query_modules=query_side, document_modules=document_side)
    Reference(modules=[router], device="cpu").save(str(tmp_path / "router"))
    reference = Reference(str(tmp_path / "router"), device="cpu")
    ours = SparseEncoder(str(tmp_path / "router"), device="cpu")
    assert max_diff(ours.encode_query(TEXTS), reference.encode_query(TEXTS)) <= 1e-5
    assert max_diff(ours.encode_document(TEXTS), reference.encode_document(TEXTS)) <= 1e-5
    queries, documents = ours.encode_query(TEXTS[:3]), ours.encode_document(TEXTS[:3])
    theirs = reference.similarity(reference.encode_query(TEXTS[:3]), reference.encode_document(TEXTS[:3]))
    assert torch.allclose(ours.similarity(queries, documents), theirs, rtol=1e-5)


@pytest.mark.parametrize("layout", ["6.2 MLMTransformer", "5.x MLMTransformer"])
def test_deprecated_mlm_transformer_folders_load_as_fill_mask(mlm_path, tmp_path, layout, caplog):
    """SPLADE folders of sentence-transformers 5.0-5.3 name MLMTransformer and no task; 6.2 still writes that name
    for a model built with its deprecated class. Both load here as the MLM (not its bare backbone), with the
    reference's vectors, and what embedstack re-saves the reference loads again."""
    from sentence_transformers.sparse_encoder.modules import MLMTransformer as ReferenceMLMTransformer

    folder = tmp_path / "model"
    Reference(modules=[ReferenceMLMTransformer(str(mlm_path)), ReferencePooling("max")], device="cpu").save(str(folder))
    modules = json.loads((folder / "modules.json").read_text())
    assert modules[0]["type"].endswith("mlm_transformer.MLMTransformer")
    if layout.startswith("5.x"):  # what 5.x wrote: the old type name, a module config without the task
        modules[0]["type"] = "sentence_transformers.sparse_encoder.models.MLMTransformer"
        (folder / "modules.json").write_text(json.dumps(modules))
        config_file = folder / "sentence_bert_config.json"
        config_file.write_text(json.dumps({"max_seq_length": 37, "do_lower_case": False}))
    theirs = Reference(str(folder), device="cpu").encode(TEXTS)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ours = SparseEncoder(str(folder), device="cpu")
    assert not [w for w in caught if "MLMTransformer" in str(w.message)]  # loading a folder is not deprecated use
    assert "Ignoring unknown keys" not in caplog.text  # its settings are the module's own
    assert ours[0].transformer_task == "fill-mask"
    if layout.startswith("5.x"):  # the folder's settings are kept, not dropped as unknown keys
        assert ours.max_seq_length == 37 == Reference(str(folder), device="cpu").max_seq_length
    assert max_diff(ours.encode(TEXTS), theirs) <= 1e-5
    ours.save(str(tmp_path / "resaved"))
    assert max_diff(Reference(str(tmp_path / "resaved"), device="cpu").encode(TEXTS), theirs) <= 1e-5
