"""Regenerate the golden files from sentence-transformers 6.2 (run by hand when the format changes):

.venv/bin/python tests/golden/make_golden.py
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent))

from helpers import tiny_bert  # noqa: E402

GOLDEN_FILES = (
    "modules.json",
    "config_sentence_transformers.json",
    "sentence_bert_config.json",
    "1_Pooling/config.json",
    "2_Dense/config.json",
    "3_Normalize/config.json",
)


def build(model_cls, modules, backbone: Path):
    """The golden stack, built with either library (``modules`` is its modules namespace)."""
    transformer = modules.Transformer(str(backbone))
    stack = [transformer, modules.Pooling(32, pooling_mode="cls"), modules.Dense(32, 16), modules.Normalize()]
    return model_cls(
        modules=stack,
        prompts={"query": "query: ", "passage": "passage: "},
        default_prompt_name="query",
        similarity_fn_name="dot",
        truncate_dim=8,
        device="cpu",
    )


def build_reference(backbone: Path):
    import sentence_transformers.sentence_transformer.modules as modules
    from sentence_transformers import SentenceTransformer

    return build(SentenceTransformer, modules, backbone)


def file_tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) + ("/" if p.is_dir() else "") for p in folder.rglob("*"))


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        backbone = tiny_bert(Path(tmp) / "bert")
        build_reference(backbone).save(str(Path(tmp) / "saved"))
        target = HERE / "dense_prompts"
        shutil.rmtree(target, ignore_errors=True)
        for name in GOLDEN_FILES:
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            text = (Path(tmp) / "saved" / name).read_text()
            if name == "config_sentence_transformers.json":
                config = json.loads(text)
                config.pop("__version__")
                text = json.dumps(config, indent=2, sort_keys=True)
            (target / name).write_text(text)
        (target / "FILES.txt").write_text("\n".join(file_tree(Path(tmp) / "saved")) + "\n")


if __name__ == "__main__":
    main()
