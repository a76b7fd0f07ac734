"""Tiny backbones built from configs (random weights) and the real texts used across tests."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import torch

from embedstack.defaults import default_model_path
from embedstack.evaluation.datasets import sts_benchmark, wikipedia_extracts

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")

NON_LATIN = [
    "Москва — столица России, крупнейший по численности населения город страны.",
    "東京は日本の首都であり、世界最大級の都市圏を形成している。",
    "北京是中华人民共和国的首都，也是全国的政治和文化中心。",
    "القاهرة هي عاصمة جمهورية مصر العربية وأكبر مدنها.",
    "नई दिल्ली भारत की राजधानी है और यह दिल्ली महानगर का हिस्सा है।",
    "Η Αθήνα είναι η πρωτεύουσα της Ελλάδας.",
    "서울은 대한민국의 수도이다.",
    "ירושלים היא עיר הבירה של ישראל.",
    "กรุงเทพมหานครเป็นเมืองหลวงของประเทศไทย",
    "🙂🚀 emoji only 🎉",
]


HUB_COMMIT = "0" * 40


def add_to_cache(cache: Path, repo_id: str, source: Path) -> None:
    """Put ``source`` into a Hugging Face Hub cache as the main revision of ``repo_id`` (for offline Hub tests)."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    shutil.copytree(source, repo / "snapshots" / HUB_COMMIT)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(HUB_COMMIT)


def copy_tokenizer(target: Path) -> None:
    source = default_model_path()
    for name in TOKENIZER_FILES:
        shutil.copy(source / name, target / name)


def save_tiny_bert(target: Path, model_class: str, seed: int = 0, **config: Any) -> Path:
    """A 2-layer, 32-wide random BERT (``transformers.<model_class>``) with the MiniLM tokenizer, saved as a plain
    Hugging Face folder; ``config`` adds or overrides BertConfig settings."""
    import transformers

    torch.manual_seed(seed)
    settings = dict(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    model = getattr(transformers, model_class)(transformers.BertConfig(**{**settings, **config}))
    target.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(target)
    copy_tokenizer(target)
    return target


def tiny_bert(target: Path, seed: int = 0) -> Path:
    """A 2-layer, 32-wide random BERT with the MiniLM tokenizer, saved as a plain Hugging Face folder."""
    return save_tiny_bert(target, "BertModel", seed)


def tiny_cross_encoder(target: Path, num_labels: int = 1, seed: int = 0) -> Path:
    """A random BertForSequenceClassification with the MiniLM tokenizer, saved as a plain Hugging Face folder.

    Its weights are drawn with std 0.2 (not the usual 0.02), so pairs get visibly different scores (logits spread
    over a few units) and a ranking means something.
    """
    return save_tiny_bert(target, "BertForSequenceClassification", seed, num_labels=num_labels, initializer_range=0.2)


def tiny_mlm(target: Path, seed: int = 0) -> Path:
    """A random 2-layer, 32-wide BertForMaskedLM with the MiniLM tokenizer, saved as a plain Hugging Face folder.

    Weights drawn with std 0.2 (not 0.02), so the SPLADE weights of different texts differ visibly.
    """
    return save_tiny_bert(target, "BertForMaskedLM", seed, initializer_range=0.2)


def tiny_llama(target: Path, seed: int = 0) -> Path:
    """A 2-layer random LlamaForCausalLM with the MiniLM tokenizer (no chat template)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=30522,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=128,
        pad_token_id=0,
        bos_token_id=101,
        eos_token_id=102,
    )
    target.mkdir(parents=True, exist_ok=True)
    LlamaForCausalLM(config).save_pretrained(target)
    copy_tokenizer(target)
    return target


def parity_texts() -> list[str]:
    """A few hundred real texts: Wikipedia extracts, texts over 256 tokens (three extracts joined), STS-B
    sentences, non-Latin scripts, an empty string and a whitespace-only string."""
    sts = sts_benchmark("test")
    extracts = wikipedia_extracts(limit=190)
    long_texts = [" ".join(extracts[i : i + 3]) for i in range(130, 190, 3)]
    return extracts[:130] + long_texts + sts.sentences1[:150] + NON_LATIN + ["", "   "]


def short_texts() -> list[str]:
    sts = sts_benchmark("test")
    return sts.sentences1[:24] + sts.sentences2[:8] + NON_LATIN[:4] + [""]


def bounded(function, *args, timeout=180):
    """``function(*args)`` in a thread; fails the test rather than wait past ``timeout`` seconds."""
    outcome = {}

    def target():
        try:
            outcome["value"] = function(*args)
        except BaseException as exc:  # noqa: BLE001 - re-raised below, in the test's thread
            outcome["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), f"{function.__name__} did not finish in {timeout} s"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def cli_info(paths: dict[str, Path]) -> dict[str, subprocess.CompletedProcess]:
    """``python -m embedstack.cli info <folder>`` for each folder, as real subprocesses started together: each one
    spends seconds importing torch and transformers, which side by side share the cores instead of queueing."""
    processes = {
        name: subprocess.Popen(
            [sys.executable, "-m", "embedstack.cli", "info", str(path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, path in paths.items()
    }
    results = {}
    for name, process in processes.items():
        stdout, stderr = process.communicate(timeout=600)
        results[name] = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    return results


OUTLIER = 3  # the channel outlier_model inflates


def outlier_model(tiny_bert_path):
    """The tiny BERT made to look trained: its layers' weights 10x larger (at random init the residual stream
    drowns every sublayer, so int8 errors would not show), and one channel of the LayerNorms 10x larger than the
    rest, as in trained BERTs (not in the last one, whose output is the token embeddings: that outlier would
    dominate every vector's cosine)."""
    from embedstack import SentenceTransformer
    from embedstack.modules import Pooling, Transformer

    model = SentenceTransformer(modules=[Transformer(str(tiny_bert_path)), Pooling(32)], device="cpu")
    backbone = model[0].model
    norms = [backbone.embeddings.LayerNorm]
    for layer in backbone.encoder.layer:
        norms += [layer.attention.output.LayerNorm, layer.output.LayerNorm]
    norms.pop()
    with torch.no_grad():
        for linear in backbone.encoder.modules():
            if isinstance(linear, torch.nn.Linear):
                linear.weight *= 10
        for norm in norms:
            norm.weight[OUTLIER] *= 10
            norm.bias[OUTLIER] += 5
    return model
