"""Token-budget passes give the embeddings one pass per column gives, and refuse what they cannot cut."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from embedstack import SentenceTransformer
from embedstack.losses import CoSENTLoss, MatryoshkaLoss, MultipleNegativesRankingLoss
from embedstack.losses.passes import embed_columns, pass_batches, passes_disabled, plan_passes
from embedstack.modules import Pooling, Transformer
from helpers import save_tiny_bert

SHORT = ["a", "a cat", "the cat sat", "dogs", "it rains", "ok"]
LONG = ["a much longer sentence about the history of the world and more", "short", "x y z", "medium length text"]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    backbone = save_tiny_bert(tmp_path_factory.mktemp("bert"), "BertModel", seed=2, initializer_range=0.2)
    stack = SentenceTransformer(modules=[Transformer(str(backbone)), Pooling(32)], device="cpu")
    return stack.eval()


@pytest.mark.parametrize("side", ["right", "left"])
def test_passes_give_the_embeddings_of_one_pass_per_column(model, side):
    model.tokenizer.padding_side = side
    try:
        columns = [model.preprocess(SHORT), model.preprocess(SHORT[::-1]), model.preprocess(LONG + LONG[:2])]
        with torch.no_grad():
            merged = embed_columns(model, [dict(c) for c in columns])
            with passes_disabled():
                single = embed_columns(model, [dict(c) for c in columns])
        plan = pass_batches([dict(c) for c in columns])
        if side == "right":
            assert len(plan) > 1 and plan.passes[0].column is None  # merged, and the long texts got their own pass
        else:  # left padding shifts absolute positions: each column keeps its own padded pass
            assert [batch.column for batch in plan] == [0, 1, 2]
        for ours, reference in zip(merged, single):
            torch.testing.assert_close(ours, reference, atol=1e-5, rtol=1e-5)
    finally:
        model.tokenizer.padding_side = "right"


def test_columns_of_different_prompts_or_routes_never_share_a_pass(model):
    plain = model.preprocess(SHORT)
    prompted = model.preprocess(SHORT, prompt="query: ")
    routed = {**model.preprocess(SHORT), "task": "document"}
    plan = pass_batches([plain, prompted, routed])
    for batch in plan:
        assert batch.column is not None or len(set(batch.columns.tolist())) == 1


def test_features_not_one_row_per_text_are_not_cut(model):
    odd = {**model.preprocess(SHORT), "pixel_values": torch.zeros(10, 4)}  # 10 patches for 6 texts
    plan = pass_batches([odd, dict(odd)])
    assert [batch.column for batch in plan] == [0, 1]  # one whole pass per column
    with pytest.raises(ValueError, match="first axis is not one row per text"):
        pass_batches([odd], max_rows=2)


def test_plan_passes_respects_its_limits():
    lengths = sorted([5] * 50 + [40] * 10)
    passes = plan_passes(lengths, max_rows=16, max_tokens=200)
    assert [index for span in passes for index in span] == list(range(60))
    assert all(len(span) <= 16 and len(span) * lengths[span[-1]] <= 200 for span in passes)


class _PerColumnCoSENT(nn.Module):
    """A loss written the old way: it calls the model once per column (no compute_loss_from_embeddings)."""

    def __init__(self, model):
        super().__init__()
        self.model, self.inner = model, CoSENTLoss(model)

    def forward(self, features, labels):
        return self.inner.compute_loss_from_embeddings([self.model(f)["sentence_embedding"] for f in features], labels)


def test_matryoshka_wraps_a_loss_that_calls_the_model_itself(model):
    columns = [model.preprocess(SHORT), model.preprocess(SHORT[::-1])]
    labels = torch.linspace(0, 1, len(SHORT))
    with torch.no_grad():
        native = MatryoshkaLoss(model, CoSENTLoss(model), [32, 16, 8])([dict(c) for c in columns], labels)
        foreign = MatryoshkaLoss(model, _PerColumnCoSENT(model), [32, 16, 8])([dict(c) for c in columns], labels)
    torch.testing.assert_close(native, foreign, atol=1e-5, rtol=1e-5)
    assert model.forward.__self__ is model  # the wrapped forward is restored


def test_mnrl_settings_are_settable_and_checked(model):
    loss = MultipleNegativesRankingLoss(model)
    loss.scale = 10.0
    loss.directions = ("query_to_doc", "doc_to_query")
    assert (loss.scale, loss.temperature, loss.directions) == (10.0, 0.1, ("query_to_doc", "doc_to_query"))
    with pytest.raises(ValueError, match="query_to_doc"):
        loss.directions = ("doc_to_query",)
