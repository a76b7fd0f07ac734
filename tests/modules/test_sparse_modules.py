"""SparseStaticEmbedding and SparseAutoEncoder side by side with sentence-transformers 6.2: a folder either library
saves loads in the other, and the same inputs give the same outputs (max abs diff <= 1e-6)."""

from __future__ import annotations

import json

import pytest
import torch
from sentence_transformers import SentenceTransformer as Reference
from sentence_transformers.base.modules.router import Router as ReferenceRouter
from sentence_transformers.sparse_encoder.modules import SparseAutoEncoder as ReferenceSAE
from sentence_transformers.sparse_encoder.modules import SparseStaticEmbedding as ReferenceSSE
from transformers import AutoTokenizer

from embedstack import SentenceTransformer
from embedstack.errors import ModelFormatError, ModelNotFoundError
from embedstack.modules import Pooling, Router, SparseAutoEncoder, SparseStaticEmbedding, Transformer
from embedstack.modules.module_io import LoadOptions, load_module
from embedstack.registry import ST, resolve_module_class, type_name_for

TEXTS = ["What's the weather in ny now?", "Currently New York is rainy.", "paris", "a b c d e f g h i j k l m n o p"]
SSE_TYPE = f"{ST}.sparse_encoder.modules.sparse_static_embedding.SparseStaticEmbedding"
SAE_TYPE = f"{ST}.sparse_encoder.modules.sparse_auto_encoder.SparseAutoEncoder"
SAE_OUTPUTS = [
    "sentence_embedding",
    "sentence_embedding_encoded",
    "sentence_embedding_encoded_4k",
    "auxiliary_embedding",
    "decoded_embedding_k",
    "decoded_embedding_4k",
    "decoded_embedding_aux",
    "decoded_embedding_k_pre_bias",
]


@pytest.fixture(scope="module")
def tokenizer(minilm_path):
    return AutoTokenizer.from_pretrained(str(minilm_path))


def ours_from(folder, type_name):
    return load_module(folder, "", type_name, where="test", options=LoadOptions()).eval()


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape
    return float((a.double() - b.double()).abs().max()) if a.numel() else 0.0


def run(module, texts, *, inference=True, prompt=None, **kwargs):
    features = module.preprocess(texts, prompt=prompt) if hasattr(module, "preprocess") else texts
    with torch.inference_mode() if inference else torch.no_grad():
        return module(dict(features), **kwargs)


def random_sae(cls, normalize=False):
    torch.manual_seed(0)
    sae = cls(input_dim=32, hidden_dim=128, k=8, k_aux=16, normalize=normalize, dead_threshold=3)
    with torch.no_grad():
        sae.pre_bias.normal_()
        sae.latent_bias.normal_()
        sae.stats_last_nonzero.copy_(torch.randint(0, 7, (128,)))
    return sae.eval()


def sae_inputs():
    torch.manual_seed(1)
    return {"sentence_embedding": torch.randn(5, 32)}


def assert_sae_match(ours, reference):
    with torch.inference_mode():
        kept = [m({"sentence_embedding": sae_inputs()["sentence_embedding"]}) for m in (ours, reference)]
    assert set(kept[0]) == set(kept[1]) == {"sentence_embedding"}
    assert max_diff(kept[0]["sentence_embedding"], kept[1]["sentence_embedding"]) <= 1e-6
    assert (kept[0]["sentence_embedding"] != 0).sum(dim=1).max() <= 8
    with torch.inference_mode():
        wider = [m(sae_inputs(), max_active_dims=20)["sentence_embedding"] for m in (ours, reference)]
    assert max_diff(*wider) <= 1e-6
    with torch.no_grad():  # eval mode outside inference mode: the training outputs too
        full = [m(sae_inputs()) for m in (ours, reference)]
    assert set(full[0]) == set(full[1])
    for key in SAE_OUTPUTS:
        assert max_diff(full[0][key], full[1][key]) <= 1e-6, key


@pytest.mark.parametrize("safe", [True, False])
@pytest.mark.parametrize("normalize", [False, True])
def test_sae_reference_folder_loads_here_and_back(tmp_path, normalize, safe):
    reference = random_sae(ReferenceSAE, normalize)
    (tmp_path / "ref").mkdir()
    reference.save(str(tmp_path / "ref"), safe_serialization=safe)
    ours = ours_from(tmp_path / "ref", SAE_TYPE)
    assert isinstance(ours, SparseAutoEncoder)
    assert ours.get_config_dict() == reference.get_config_dict()
    assert ours.get_embedding_dimension() == reference.get_embedding_dimension() == 128
    assert_sae_match(ours, reference)
    (tmp_path / "ours").mkdir()
    ours.save(str(tmp_path / "ours"), safe_serialization=safe)
    assert json.loads((tmp_path / "ours" / "config.json").read_text()) == reference.get_config_dict()
    back = ReferenceSAE.load(str(tmp_path / "ours")).eval()
    assert torch.equal(back.stats_last_nonzero, reference.stats_last_nonzero)
    assert_sae_match(ours, back)


