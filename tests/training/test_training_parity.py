"""One optimizer step through our trainer moves every parameter as the reference's trainer does, for each loss.

Both trainers start from the same saved tiny BERT (dropout off, so both draw nothing at random), see the same batch
(same sampler, same seed) and take one SGD step at learning rate 0.01, so a parameter's change is a hundredth of
its gradient: changes up to about 0.01, so float32 rounding (5e-8 here) stays far under the 1e-6 bound whatever
the CPU's kernels. The comparison checks the losses' math and the passes, not an optimizer's rounding. (Adam's
first step, lr * g / (|g| + eps), turns float noise in a parameter whose true gradient is zero, such as BERT's
attention key bias, into a full +-lr step, so two correct implementations differ there by up to 2 lr.)
The reference runs in this test.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from datasets import Dataset

import embedstack.losses as ours
from embedstack import SentenceTransformer, SentenceTransformerTrainer, SentenceTransformerTrainingArguments
from embedstack.modules import Pooling, Transformer
from helpers import save_tiny_bert

pytestmark = pytest.mark.filterwarnings("ignore")

TEXTS = [
    "A man is playing a guitar.",
    "Someone plays an instrument on a stage in front of a large and enthusiastic crowd of people.",
    "The cat sleeps.",
    "A woman is slicing an onion in the kitchen while the radio plays old songs in the background.",
    "Dogs run.",
    "Two children are building a sand castle on the beach near the water.",
    "It rains.",
    "The stock market fell sharply on Tuesday after the central bank raised interest rates again.",
    "A plane takes off.",
    "He reads a book about the history of mathematics in ancient Greece and Babylon.",
    "Birds sing at dawn.",
    "A chef prepares a meal.",
]


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory):
    backbone = save_tiny_bert(
        tmp_path_factory.mktemp("backbone"),
        "BertModel",
        seed=3,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        initializer_range=0.2,
    )
    model = SentenceTransformer(modules=[Transformer(str(backbone)), Pooling(32)], device="cpu")
    folder = tmp_path_factory.mktemp("model") / "tiny"
    model.save(str(folder))
    return folder


def _pairs() -> Dataset:
    scores = [0.9, 0.1, 0.5, 0.3, 0.7, 0.0, 1.0, 0.4]
    return Dataset.from_dict({"s1": TEXTS[:8], "s2": TEXTS[4:12], "score": scores})


def _triplets() -> Dataset:
    return Dataset.from_dict({"anchor": TEXTS[:8], "positive": TEXTS[2:10], "negative": TEXTS[4:12]})


def _loss(library, name: str, model):
    if name == "mnrl":
        return library.MultipleNegativesRankingLoss(model)
    if name == "mnrl_symmetric_hard":
        return library.MultipleNegativesRankingLoss(
            model,
            scale=10.0,
            directions=("query_to_doc", "doc_to_query", "query_to_query", "doc_to_doc"),
            hardness_mode="all_negatives",
            hardness_strength=3.0,
        )
    if name == "cached_mnrl":
        return library.CachedMultipleNegativesRankingLoss(model, mini_batch_size=3)
    if name == "cosent":
        return library.CoSENTLoss(model)
    if name == "cosine":
        return library.CosineSimilarityLoss(model)
    if name == "matryoshka":
        return library.MatryoshkaLoss(model, library.CoSENTLoss(model), [32, 16, 8], [1.0, 0.5, 0.25])
    if name == "matryoshka_cached":
        inner = library.CachedMultipleNegativesRankingLoss(model, mini_batch_size=3)
        return library.MatryoshkaLoss(model, inner, [32, 8])
    raise ValueError(name)


LOSSES = ["mnrl", "mnrl_symmetric_hard", "cached_mnrl", "cosent", "cosine", "matryoshka", "matryoshka_cached"]
LABELLED = {"cosent", "cosine", "matryoshka"}


def _step(model, trainer_class, args_class, loss, dataset, folder, **extra) -> dict[str, torch.Tensor]:
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    args = args_class(
        output_dir=str(folder),
        max_steps=1,
        per_device_train_batch_size=8,
        optim="sgd",
        learning_rate=0.01,
        lr_scheduler_type="constant",
        max_grad_norm=0.0,
        weight_decay=0.0,
        seed=7,
        report_to="none",
        save_strategy="no",
        disable_tqdm=True,
        use_cpu=True,
        **extra,
    )
    trainer_class(model=model, args=args, train_dataset=dataset, loss=loss).train()
    return {name: (p.detach() - before[name]) for name, p in model.named_parameters()}


@pytest.mark.parametrize("passes", [True, False], ids=["passes", "one-pass-per-column"])
@pytest.mark.parametrize("loss_name", LOSSES)
def test_one_step_matches_the_reference(model_folder, tmp_path, loss_name, passes):
    import sentence_transformers as reference
    from sentence_transformers import losses as reference_losses

    dataset = _pairs() if loss_name in LABELLED else _triplets()
    theirs = reference.SentenceTransformer(str(model_folder), device="cpu")
    ref_delta = _step(
        theirs,
        reference.SentenceTransformerTrainer,
        reference.SentenceTransformerTrainingArguments,
        _loss(reference_losses, loss_name, theirs),
        dataset,
        tmp_path / "reference",
    )
    mine = SentenceTransformer(str(model_folder), device="cpu")
    our_delta = _step(
        mine,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
        _loss(ours, loss_name, mine),
        dataset,
        tmp_path / "ours",
        token_budget_passes=passes,
    )
    assert len(our_delta) == len(ref_delta)
    moved = 0
    for (name, mine_change), (ref_name, ref_change) in zip(our_delta.items(), ref_delta.items()):
        assert mine_change.shape == ref_change.shape, (name, ref_name)
        difference = (mine_change - ref_change).abs().max().item()
        assert difference <= 1e-6, f"{name}: max abs difference {difference:.2e}"
        moved += int(ref_change.abs().max().item() > 1e-5)  # ten times the tolerance
    assert moved > len(ref_delta) // 2  # the step moved most parameters: the comparison is not of zeros


def _stack(kind: str, backbone: Path) -> list:
    from tokenizers import Tokenizer

    from embedstack.modules import Dense, Normalize, Router, StaticEmbedding

    torch.manual_seed(5)
    if kind == "dense":
        return [Transformer(str(backbone)), Pooling(32, pooling_mode="cls"), Dense(32, 16), Normalize()]
    if kind == "router":
        query = [Transformer(str(backbone)), Pooling(32)]
        document = [Transformer(str(backbone)), Pooling(32, pooling_mode="max")]
        return [Router.for_query_document(query, document)]
    tokenizer = Tokenizer.from_file(str(backbone / "tokenizer.json"))
    return [StaticEmbedding(tokenizer, embedding_dim=16)]


@pytest.mark.parametrize("kind", ["dense", "router", "static"])
def test_every_module_trains_like_the_reference(tmp_path, kind):
    """Dense, Router (per-route modules) and StaticEmbedding stacks: one step moves them as the reference's does."""
    import sentence_transformers as reference
    from sentence_transformers import losses as reference_losses

    backbone = save_tiny_bert(tmp_path / "backbone", "BertModel", seed=4, hidden_dropout_prob=0.0,
                              attention_probs_dropout_prob=0.0, initializer_range=0.2)  # fmt: skip
    folder = tmp_path / "start"
    SentenceTransformer(modules=_stack(kind, backbone), device="cpu").save(str(folder))
    extra = (
        {"router_mapping": {"anchor": "query", "positive": "document", "negative": "document"}}
        if kind == "router"
        else {}
    )
    theirs = reference.SentenceTransformer(str(folder), device="cpu")
    ref_loss = reference_losses.MultipleNegativesRankingLoss(theirs)
    ref_classes = (reference.SentenceTransformerTrainer, reference.SentenceTransformerTrainingArguments)
    ref_delta = _step(theirs, *ref_classes, ref_loss, _triplets(), tmp_path / "ref", **extra)
    mine = SentenceTransformer(str(folder), device="cpu")
    our_delta = _step(mine, SentenceTransformerTrainer, SentenceTransformerTrainingArguments,
                      ours.MultipleNegativesRankingLoss(mine), _triplets(), tmp_path / "ours", **extra)  # fmt: skip
    assert [tuple(change.shape) for change in our_delta.values()] == [tuple(c.shape) for c in ref_delta.values()]
    for (name, mine_change), ref_change in zip(our_delta.items(), ref_delta.values()):
        difference = (mine_change - ref_change).abs().max().item()
        assert difference <= 1e-6, f"{name}: max abs difference {difference:.2e}"
    moved = {name.split(".")[0] for name, change in our_delta.items() if change.abs().max().item() > 1e-5}
    expected = {"dense": {"0", "2"}, "router": {"0"}, "static": {"0"}}[kind]
    assert moved == expected
    if kind == "router":  # both routes' backbones trained
        routes = {name.split(".")[2] for name, change in our_delta.items() if change.abs().max().item() > 1e-5}
        assert routes == {"query", "document"}


