"""The Hub is resolved once, by the model, with the caller's options, and only the files a load reads are fetched.

huggingface_hub's two entry points that persistence/hub.py calls (``HfApi.model_info`` to list a repository at one
commit, ``snapshot_download`` to fetch files into the cache) are replaced by a fake Hub that serves local folders
and records every call: no network, and the real loading code runs on what it fetched.
"""

from __future__ import annotations

import fnmatch
import shutil
from pathlib import Path
from types import SimpleNamespace

import huggingface_hub
import huggingface_hub.constants
import numpy as np
import pytest

from embedstack import SentenceTransformer
from embedstack.errors import ModelNotFoundError
from embedstack.persistence.hub import select_model_files

# The files of sentence-transformers/all-MiniLM-L6-v2 on the Hub.
MINILM_REPO_FILES = [
    ".gitattributes",
    "1_Pooling/config.json",
    "README.md",
    "config.json",
    "config_sentence_transformers.json",
    "data_config.json",
    "model.safetensors",
    "modules.json",
    "onnx/model.onnx",
    "onnx/model_O1.onnx",
    "onnx/model_qint8_avx512_vnni.onnx",
    "openvino/openvino_model.bin",
    "openvino/openvino_model.xml",
    "pytorch_model.bin",
    "rust_model.ot",
    "sentence_bert_config.json",
    "special_tokens_map.json",
    "tf_model.h5",
    "tokenizer.json",
    "tokenizer_config.json",
    "train_script.py",
    "vocab.txt",
]
NOT_READ = {  # other frameworks' exports and the pickle beside model.safetensors
    "onnx/model.onnx",
    "onnx/model_O1.onnx",
    "onnx/model_qint8_avx512_vnni.onnx",
    "openvino/openvino_model.bin",
    "openvino/openvino_model.xml",
    "pytorch_model.bin",
    "rust_model.ot",
    "tf_model.h5",
}
NEEDED = [name for name in MINILM_REPO_FILES if name not in NOT_READ]


@pytest.mark.parametrize(
    "files, backend, expected",
    [
        (MINILM_REPO_FILES, "torch", NEEDED),
        (MINILM_REPO_FILES, "onnx", sorted([*NEEDED, *(f for f in MINILM_REPO_FILES if f.startswith("onnx/"))])),
        # pickled weights only where a folder has no safetensors; training arguments never
        (["pytorch_model.bin", "2_Dense/pytorch_model.bin", "2_Dense/config.json"], "torch", None),
        (["model.safetensors", "2_Dense/pytorch_model.bin", "training_args.bin"], "torch", None),
        (
            ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors", "pytorch_model-00001.bin"],
            "torch",
            None,
        ),
        (["flax_model.msgpack", "model.gguf", "coreml/model.mlmodel", "tokenizer.model", "x.py"], "torch", None),
    ],
)
def test_select_model_files(files, backend, expected):
    chosen = sorted(select_model_files(files, backend=backend))
    if expected is None:  # rows whose answer is written out below
        expected = {
            ("pytorch_model.bin", "2_Dense/pytorch_model.bin", "2_Dense/config.json"): sorted(files),
            ("model.safetensors", "2_Dense/pytorch_model.bin", "training_args.bin"): [
                "2_Dense/pytorch_model.bin",
                "model.safetensors",
            ],
            (
                "model-00001-of-00002.safetensors",
                "model-00002-of-00002.safetensors",
                "pytorch_model-00001.bin",
            ): ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"],
            ("flax_model.msgpack", "model.gguf", "coreml/model.mlmodel", "tokenizer.model", "x.py"): [
                "tokenizer.model",
                "x.py",
            ],
        }[tuple(files)]
    assert chosen == sorted(expected)


class FakeHub:
    """Serves local folders as Hub repositories; records what was asked, with which options."""

    def __init__(self, repos: dict[str, Path]):
        self.repos = repos
        self.info_calls: list[dict] = []
        self.downloads: list[dict] = []

    def files(self, repo_id: str) -> list[str]:
        root = self.repos[repo_id]
        return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())

    def model_info(self, repo_id, *, revision=None, token=None, **kwargs):
        if repo_id not in self.repos:
            raise huggingface_hub.errors.RepositoryNotFoundError(f"{repo_id} not found", response=None)
        self.info_calls.append({"repo_id": repo_id, "revision": revision, "token": token})
        siblings = [SimpleNamespace(rfilename=name) for name in self.files(repo_id)]
        return SimpleNamespace(siblings=siblings, sha=f"sha-of-{revision or 'main'}")

    def snapshot_download(self, repo_id, *, revision=None, cache_dir=None, token=None, allow_patterns=None, **kw):
        target = Path(cache_dir) / repo_id.replace("/", "--") / str(revision)
        if kw.get("local_files_only"):  # the cache only; nothing recorded as a download
            if not target.is_dir():
                raise huggingface_hub.errors.LocalEntryNotFoundError(f"{repo_id} is not in the cache")
            return str(target)
        self.downloads.append({"repo_id": repo_id, "revision": revision, "cache_dir": cache_dir, "token": token, **kw})
        fetched = [
            name
            for name in self.files(repo_id)
            if allow_patterns is None or any(fnmatch.fnmatch(name, pattern) for pattern in allow_patterns)
        ]
        self.downloads[-1]["files"] = fetched
        for name in fetched:
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.repos[repo_id] / name, target / name)
        return str(target)