def test_sse_reference_folder_loads_here(tmp_path, tokenizer):
    torch.manual_seed(0)
    reference = ReferenceSSE(tokenizer, weight=torch.rand(len(tokenizer.get_vocab())) * 5, frozen=True)
    reference.save(str(tmp_path))
    ours = ours_from(tmp_path, SSE_TYPE)
    assert isinstance(ours, SparseStaticEmbedding)
    assert ours.get_config_dict() == {"frozen": True} and not ours.weight.requires_grad
    assert ours.get_embedding_dimension() == reference.get_embedding_dimension() == 30522
    assert ours.max_seq_length == reference.max_seq_length
    assert repr(ours) == repr(reference)
    for kwargs in ({}, {"prompt": "query: "}):
        expected = run(reference, TEXTS, **kwargs)["sentence_embedding"]
        assert max_diff(run(ours, TEXTS, **kwargs)["sentence_embedding"], expected) <= 1e-6
    expected = run(reference, TEXTS, inference=False)["sentence_embedding"]
    assert max_diff(run(ours, TEXTS, inference=False)["sentence_embedding"], expected) <= 1e-6
    # through the engine: a model of this one module encodes as the module does
    encoded = SentenceTransformer(modules=[ours], device="cpu").encode(TEXTS, convert_to_tensor=True)
    assert max_diff(encoded.cpu(), run(reference, TEXTS)["sentence_embedding"]) <= 1e-6


def test_sse_folder_saved_here_loads_in_reference(tmp_path, tokenizer):
    torch.manual_seed(0)
    ours = SparseStaticEmbedding(tokenizer, weight=torch.rand(len(tokenizer.get_vocab())))
    ours.save(str(tmp_path))
    assert json.loads((tmp_path / "config.json").read_text()) == {"frozen": False}
    reference = ReferenceSSE.load(str(tmp_path))
    assert reference.weight.requires_grad and torch.equal(reference.weight, ours.weight)
    features = {"input_ids": torch.tensor([[5, 9, 5, 0]]), "attention_mask": torch.tensor([[1, 1, 1, 0]])}
    previous = torch.rand(1, 30522)  # an earlier module's sentence embedding is multiplied in
    with torch.inference_mode():
        got = ours(dict(features, sentence_embedding=previous))["sentence_embedding"]
        expected = reference(dict(features, sentence_embedding=previous))["sentence_embedding"]
    assert max_diff(got, expected) <= 1e-6
    assert max_diff(run(ours, TEXTS)["sentence_embedding"], run(reference, TEXTS)["sentence_embedding"]) <= 1e-6


def test_sse_from_json_and_config_path_match_reference(tmp_path, tokenizer):
    idf = {"weather": 3.25, "new": 1.5, "york": 2.0, "rainy": 4.125, "zzzz-not-a-token": 0.5, "[UNK]": 0.7}
    (tmp_path / "idf.json").write_text(json.dumps(idf))
    ours = SparseStaticEmbedding.from_json(str(tmp_path / "idf.json"), tokenizer, frozen=True)
    reference = ReferenceSSE.from_json(str(tmp_path / "idf.json"), tokenizer, frozen=True)
    assert torch.equal(ours.weight, reference.weight) and ours.frozen
    assert torch.equal(SparseStaticEmbedding.from_json(str(tmp_path), tokenizer).weight, reference.weight)
    folder = tmp_path / "module"
    reference.save(str(folder))
    (folder / "config.json").write_text(json.dumps({"frozen": True, "path": str(tmp_path / "idf.json")}))
    loaded = ours_from(folder, SSE_TYPE)
    assert torch.equal(loaded.weight, ReferenceSSE.load(str(folder)).weight)
    with pytest.raises(ModelNotFoundError, match="idf.json"):
        SparseStaticEmbedding.from_json(str(tmp_path / "missing.json"), tokenizer)