def test_prompts_train_like_the_reference(model_folder, tmp_path):
    """Per-column prompts (``prompts=``): the prompt is prepended, as the reference's collator does."""
    import sentence_transformers as reference
    from sentence_transformers import losses as reference_losses

    prompts = {"anchor": "query: ", "positive": "passage: "}
    theirs = reference.SentenceTransformer(str(model_folder), device="cpu")
    ref_classes = (reference.SentenceTransformerTrainer, reference.SentenceTransformerTrainingArguments)
    ref_loss = reference_losses.MultipleNegativesRankingLoss(theirs)
    ref_delta = _step(theirs, *ref_classes, ref_loss, _triplets(), tmp_path / "ref", prompts=prompts)
    mine = SentenceTransformer(str(model_folder), device="cpu")
    our_loss = ours.MultipleNegativesRankingLoss(mine)
    classes = (SentenceTransformerTrainer, SentenceTransformerTrainingArguments)
    our_delta = _step(mine, *classes, our_loss, _triplets(), tmp_path / "ours", prompts=prompts)
    plain = SentenceTransformer(str(model_folder), device="cpu")
    plain_loss = ours.MultipleNegativesRankingLoss(plain)
    without = _step(plain, *classes, plain_loss, _triplets(), tmp_path / "plain")
    for (name, mine_change), ref_change in zip(our_delta.items(), ref_delta.values()):
        assert (mine_change - ref_change).abs().max().item() <= 1e-6, name
    assert any((our_delta[name] - without[name]).abs().max().item() > 1e-5 for name in our_delta)  # prompts mattered
