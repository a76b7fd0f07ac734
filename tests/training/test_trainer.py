"""The trainer end to end on tiny models: custom modules, saving beside checkpoints, resuming, evaluators, the card,
dict losses, the legacy fit, and folders that load in the reference."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from datasets import Dataset, DatasetDict

from embedstack import (
    InputExample,
    SentenceTransformer,
    SentenceTransformerTrainer,
    SentenceTransformerTrainingArguments,
    losses,
)
from embedstack.evaluation import EmbeddingSimilarityEvaluator
from embedstack.modules import Dense, Normalize, Pooling, Transformer
from helpers import save_tiny_bert

pytestmark = pytest.mark.filterwarnings("ignore")
SEED_DIR = Path(__file__).resolve().parents[1] / "seed_samples"
TEXTS = [
    "A man plays a guitar.",
    "The cat sleeps on the warm windowsill all afternoon.",
    "It rains.",
    "Two children build a sand castle on the beach.",
    "A chef prepares a meal in a busy kitchen.",
    "Dogs run.",
    "The market fell sharply on Tuesday.",
    "Birds sing at dawn in the old oak tree near the river.",
]


@pytest.fixture(scope="module")
def backbone(tmp_path_factory):
    return save_tiny_bert(tmp_path_factory.mktemp("backbone"), "BertModel", seed=1, initializer_range=0.2)


def pairs(n: int = 16) -> Dataset:
    rng = np.random.default_rng(0)
    first = [TEXTS[i % 8] for i in range(n)]
    second = [TEXTS[(i * 3 + 1) % 8] for i in range(n)]
    return Dataset.from_dict({"sentence1": first, "sentence2": second, "score": rng.random(n).tolist()})


def args(folder: Path, **extra) -> SentenceTransformerTrainingArguments:
    settings = dict(
        output_dir=str(folder),
        per_device_train_batch_size=4,
        learning_rate=1e-2,
        report_to="none",
        disable_tqdm=True,
        use_cpu=True,
        save_strategy="no",
        seed=0,
    )
    return SentenceTransformerTrainingArguments(**{**settings, **extra})


def test_a_custom_module_with_a_parameter_trains_saves_and_reloads_in_both_libraries(backbone, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(SEED_DIR))
    sys.modules.pop("learnable_decay_pooling", None)
    from learnable_decay_pooling import LearnableDecayPooling
    from sentence_transformers import SentenceTransformer as Reference
    from sentence_transformers import SentenceTransformerTrainer as ReferenceTrainer
    from sentence_transformers import SentenceTransformerTrainingArguments as ReferenceArguments
    from sentence_transformers import losses as reference_losses

    pooling = LearnableDecayPooling(32, decay=0.9)
    model = SentenceTransformer(modules=[Transformer(str(backbone)), pooling, Normalize()], device="cpu")
    before = pooling.decay_logit.item()
    SentenceTransformerTrainer(
        model=model, args=args(tmp_path / "run"), train_dataset=pairs(), loss=losses.CoSENTLoss(model)
    ).train()
    assert pooling.decay_logit.item() != pytest.approx(before, abs=1e-6)  # the custom module's parameter trained

    folder = tmp_path / "trained"
    model.save(str(folder))
    shutil.copy(SEED_DIR / "learnable_decay_pooling.py", folder / "learnable_decay_pooling.py")
    expected = model.encode(TEXTS)
    ours = SentenceTransformer(str(folder), trust_remote_code=True, device="cpu")
    theirs = Reference(str(folder), trust_remote_code=True, device="cpu")
    assert ours[1].decay_logit.item() == pooling.decay_logit.item()
    np.testing.assert_allclose(ours.encode(TEXTS), expected, atol=1e-6)
    np.testing.assert_allclose(theirs.encode(TEXTS), expected, atol=1e-5)

    # And the other way: the reference trains the folder further, embedstack reloads what it saved.
    reference_args = ReferenceArguments(
        output_dir=str(tmp_path / "ref-run"), per_device_train_batch_size=4, learning_rate=1e-2, report_to="none",
        disable_tqdm=True, use_cpu=True, save_strategy="no",
    )  # fmt: skip
    ReferenceTrainer(
        model=theirs, args=reference_args, train_dataset=pairs(), loss=reference_losses.CoSENTLoss(theirs)
    ).train()
    assert theirs[1].decay_logit.item() != pytest.approx(pooling.decay_logit.item(), abs=1e-6)
    theirs.save(str(tmp_path / "ref-trained"))
    shutil.copy(SEED_DIR / "learnable_decay_pooling.py", tmp_path / "ref-trained" / "learnable_decay_pooling.py")
    reloaded = SentenceTransformer(str(tmp_path / "ref-trained"), trust_remote_code=True, device="cpu")
    assert reloaded[1].decay_logit.item() == pytest.approx(theirs[1].decay_logit.item(), abs=0)
    np.testing.assert_allclose(reloaded.encode(TEXTS), theirs.encode(TEXTS), atol=1e-5)


def test_checkpoints_resume_and_the_final_save_keeps_them(backbone, tmp_path):
    model = SentenceTransformer(modules=[Transformer(str(backbone)), Pooling(32), Dense(32, 8)], device="cpu")
    out = tmp_path / "out"
    settings = dict(save_strategy="steps", save_steps=2, max_steps=4)
    trainer = SentenceTransformerTrainer(
        model=model, args=args(out, **settings), train_dataset=pairs(), loss=losses.CoSENTLoss(model)
    )
    trainer.train()
    trainer.save_model()
    names = {path.name for path in out.iterdir()}
    assert {"checkpoint-2", "checkpoint-4", "modules.json", "2_Dense", "README.md"} <= names
    final = SentenceTransformer(str(out), device="cpu")
    np.testing.assert_allclose(final.encode(TEXTS), model.encode(TEXTS), atol=1e-6)

    # Resuming from checkpoint-2 retraces steps 3 and 4: the same weights as the uninterrupted run.
    fresh = SentenceTransformer(str(out / "checkpoint-2"), device="cpu")
    resumed = SentenceTransformerTrainer(
        model=fresh, args=args(tmp_path / "resumed", **settings), train_dataset=pairs(), loss=losses.CoSENTLoss(fresh)
    )
    resumed.train(resume_from_checkpoint=str(out / "checkpoint-2"))
    np.testing.assert_allclose(fresh.encode(TEXTS), model.encode(TEXTS), atol=1e-5)


def test_the_evaluator_runs_during_training_and_the_card_records_the_run(backbone, tmp_path):
    import sentence_transformers

    model = SentenceTransformer(modules=[Transformer(str(backbone)), Pooling(32)], device="cpu")
    data = pairs()
    evaluator = EmbeddingSimilarityEvaluator(data["sentence1"], data["sentence2"], data["score"], name="dev")
    run = args(tmp_path / "out", eval_strategy="steps", eval_steps=2, max_steps=4, logging_steps=2)
    trainer = SentenceTransformerTrainer(
        model=model, args=run, train_dataset=data, evaluator=evaluator, loss=losses.CoSENTLoss(model)
    )
    trainer.train()
    evaluations = [entry for entry in trainer.state.log_history if "eval_dev_spearman_cosine" in entry]
    assert [entry["step"] for entry in evaluations] == [2, 4]
    training = model.model_card_data.training
    assert training["losses"][""]["class"] == "CoSENTLoss" and training["losses"][""]["config"]["scale"] == 20.0
    assert training["datasets"] == [
        {"split": "train", "name": None, "columns": ["sentence1", "sentence2", "score"], "size": 16}
    ]
    assert training["hyperparameters"]["max_steps"] == 4 and "eval_dev_spearman_cosine" in training["evaluation"]
    folder = tmp_path / "saved"
    model.save(str(folder))
    card = (folder / "README.md").read_text()
    assert "## Training Details" in card and "CoSENTLoss" in card and "max_steps" in card
    reference = sentence_transformers.SentenceTransformer(str(folder), device="cpu")
    np.testing.assert_allclose(reference.encode(TEXTS), model.encode(TEXTS), atol=1e-5)


def test_a_loss_per_dataset(backbone, tmp_path):
    model = SentenceTransformer(modules=[Transformer(str(backbone)), Pooling(32)], device="cpu")
    triplets = Dataset.from_dict({"anchor": TEXTS, "positive": TEXTS[1:] + TEXTS[:1]})
    data = DatasetDict({"scored": pairs(), "pairs": triplets})
    loss = {"scored": losses.CosineSimilarityLoss(model), "pairs": losses.MultipleNegativesRankingLoss(model)}
    trainer = SentenceTransformerTrainer(model=model, args=args(tmp_path, max_steps=6), train_dataset=data, loss=loss)
    trainer.train()
    assert trainer.state.global_step == 6
    with pytest.raises(ValueError, match="no loss for"):
        SentenceTransformerTrainer(
            model=model, args=args(tmp_path), train_dataset=data, loss={"scored": loss["scored"]}
        )


def test_the_legacy_fit(backbone, tmp_path, monkeypatch):
    from torch.utils.data import DataLoader

    monkeypatch.chdir(tmp_path)
    model = SentenceTransformer(modules=[Transformer(str(backbone)), Pooling(32)], device="cpu")
    examples = [InputExample(texts=[a, b], label=float(i % 3) / 2) for i, (a, b) in enumerate(zip(TEXTS, TEXTS[::-1]))]
    before = [p.detach().clone() for p in model.parameters()]
    loader = DataLoader(examples, shuffle=True, batch_size=4)
    data = pairs(8)
    evaluator = EmbeddingSimilarityEvaluator(data["sentence1"], data["sentence2"], data["score"], name="dev")
    scores = []
    model.fit(train_objectives=[(loader, losses.CosineSimilarityLoss(model))], epochs=2, warmup_steps=1,
              evaluator=evaluator, callback=lambda score, epoch, steps: scores.append((epoch, steps)),
              optimizer_params={"lr": 1e-2}, output_path=str(tmp_path / "fitted"), show_progress_bar=False)  # fmt: skip
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert [steps for _, steps in scores] == [2, 4]  # the evaluator ran after each epoch
    assert (tmp_path / "fitted" / "modules.json").is_file()  # the best model was saved


def test_bad_arguments_say_what_to_fix(backbone, tmp_path):
    model = SentenceTransformer(modules=[Transformer(str(backbone)), Pooling(32)], device="cpu")
    with pytest.raises(ValueError, match="eval_dataset and no evaluator"):
        SentenceTransformerTrainer(model=model, args=args(tmp_path, eval_strategy="steps"), train_dataset=pairs())
    with pytest.raises(ValueError, match="not a known sampler"):
        args(tmp_path, batch_sampler="no_duplicate")
    reserved = pairs().rename_column("score", "dataset_name")
    with pytest.raises(ValueError, match="reserves"):
        SentenceTransformerTrainer(model=model, args=args(tmp_path), train_dataset=reserved)
    with pytest.raises(ValueError, match="matches no parameter"):
        trainer = SentenceTransformerTrainer(
            model=model, args=args(tmp_path, learning_rate_mapping={"nothing_here": 1e-3}), train_dataset=pairs()
        )
        trainer.create_optimizer()


def test_a_missing_train_extra_names_the_pip_command(monkeypatch):
    import importlib.util

    import embedstack
    from embedstack.errors import MissingExtraError

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "accelerate" else real(name, *a))
    monkeypatch.delitem(embedstack.__dict__, "SentenceTransformerTrainer", raising=False)
    with pytest.raises(MissingExtraError, match=r"pip install 'embedstack\[train\]'"):
        embedstack.SentenceTransformerTrainer  # noqa: B018
    with pytest.raises(MissingExtraError, match="accelerate"):
        SentenceTransformer.fit(object(), [])  # type: ignore[arg-type]


def test_resuming_reads_weights_only_and_runs_no_code_from_the_checkpoint(backbone, tmp_path):
    import json

    model = SentenceTransformer(modules=[Transformer(str(backbone)), Pooling(32), Dense(32, 8)], device="cpu")
    checkpoint = tmp_path / "checkpoint-1"
    trained = SentenceTransformer(modules=[Transformer(str(backbone)), Pooling(32), Dense(32, 8)], device="cpu")
    torch.nn.init.normal_(trained[2].linear.weight)
    trained.save(str(checkpoint))
    entries = json.loads((checkpoint / "modules.json").read_text())
    entries[2]["type"] = "evil.Dense"  # a class the folder would bring, with code that leaves a marker
    (checkpoint / "modules.json").write_text(json.dumps(entries))
    (checkpoint / "evil.py").write_text(f"open({str(tmp_path / 'ran')!r}, 'w').close()\nDense = None\n")
    trainer = SentenceTransformerTrainer(model=model, args=args(tmp_path / "out"), train_dataset=pairs())
    trainer._load_from_checkpoint(str(checkpoint))
    assert not (tmp_path / "ran").exists()
    assert torch.equal(model[2].linear.weight, trained[2].linear.weight)


def test_saving_into_a_folder_with_checkpoints_replaces_the_old_model_whole(backbone, tmp_path):
    folder = tmp_path / "out"
    SentenceTransformer(modules=[Transformer(str(backbone)), Pooling(32), Dense(32, 8)], device="cpu").save(str(folder))
    (folder / "checkpoint-1").mkdir()
    (folder / "checkpoint-1" / "optimizer.pt").write_bytes(b"state")
    smaller = SentenceTransformer(modules=[Transformer(str(backbone)), Pooling(32)], device="cpu")
    smaller.save(str(folder), keep_other_files=True)
    names = {path.name for path in folder.iterdir()}
    assert "2_Dense" not in names and "checkpoint-1" in names and not any(n.startswith(".retired") for n in names)
    np.testing.assert_allclose(SentenceTransformer(str(folder), device="cpu").encode(TEXTS), smaller.encode(TEXTS))


def test_evaluate_prepares_a_dataset_dict_for_a_loss_dict(backbone, tmp_path):
    model = SentenceTransformer(modules=[Transformer(str(backbone)), Pooling(32)], device="cpu")
    loss = {"a": losses.CoSENTLoss(model), "b": losses.CosineSimilarityLoss(model)}
    data = DatasetDict({"a": pairs(8), "b": pairs(8)})
    trainer = SentenceTransformerTrainer(model=model, args=args(tmp_path), train_dataset=data, loss=loss)
    metrics = trainer.evaluate(DatasetDict({"a": pairs(8), "b": pairs(8)}))
    assert {"eval_a_loss", "eval_b_loss"} <= set(metrics)


def test_learning_rate_mapping_gives_a_parameter_its_last_matching_rate(backbone, tmp_path):
    model = SentenceTransformer(modules=[Transformer(str(backbone)), Pooling(32), Dense(32, 8)], device="cpu")
    mapping = {r"\.model\.": 1e-3, r"encoder\.layer\.0\.": 1e-4}
    trainer = SentenceTransformerTrainer(
        model=model, args=args(tmp_path, learning_rate_mapping=mapping), train_dataset=pairs()
    )
    optimizer = trainer.create_optimizer()
    rate = {id(p): group["lr"] for group in optimizer.param_groups for p in group["params"]}
    named = dict(model.named_parameters())
    assert rate[id(named["0.model.encoder.layer.0.attention.self.query.weight"])] == 1e-4
    assert rate[id(named["0.model.encoder.layer.1.attention.self.query.weight"])] == 1e-3
    assert rate[id(named["2.linear.weight"])] == 1e-2  # the default learning rate


def test_a_push_from_a_checkpoint_uploads_the_whole_folder_layout(backbone, tmp_path, monkeypatch):
    import transformers

    pushed = []
    monkeypatch.setattr(transformers.Trainer, "_push_from_checkpoint", lambda self, folder: pushed.append(folder))
    model = SentenceTransformer(modules=[Transformer(str(backbone)), Pooling(32), Dense(32, 8)], device="cpu")
    trainer = SentenceTransformerTrainer(model=model, args=args(tmp_path / "out"), train_dataset=pairs())
    trainer.args.hub_strategy = "every_save"
    trainer._push_from_checkpoint(str(tmp_path / "out" / "checkpoint-1"))
    assert pushed and {"modules.json", "2_Dense", "README.md"} <= {p.name for p in (tmp_path / "out").iterdir()}