def test_inference_free_router_from_reference(tmp_path, tokenizer):
    torch.manual_seed(0)
    vocab = len(tokenizer.get_vocab())
    query, document = ReferenceSSE(tokenizer, torch.rand(vocab)), ReferenceSSE(tokenizer, torch.rand(vocab))
    ReferenceRouter.for_query_document([query], [document]).save(str(tmp_path))
    router = Router.load(str(tmp_path)).eval()
    for task, reference in (("query", query), ("document", document)):
        features = router.preprocess(TEXTS, task=task)
        with torch.inference_mode():
            got = router(features)["sentence_embedding"]
        assert max_diff(got, run(reference, TEXTS)["sentence_embedding"]) <= 1e-6


def test_csr_model_round_trips_between_libraries(tmp_path, tiny_bert_path):
    from sentence_transformers.base.modules.transformer import Transformer as ReferenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling as ReferencePooling

    sae = random_sae(ReferenceSAE)
    reference = Reference(modules=[ReferenceTransformer(str(tiny_bert_path)), ReferencePooling(32), sae], device="cpu")
    reference.save(str(tmp_path / "ref"))
    expected = reference.encode(TEXTS, convert_to_tensor=True)
    assert (
        max_diff(
            SentenceTransformer(str(tmp_path / "ref"), device="cpu").encode(TEXTS, convert_to_tensor=True), expected
        )
        <= 1e-5
    )
    ours = SentenceTransformer(modules=[Transformer(str(tiny_bert_path)), Pooling(32), random_sae(SparseAutoEncoder)])
    ours.save(str(tmp_path / "ours"))
    modules_json = json.loads((tmp_path / "ours" / "modules.json").read_text())
    assert modules_json[-1]["type"] == SAE_TYPE
    back = Reference(str(tmp_path / "ours"), device="cpu").encode(TEXTS, convert_to_tensor=True)
    assert max_diff(ours.encode(TEXTS, convert_to_tensor=True).cpu(), back) <= 1e-5


def test_type_names_resolve_through_the_registry(tokenizer):
    spellings = {
        SparseStaticEmbedding: [
            SSE_TYPE,
            f"{ST}.sparse_encoder.models.SparseStaticEmbedding",
            f"{ST}.sparse_encoder.modules.SparseStaticEmbedding",
        ],
        SparseAutoEncoder: [
            SAE_TYPE,
            f"{ST}.sparse_encoder.models.SparseAutoEncoder",
            f"{ST}.sparse_encoder.modules.SparseAutoEncoder",
        ],
    }
    for cls, names in spellings.items():
        for name in names:
            assert resolve_module_class(name, model_path=None, trust_remote_code=False, where="t") is cls
    # what the reference writes in modules.json: the class's module and name
    assert type_name_for(SparseStaticEmbedding(tokenizer)) == f"{ReferenceSSE.__module__}.SparseStaticEmbedding"
    assert type_name_for(SparseAutoEncoder(4, 8, k=2)) == f"{ReferenceSAE.__module__}.SparseAutoEncoder"


@pytest.mark.parametrize(
    ("config", "key"),
    [
        ({"input_dim": 32, "hidden_dim": 128, "k": "8"}, "k"),
        ({"input_dim": 0, "hidden_dim": 128}, "input_dim"),
        ({"input_dim": 32, "hidden_dim": 4, "k": 8}, "k"),
        ({"input_dim": 32, "hidden_dim": 128, "normalize": "yes"}, "normalize"),
        ({"input_dim": 32, "hidden_dim": 128, "k_aux": -1}, "k_aux"),
        ({"input_dim": 32, "hidden_dim": 128, "dead_threshold": "30"}, "dead_threshold"),
        ({"input_dim": 32, "hidden_dim": 128, "top_k": 8}, "top_k"),
    ],
)
def test_bad_sae_config_names_the_key(tmp_path, config, key):
    random_sae(SparseAutoEncoder).save(str(tmp_path))
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelFormatError, match=key):
        SparseAutoEncoder.load(str(tmp_path))


@pytest.mark.parametrize(("config", "key"), [({"frozen": "no"}, "frozen"), ({"frozen": True, "idf": 1}, "idf")])
def test_bad_sse_config_names_the_key(tmp_path, tokenizer, config, key):
    SparseStaticEmbedding(tokenizer).save(str(tmp_path))
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelFormatError, match=key):
        SparseStaticEmbedding.load(str(tmp_path))


def test_sse_weights_from_another_vocabulary_are_refused(tmp_path, tokenizer):
    SparseStaticEmbedding(tokenizer).save(str(tmp_path))
    from safetensors.torch import save_file

    save_file({"weight": torch.ones(100)}, str(tmp_path / "model.safetensors"))
    with pytest.raises(ModelFormatError, match="different models"):
        SparseStaticEmbedding.load(str(tmp_path))