@pytest.fixture
def hub(monkeypatch, tmp_path, minilm_path):
    model_repo = tmp_path / "repos" / "model"
    shutil.copytree(minilm_path, model_repo)
    for junk in ("onnx/model.onnx", "openvino/openvino_model.bin", "pytorch_model.bin", "tf_model.h5", "rust_model.ot"):
        (model_repo / junk).parent.mkdir(parents=True, exist_ok=True)
        (model_repo / junk).write_bytes(b"not needed")
    code_repo = tmp_path / "repos" / "code"
    code_repo.mkdir(parents=True)
    (code_repo / "scaled.py").write_text(
        "from embedstack.modules import Normalize\n\n\nclass ScaledNormalize(Normalize):\n"
        "    def forward(self, features, **kwargs):\n"
        "        features = super().forward(features)\n"
        "        features['sentence_embedding'] = features['sentence_embedding'] * 2\n"
        "        return features\n"
    )
    (code_repo / "big_weights.bin").write_bytes(b"not needed")
    modules = (model_repo / "modules.json").read_text()
    modules = modules.replace("sentence_transformers.models.Normalize", "my-user/code--scaled.ScaledNormalize").replace(
        "sentence_transformers.sentence_transformer.modules.normalize.Normalize", "my-user/code--scaled.ScaledNormalize"
    )
    assert "my-user/code--scaled.ScaledNormalize" in modules
    (model_repo / "modules.json").write_text(modules)
    fake = FakeHub({"my-user/my-model": model_repo, "my-user/code": code_repo})
    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", fake.model_info)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake.snapshot_download)
    monkeypatch.setattr(huggingface_hub.constants, "is_offline_mode", lambda: False)
    return fake


def test_a_hub_load_uses_the_callers_options_everywhere_and_fetches_only_what_it_reads(hub, tmp_path, minilm):
    cache = tmp_path / "cache"
    model = SentenceTransformer(
        "my-user/my-model",
        token="secret-token",
        revision="v1.0",
        cache_folder=str(cache),
        trust_remote_code=True,
        model_kwargs={"code_revision": "code-v2"},
        device="cpu",
    )
    assert [call["repo_id"] for call in hub.info_calls] == ["my-user/my-model", "my-user/code"]
    assert {call["token"] for call in hub.info_calls} == {"secret-token"}
    assert {download["token"] for download in hub.downloads} == {"secret-token"}
    assert {download["cache_dir"] for download in hub.downloads} == {str(cache)}
    model_download, code_download = hub.downloads
    # the model at the caller's revision (pinned to the commit listed), the code repository at code_revision
    assert hub.info_calls[0]["revision"] == "v1.0" and model_download["revision"] == "sha-of-v1.0"
    assert hub.info_calls[1]["revision"] == "code-v2" and code_download["revision"] == "sha-of-code-v2"
    assert not any(name.startswith(("onnx/", "openvino/")) for name in model_download["files"])
    assert not {"pytorch_model.bin", "tf_model.h5", "rust_model.ot"} & set(model_download["files"])
    assert {"model.safetensors", "tokenizer.json", "modules.json", "1_Pooling/config.json"} <= set(
        model_download["files"]
    )
    assert code_download["files"] == ["scaled.py"]
    # the loaded model runs the custom module from the code repository on the fetched weights
    texts = ["A man is eating food.", "A plane is taking off."]
    np.testing.assert_allclose(model.encode(texts), 2 * minilm.encode(texts), atol=1e-6)


def test_the_model_is_resolved_once_and_modules_get_local_paths(hub, tmp_path):
    SentenceTransformer("my-user/my-model", cache_folder=str(tmp_path / "c"), trust_remote_code=True, device="cpu")
    assert [download["repo_id"] for download in hub.downloads] == ["my-user/my-model", "my-user/code"]


def test_local_files_only_never_lists_the_hub(hub, tmp_path):
    with pytest.raises(ModelNotFoundError, match="my-user/my-model"):
        SentenceTransformer("my-user/my-model", cache_folder=str(tmp_path / "empty"), local_files_only=True)
    assert hub.info_calls == []


def test_untrusted_code_repository_is_not_fetched(hub, tmp_path):
    from embedstack.errors import UntrustedCodeError

    with pytest.raises(UntrustedCodeError, match="my-user/code"):
        SentenceTransformer("my-user/my-model", cache_folder=str(tmp_path / "c"), device="cpu")
    assert [download["repo_id"] for download in hub.downloads] == ["my-user/my-model"]
