"""Hostile and damaged model folders: each case mutates a good folder; loading must raise the named error.

Used by tests/persistence/test_hostile_folders.py; ``python tests/hostile_cases.py`` prints what a user sees.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from embedstack.errors import ModelFormatError, UnknownModuleTypeError, UntrustedCodeError

MARKER = "payload_ran.txt"  # a payload that runs writes this file next to the folder


@dataclass
class Case:
    name: str
    mutate: Callable[[Path], None]
    error: type[Exception] | None  # None: loads fine (and must give the original vectors)
    match: str = ""


def _json(path: Path, value) -> None:
    path.write_text(json.dumps(value))


def _edit_json(path: Path, **changes) -> None:
    data = json.loads(path.read_text())
    data.update(changes)
    _json(path, data)


def _entries(folder: Path, index: int, **changes) -> None:
    entries = json.loads((folder / "modules.json").read_text())
    entries[index].update(changes)
    _json(folder / "modules.json", entries)


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


class _Payload:
    """Unpickling this runs code: it writes MARKER (a stand-in for anything worse)."""

    def __init__(self, target: str) -> None:
        self.target = target

    def __reduce__(self):
        return (Path(self.target).write_text, ("pwned",))


def _pickle_payload(path: Path) -> None:
    with open(path, "wb") as handle:
        pickle.dump({"linear.weight": _Payload(str(path.parent.parent.parent / MARKER))}, handle)


def _evil_py(folder: Path) -> None:
    marker = folder.parent / MARKER
    (folder / "evil.py").write_text(f"open({str(marker)!r}, 'w').write('pwned')\nclass Payload: pass\n")


def _evil_modeling(folder: Path) -> None:
    marker = folder.parent / MARKER
    (folder / "modeling_evil.py").write_text(f"open({str(marker)!r}, 'w').write('pwned')\n")


def _bin_with_payload(folder: Path) -> None:
    _pickle_payload(folder / "2_Dense" / "pytorch_model.bin")
    (folder / "2_Dense" / "model.safetensors").unlink()


def _bin_beside_safetensors(folder: Path) -> None:
    _pickle_payload(folder / "2_Dense" / "pytorch_model.bin")


def _symlink_out(folder: Path) -> None:
    outside = folder.parent / "outside"
    shutil.copytree(folder / "1_Pooling", outside)
    shutil.rmtree(folder / "1_Pooling")
    os.symlink(outside, folder / "1_Pooling")


def _router_escape(folder: Path) -> None:
    _entries(folder, 0, type="sentence_transformers.base.modules.router.Router", path="0_Router")
    (folder / "0_Router").mkdir()
    _json(
        folder / "0_Router" / "router_config.json",
        {"types": {"../..": "sentence_transformers.models.Pooling"}, "structure": {"a": ["../.."]}, "parameters": {}},
    )


def _router_code_in_key(folder: Path) -> None:
    _entries(folder, 0, type="sentence_transformers.base.modules.router.Router", path="0_Router")
    (folder / "0_Router").mkdir()
    marker = folder.parent / MARKER
    _json(
        folder / "0_Router" / "router_config.json",
        {
            "types": {},
            "structure": {"a": []},
            "parameters": {"route_mappings": {f"open({str(marker)!r}, 'w').write('x')": "a"}},
        },
    )


def _word_embeddings_tokenizer_class(folder: Path) -> None:
    _entries(folder, 0, type="sentence_transformers.models.WordEmbeddings", path="0_WordEmbeddings")
    (folder / "0_WordEmbeddings").mkdir()
    _json(folder / "0_WordEmbeddings" / "wordembedding_config.json", {"tokenizer_class": "os.system"})


def _dense_shape(folder: Path) -> None:
    _edit_json(folder / "2_Dense" / "config.json", out_features=16)


def _dense_names(folder: Path) -> None:
    from safetensors.torch import save_file

    save_file({"weight": torch.zeros(8, 32)}, folder / "2_Dense" / "model.safetensors")


def _tokenizer_gone(folder: Path) -> None:
    for name in ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json"):
        (folder / name).unlink(missing_ok=True)


CASES = [
    Case(
        "modules.json cut short",
        lambda f: _truncate(f / "modules.json"),
        ModelFormatError,
        r"modules\.json is not valid JSON",
    ),
    Case(
        "modules.json not a list",
        lambda f: _json(f / "modules.json", {"a": 1}),
        ModelFormatError,
        "non-empty JSON list",
    ),
    Case("modules.json entry without type", lambda f: _entries(f, 1, type=None), ModelFormatError, "no string 'type'"),
    Case("modules.json name used twice", lambda f: _entries(f, 1, name="0"), ModelFormatError, "module name twice"),
    Case(
        "unknown module type (typo)",
        lambda f: _entries(f, 1, type="sentence_transformers.models.Poling"),
        UnknownModuleTypeError,
        "Did you mean: sentence_transformers.models.Pooling",
    ),
    Case(
        "custom module type with code in the folder",
        lambda f: (_evil_py(f), _entries(f, 1, type="evil.Payload")),
        UntrustedCodeError,
        r"class Payload in .*evil\.py.*trust_remote_code=True",
    ),
    Case(
        "custom module type naming an installed module",
        lambda f: _entries(f, 1, type="os.system"),
        UntrustedCodeError,
        "installed Python module 'os'",
    ),
    Case("module path with ..", lambda f: _entries(f, 1, path="../x"), ModelFormatError, "outside the model folder"),
    Case("absolute module path", lambda f: _entries(f, 1, path="/etc"), ModelFormatError, "outside the model folder"),
    Case("module folder symlinked outside", _symlink_out, ModelFormatError, "outside the model folder"),
    Case("Router module id with ..", _router_escape, ModelFormatError, "outside the model folder"),
    Case("Router route key holding code", _router_code_in_key, ModelFormatError, r"not a \(task, modality\) pair"),
    Case(
        "WordEmbeddings tokenizer_class outside embedstack",
        _word_embeddings_tokenizer_class,
        UntrustedCodeError,
        "tokenizer_class.*'os.system'",
    ),
    Case(
        "Pooling config cut short",
        lambda f: _truncate(f / "1_Pooling" / "config.json"),
        ModelFormatError,
        r"1_Pooling/config\.json is not valid JSON",
    ),
    Case(
        "Pooling config with an unknown key",
        lambda f: _edit_json(f / "1_Pooling" / "config.json", pooling_colour="red"),
        ModelFormatError,
        r"1_Pooling/config\.json.*pooling_colour",
    ),
    Case(
        "Pooling mode that does not exist",
        lambda f: _edit_json(f / "1_Pooling" / "config.json", pooling_mode="median"),
        ModelFormatError,
        r"1_Pooling: ValueError: Unknown pooling_mode 'median'",
    ),
    Case(
        "Dense activation outside torch",
        lambda f: _edit_json(f / "2_Dense" / "config.json", activation_function="os.system"),
        UntrustedCodeError,
        r"2_Dense/config\.json.*'os\.system'",
    ),
    Case(
        "Dense activation that is no class",
        lambda f: _edit_json(f / "2_Dense" / "config.json", activation_function="torch.nn.NoSuchThing"),
        ModelFormatError,
        "does not name an importable class",
    ),
    Case(
        "Dense weights missing",
        lambda f: (f / "2_Dense" / "model.safetensors").unlink(),
        ModelFormatError,
        "no model.safetensors",
    ),
    Case(
        "Dense weights cut short",
        lambda f: _truncate(f / "2_Dense" / "model.safetensors"),
        ModelFormatError,
        r"2_Dense/model\.safetensors could not be read",
    ),
    Case("Dense weights of another shape", _dense_shape, ModelFormatError, r"shapes do not match.*linear\.weight"),
    Case(
        "Dense weights with other names",
        _dense_names,
        ModelFormatError,
        r"missing keys \['linear.bias', 'linear.weight'\]",
    ),
    Case("pickled Dense weights with a payload", _bin_with_payload, ModelFormatError, "refuses to unpickle"),
    Case("pickled weights beside safetensors (ignored)", _bin_beside_safetensors, None),
    Case(
        "sentence_bert_config.json cut short",
        lambda f: _truncate(f / "sentence_bert_config.json"),
        ModelFormatError,
        r"sentence_bert_config\.json is not valid JSON",
    ),
    Case(
        "backbone weights cut short",
        lambda f: _truncate(f / "model.safetensors"),
        ModelFormatError,
        "Transformer could not be loaded from .*SafetensorError",
    ),
    Case("backbone config.json cut short", lambda f: _truncate(f / "config.json"), ModelFormatError, r"config\.json"),
    Case("tokenizer files missing", _tokenizer_gone, ModelFormatError, "tokenizer"),
    Case(
        "backbone config.json with auto_map for a known architecture (ignored)",
        lambda f: (_evil_modeling(f), _edit_json(f / "config.json", auto_map={"AutoModel": "modeling_evil.EvilModel"})),
        None,
    ),
    Case(
        "backbone config.json naming custom modeling code",
        lambda f: (
            _evil_modeling(f),
            _edit_json(
                f / "config.json",
                model_type="evil",
                auto_map={"AutoConfig": "modeling_evil.EvilConfig", "AutoModel": "modeling_evil.EvilModel"},
            ),
        ),
        UntrustedCodeError,
        "trust_remote_code=True",
    ),
    Case(
        "trust_remote_code set inside a config file",
        lambda f: _edit_json(
            f / "sentence_bert_config.json",
            model_kwargs={"trust_remote_code": True},
            config_kwargs={"trust_remote_code": True},
        ),
        None,
    ),
    Case(
        "tokenizer_name_or_path outside the folder",
        lambda f: _edit_json(f / "sentence_bert_config.json", tokenizer_name_or_path="../../elsewhere"),
        ModelFormatError,
        "tokenizer_name_or_path.*outside the model folder",
    ),
    Case(
        "cache_dir and offload_folder set inside a config file (ignored)",
        lambda f: _edit_json(
            f / "sentence_bert_config.json",
            model_kwargs={"cache_dir": str(f.parent / MARKER), "offload_folder": str(f.parent / MARKER)},
        ),
        None,
    ),
    Case(
        "prompts of the wrong type",
        lambda f: _edit_json(f / "config_sentence_transformers.json", prompts=["query: "]),
        ModelFormatError,
        "key 'prompts' has the wrong type",
    ),
    Case(
        "unmet requirement",
        lambda f: _edit_json(f / "config_sentence_transformers.json", requirements={"torch": ">=99"}),
        ImportError,
        r"pip install 'torch>=99'",
    ),
]


def _print_table() -> None:
    import tempfile

    from embedstack import SentenceTransformer
    from embedstack.modules import Dense, Normalize, Pooling, Transformer
    from helpers import tiny_bert

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base"
        backbone = tiny_bert(Path(tmp) / "bert")
        modules = [Transformer(str(backbone)), Pooling(32), Dense(32, 8), Normalize()]
        SentenceTransformer(modules=modules, device="cpu").save(str(base))
        print("| case | what the user sees |\n|---|---|")
        for index, case in enumerate(CASES):
            folder = Path(tmp) / f"case{index}" / "model"
            shutil.copytree(base, folder, symlinks=True)
            case.mutate(folder)
            try:
                SentenceTransformer(str(folder), device="cpu")
                seen = "loads (same vectors)"
            except Exception as exc:  # noqa: BLE001 - the table shows whatever is raised
                seen = f"`{type(exc).__name__}`: {str(exc).replace(str(folder), '<model>').replace('|', '/')}"
            print(f"| {case.name} | {seen} |")


if __name__ == "__main__":
    _print_table()
