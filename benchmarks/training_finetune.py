"""Real fine-tunes side by side: embedstack's trainer against sentence-transformers 6.2's, same model, data, batches.

    .venv/bin/python benchmarks/training_finetune.py                      # every recipe, the whole STS-B train split
    .venv/bin/python benchmarks/training_finetune.py --recipes cls --pairs 2000

Recipes (1 epoch, batch 16, lr 2e-5, seed 42; both trainers draw the same batches):
- cls:   all-MiniLM-L6-v2's Transformer with CLS pooling (not the mean it was trained with) + Normalize; CoSENT on
         STS-B train; scored by cosine Spearman on STS-B test.
- dense: all-MiniLM-L6-v2 + mean pooling + a new random Dense(384 -> 256) (built and saved once); same recipe.
- mnrl:  MultipleNegativesRankingLoss on the STS-B train pairs with score >= 4; scored as retrieval on the test
         pairs with score >= 4 (each first sentence must find its second among all test second sentences), nDCG@10.

Each run prints the score before training, after the reference's run and after ours, both training wall times
(trainer.train() only, medians of --repeats runs taking turns) and their ratio, with the CPU's flags. Training
pairs are sampled (seeded) across the whole split: the file is sorted by genre. Every model trained by either
library is scored by the same code (embedstack loading the saved folder, so the reference's folder is also checked
to load here).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import tempfile
import time
from pathlib import Path

import torch
from datasets import Dataset
from encode_throughput import cpu_flags

from embedstack import SentenceTransformer, SentenceTransformerTrainer, SentenceTransformerTrainingArguments
from embedstack import losses as our_losses
from embedstack.defaults import default_model_path
from embedstack.evaluation import InformationRetrievalEvaluator
from embedstack.evaluation.datasets import sts_benchmark
from embedstack.evaluation.sts import evaluate_sts
from embedstack.modules import Dense, Normalize, Pooling, Transformer

RECIPES = ("cls", "dense", "mnrl")


def build_start(recipe: str, folder: Path) -> Path:
    """The model both libraries start from, saved once."""
    torch.manual_seed(0)
    backbone = Transformer(str(default_model_path()))
    if recipe == "cls":
        modules = [backbone, Pooling(384, pooling_mode="cls"), Normalize()]
    elif recipe == "dense":
        modules = [backbone, Pooling(384), Dense(384, 256)]
    else:
        modules = [backbone, Pooling(384), Normalize()]
    path = folder / f"start-{recipe}"
    SentenceTransformer(modules=modules, device="cpu").save(str(path))
    return path


def train_pairs(recipe: str, limit: int | None, seed: int = 0) -> Dataset:
    pairs = sts_benchmark("train")
    rows = list(zip(pairs.sentences1, pairs.sentences2, pairs.scores))
    if recipe == "mnrl":
        rows = [row for row in rows if row[2] >= 4.0]
    random.Random(seed).shuffle(rows)  # across the whole split, which is sorted by genre
    rows = rows[:limit] if limit else rows
    if recipe == "mnrl":
        return Dataset.from_dict({"anchor": [r[0] for r in rows], "positive": [r[1] for r in rows]})
    return Dataset.from_dict(
        {"sentence1": [r[0] for r in rows], "sentence2": [r[1] for r in rows], "score": [r[2] / 5 for r in rows]}
    )


def score(recipe: str, path: Path) -> float:
    model = SentenceTransformer(str(path), device="cpu")
    test = sts_benchmark("test")
    if recipe != "mnrl":
        return evaluate_sts(model, test, batch_size=64).cosine_spearman
    keep = [i for i, value in enumerate(test.scores) if value >= 4.0]
    queries = {f"q{i}": test.sentences1[i] for i in keep}
    corpus = {f"d{i}": text for i, text in enumerate(test.sentences2)}
    relevant = {f"q{i}": {f"d{i}"} for i in keep}
    evaluator = InformationRetrievalEvaluator(queries, corpus, relevant, name="sts-test", batch_size=64)
    return 100 * evaluator(model)["sts-test_cosine_ndcg@10"]


def run(library: str, recipe: str, start: Path, data: Dataset, out: Path) -> float:
    """Train a copy of ``start`` with ``library``'s trainer; the training wall time. The model is saved to ``out``."""
    if library == "reference":
        import sentence_transformers as lib
        from sentence_transformers import losses
    else:
        lib, losses = None, our_losses
    model_class = lib.SentenceTransformer if lib else SentenceTransformer
    trainer_class = lib.SentenceTransformerTrainer if lib else SentenceTransformerTrainer
    args_class = lib.SentenceTransformerTrainingArguments if lib else SentenceTransformerTrainingArguments
    model = model_class(str(start), device="cpu")
    loss = losses.MultipleNegativesRankingLoss(model) if recipe == "mnrl" else losses.CoSENTLoss(model)
    args = args_class(
        output_dir=str(out.parent / f"run-{library}-{recipe}"),
        num_train_epochs=1,
        per_device_train_batch_size=16,
        learning_rate=2e-5,
        warmup_steps=0.1,
        seed=42,
        batch_sampler="no_duplicates" if recipe == "mnrl" else "batch_sampler",
        report_to="none",
        save_strategy="no",
        logging_steps=100,
        disable_tqdm=True,
        use_cpu=True,
    )
    trainer = trainer_class(model=model, args=args, train_dataset=data, loss=loss)
    began = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - began
    model.save(str(out))
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", default=",".join(RECIPES))
    parser.add_argument("--pairs", type=int, default=None, help="train on this many sampled pairs (default: all)")
    parser.add_argument("--repeats", type=int, default=1, help="train this many times per library (median times)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None)
    options = parser.parse_args()
    torch.set_num_threads(options.threads)
    print(f"# fine-tunes, embedstack vs sentence-transformers 6.2, {options.pairs or 'all'} train pairs")
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; {cpu_flags()}; load average {os.getloadavg()[0]:.2f}")  # fmt: skip
    results = []
    with tempfile.TemporaryDirectory() as folder:
        for recipe in options.recipes.split(","):
            start = build_start(recipe, Path(folder))
            data = train_pairs(recipe, options.pairs)
            row: dict = {"recipe": recipe, "pairs": len(data), "before": score(recipe, start)}
            times: dict[str, list[float]] = {"reference": [], "embedstack": []}
            for repeat in range(options.repeats):  # the libraries take turns, so drift hits both
                for library in ("reference", "embedstack"):
                    out = Path(folder) / f"{library}-{recipe}-{repeat}"
                    times[library].append(run(library, recipe, start, data, out))
                    if repeat == 0:  # seeded: every repeat trains the same model
                        row[f"{library}_after"] = score(recipe, out)
            for library, seconds in times.items():
                row[f"{library}_seconds"] = statistics.median(seconds)
                row[f"{library}_runs"] = [round(value, 1) for value in seconds]
            row["speedup"] = row["reference_seconds"] / row["embedstack_seconds"]
            row["speedups"] = [round(r / o, 3) for r, o in zip(times["reference"], times["embedstack"])]
            results.append(row)
            print(
                f"{recipe}: {row['pairs']} pairs; before {row['before']:.2f}; reference {row['reference_after']:.2f} "
                f"in {row['reference_seconds']:.0f} s; embedstack {row['embedstack_after']:.2f} in "
                f"{row['embedstack_seconds']:.0f} s; {row['speedup']:.2f}x faster (median of {options.repeats}; runs "
                f"{row['speedups']})",
                flush=True,
            )
    if options.json:
        options.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
