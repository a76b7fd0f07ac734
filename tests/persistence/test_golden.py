"""Folders we write match the golden files (made by sentence-transformers 6.2), byte for byte."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

GOLDEN = Path(__file__).parents[1] / "golden"
sys.path.insert(0, str(GOLDEN))

from make_golden import GOLDEN_FILES, build, build_reference, file_tree  # noqa: E402

import embedstack.modules  # noqa: E402
from embedstack import SentenceTransformer  # noqa: E402


def build_ours(backbone: Path) -> SentenceTransformer:
    return build(SentenceTransformer, embedstack.modules, backbone)


def read_golden_view(folder: Path, name: str) -> str:
    text = (folder / name).read_text()
    if name == "config_sentence_transformers.json":
        config = json.loads(text)
        versions = config.pop("__version__")
        assert set(versions) >= {"sentence_transformers", "transformers", "pytorch"}
        text = json.dumps(config, indent=2, sort_keys=True)
    return text


@pytest.mark.parametrize("name", GOLDEN_FILES)
def test_our_files_match_golden(tmp_path, tiny_bert_path, name):
    build_ours(tiny_bert_path).save(str(tmp_path / "ours"))
    assert read_golden_view(tmp_path / "ours", name) == (GOLDEN / "dense_prompts" / name).read_text()


def test_our_file_tree_matches_golden(tmp_path, tiny_bert_path):
    build_ours(tiny_bert_path).save(str(tmp_path / "ours"))
    assert "\n".join(file_tree(tmp_path / "ours")) + "\n" == (GOLDEN / "dense_prompts" / "FILES.txt").read_text()


def test_golden_files_are_still_what_the_reference_writes(tmp_path, tiny_bert_path):
    build_reference(tiny_bert_path).save(str(tmp_path / "reference"))
    for name in GOLDEN_FILES:
        assert read_golden_view(tmp_path / "reference", name) == (GOLDEN / "dense_prompts" / name).read_text(), name
    assert "\n".join(file_tree(tmp_path / "reference")) + "\n" == (GOLDEN / "dense_prompts" / "FILES.txt").read_text()
