"""Video inputs through tiny video-language backbones: the same vectors as sentence-transformers 6.2.

Qwen2-VL, Qwen2.5-VL, Qwen3-VL and LLaVA-OneVision are built from configs, saved as plain Hugging Face
folders and loaded by both libraries in this run; every input kind is encoded by both (max abs diff 1e-5 in
float32), and folders saved by either load in the other. Video files are made here with PyAV.

transformers' video processors need torchvision, which the main environment (CPU torch 2.13) cannot load:
these tests run in .venv-video (``scripts/setup.sh video``; ``scripts/test.sh`` runs them there) and are
skipped elsewhere.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

SKIP = "video tests need torchvision and PyAV: run them in .venv-video (scripts/setup.sh video)"
pytest.importorskip("torchvision", reason=SKIP)
pytest.importorskip("av", reason=SKIP)

import torch  # noqa: E402
from PIL import Image  # noqa: E402
from sentence_transformers import SentenceTransformer as Reference  # noqa: E402
from transformers.utils.import_utils import is_torchcodec_usable  # noqa: E402
from transformers.video_utils import load_video  # noqa: E402

from embedstack import SentenceTransformer  # noqa: E402
from embedstack.errors import MissingExtraError  # noqa: E402
from helpers import cli_info  # noqa: E402
from multimodal_backbones import sample_images  # noqa: E402
from video_backbones import (  # noqa: E402
    qwen2_vl_files,
    sample_frames,
    tiny_llava_onevision,
    tiny_qwen2_vl,
    tiny_qwen3_vl,
    write_video,
)

pytestmark = pytest.mark.video
TOLERANCE = 1e-5
BUILDERS = {
    "qwen2_vl": lambda path: tiny_qwen2_vl(path, version="2"),
    "qwen2_5_vl": lambda path: tiny_qwen2_vl(path, version="2.5"),
    "qwen3_vl": tiny_qwen3_vl,
    "llava_onevision": tiny_llava_onevision,
}
# Per call, a frame sampling that differs from the backbone's default. Qwen3-VL samples at 2 fps by default
# (num_frames and fps exclude each other), the others take every frame.
SAMPLING = {"qwen3_vl": {"do_sample_frames": False}}
DEFAULT_SAMPLING = {"do_sample_frames": True, "num_frames": 2}
# LLaVA-OneVision's video processor stacks the videos of a batch, so they need one frame count.
SECOND_VIDEO_FRAMES = {"llava_onevision": 6}


def assert_close(actual, expected) -> None:
    assert actual.shape == expected.shape
    assert np.abs(actual - expected).max() <= TOLERANCE


@pytest.fixture(scope="module", params=list(BUILDERS))
def backbone(request, tmp_path_factory):
    return request.param, BUILDERS[request.param](tmp_path_factory.mktemp(request.param))


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """An 8-frame, 4 fps MPEG-4 file, and its frames and metadata as transformers' own PyAV reader gives them."""
    path = write_video(tmp_path_factory.mktemp("clip") / "clip.mp4", sample_frames(8, seed=1), fps=4)
    frames, metadata = load_video(str(path), backend="pyav")
    return str(path), {"array": frames, "video_metadata": dict(metadata.items())}


def video_cases(name: str, clip) -> list[tuple[str, list, list | None, dict]]:
    """(case, our inputs, the reference's inputs when they differ, encode kwargs): what ``name`` is compared on."""
    path, decoded = clip
    count = SECOND_VIDEO_FRAMES.get(name, 4)
    frames, other, third = sample_frames(6), sample_frames(count, seed=2), sample_frames(count, seed=3)
    tensor = torch.from_numpy(frames).permute(0, 3, 1, 2)  # (frames, C, H, W)
    pil_frames = [Image.fromarray(frame) for frame in frames]
    with_metadata = {"array": frames, "video_metadata": {"fps": 3.0, "total_num_frames": 6}}
    image = sample_images(1)[0]

    def chat(video):
        return [
            {"role": "user", "content": [{"type": "video", "video": video}, {"type": "text", "text": "what moves"}]}
        ]

    file_metadata = {"video": {"video_metadata": [decoded["video_metadata"]]}}
    sampled = {"video": SAMPLING.get(name, DEFAULT_SAMPLING)}
    return [
        ("video file", [path], [decoded], {}),
        ("4-D array (T, H, W, C)", [frames], [frames], {}),
        ("4-D tensor (T, C, H, W)", [tensor], [tensor], {}),
        ("5-D array, one video", [frames[None]], [frames], {}),  # the reference fails on 5-D in a chat model
        ("5-D array, two videos", [np.stack([other, third])], [{"video": [other, third]}], {}),
        ("frame list", [{"video": pil_frames}], [{"video": pil_frames}], {}),
        ("array + video_metadata", [with_metadata], [with_metadata], {}),
        ("two videos", [frames, other], [frames, other], {}),
        ("video in a message", [chat(frames)], [chat(frames)], {}),
        ("video file in a message", [chat(path)], [chat(decoded["array"])], {"processing_kwargs": file_metadata}),
        ("text + video dicts", [{"text": "a caption", "video": frames}, {"text": "another", "video": other}], None, {}),
        ("mixed batch", ["a text", frames, {"text": "a caption", "video": other}, image], None, {}),
        ("prompt", [frames], [frames], {"prompt": "Describe the video."}),
        ("per-call frame sampling", [frames], [frames], {"processing_kwargs": sampled}),
        (
            "file, per-call fps",
            [path],
            [decoded],
            {"processing_kwargs": {"video": {"do_sample_frames": True, "fps": 2}}},
        ),
        ("images", sample_images(2), sample_images(2), {}),
    ]


def test_video_inputs_match_the_reference(backbone, clip):
    name, path = backbone
    ours, theirs = SentenceTransformer(str(path), device="cpu"), Reference(str(path), device="cpu")
    assert repr(ours) == repr(theirs)
    assert ours.modalities == theirs.modalities == ["text", "image", "video", "message"]
    for case, mine, reference_inputs, kwargs in video_cases(name, clip):
        expected = theirs.encode(reference_inputs if reference_inputs is not None else mine, **kwargs)
        actual = ours.encode(mine, **kwargs)
        assert actual.shape == expected.shape, case
        assert np.abs(actual - expected).max() <= TOLERANCE, f"{name}: {case}"
    frames = sample_frames(6)
    sampled = ours.encode([frames], processing_kwargs={"video": SAMPLING.get(name, DEFAULT_SAMPLING)})
    assert not np.allclose(ours.encode([frames]), sampled)  # the per-call option reaches the video processor


def test_reference_cannot_decode_files_here(backbone, clip):
    """Why the file cases compare against decoded frames: without torchcodec, transformers (and so
    sentence-transformers) cannot read a video file at all; embedstack decodes it with PyAV."""
    if is_torchcodec_usable(decode="video"):
        pytest.skip("torchcodec is usable here: transformers decodes files itself")
    name, path = backbone
    with pytest.raises(ImportError, match="torchcodec"):
        Reference(str(path), device="cpu").encode([clip[0]])


def test_saved_by_either_loads_in_both(backbone, tmp_path):
    name, path = backbone
    videos = [sample_frames(6), sample_frames(6, seed=2)]
    expected = Reference(str(path), device="cpu").encode(videos)
    for writer in (SentenceTransformer, Reference):
        folder = tmp_path / writer.__module__
        writer(str(path), device="cpu").save(str(folder))
        assert (folder / "video_preprocessor_config.json").is_file() or "video_processor" in json.loads(
            (folder / "processor_config.json").read_text()
        )
        for reader in (SentenceTransformer, Reference):
            assert_close(reader(str(folder), device="cpu").encode(videos), expected)


def test_processing_kwargs_per_module_are_saved(tmp_path_factory, tmp_path):
    import sentence_transformers.sentence_transformer.modules as reference_modules

    import embedstack.modules as our_modules

    path = tiny_qwen2_vl(tmp_path_factory.mktemp("qwen2-vl-kwargs"))
    per_module = {"video": {"do_sample_frames": True, "num_frames": 2}}

    def build(modules, library):
        transformer = modules.Transformer(str(path), processing_kwargs=per_module)
        return library(modules=[transformer, modules.Pooling(32, pooling_mode="lasttoken")], device="cpu")

    ours, theirs = build(our_modules, SentenceTransformer), build(reference_modules, Reference)
    frames = [sample_frames(8)]
    assert_close(ours.encode(frames), theirs.encode(frames))
    assert not np.allclose(ours.encode(frames), SentenceTransformer(str(path), device="cpu").encode(frames))
    per_call = {"video": {"num_frames": 4}}  # overrides the module's num_frames, keeps its do_sample_frames
    assert_close(ours.encode(frames, processing_kwargs=per_call), theirs.encode(frames, processing_kwargs=per_call))
    ours.save(str(tmp_path / "saved"))
    assert json.loads((tmp_path / "saved" / "sentence_bert_config.json").read_text())["processing_kwargs"] == per_module
    assert_close(Reference(str(tmp_path / "saved"), device="cpu").encode(frames), theirs.encode(frames))


def test_video_url(tmp_path_factory, clip):
    """A video URL is fetched and decoded like the file (a server on 127.0.0.1 in this process)."""
    import functools
    import http.server
    import threading
    from pathlib import Path

    path = tiny_qwen2_vl(tmp_path_factory.mktemp("qwen2-vl-url"))
    model = SentenceTransformer(str(path), device="cpu")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(Path(clip[0]).parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/clip.mp4"
        assert_close(model.encode([url]), model.encode([clip[0]]))
    finally:
        server.shutdown()
        thread.join(timeout=10)


def test_missing_torchvision_or_pyav_names_the_environment(tmp_path_factory, clip, monkeypatch):
    import importlib.util

    path = tiny_qwen2_vl(tmp_path_factory.mktemp("qwen2-vl-missing"))
    model = SentenceTransformer(str(path), device="cpu")
    real_find_spec = importlib.util.find_spec
    hidden: set[str] = set()
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name in hidden else real_find_spec(name, *a)
    )
    hidden.add("torchvision")
    with pytest.raises(MissingExtraError, match=r"needs? torchvision.*scripts/setup\.sh video"):
        model.encode([sample_frames(4)])
    hidden.clear()
    hidden.add("av")
    if not is_torchcodec_usable(decode="video"):
        with pytest.raises(MissingExtraError, match=r"PyAV is not installed.*pip install av"):
            model.encode([clip[0]])
    model.encode(["a text"])  # the rest still works


def test_folder_written_without_torchvision_runs_here(tmp_path):
    """The folder test_multimodal.py loads where torchvision is missing is a working model where it is present."""
    folder = qwen2_vl_files(tmp_path / "qwen2-vl")
    ours, theirs = SentenceTransformer(str(folder), device="cpu"), Reference(str(folder), device="cpu")
    assert ours.modalities == ["text", "image", "video", "message"]
    videos = [sample_frames(6), "a text"]
    assert_close(ours.encode(videos), theirs.encode(videos))


def test_info_lists_video(tmp_path_factory):
    paths = {
        "qwen2_vl": tiny_qwen2_vl(tmp_path_factory.mktemp("qwen2-vl-info")),
        "llava_onevision": tiny_llava_onevision(tmp_path_factory.mktemp("onevision-info")),
    }
    for name, result in cli_info(paths).items():
        assert result.returncode == 0, result.stderr
        assert "Modalities: text, image, video, message" in result.stdout.splitlines(), (name, result.stdout)


@pytest.mark.parametrize(
    ("url", "watch"),
    [
        ("https://youtu.be/abc123", "https://www.youtube.com/watch?v=abc123"),
        ("https://youtu.be/abc123?t=42", "https://www.youtube.com/watch?v=abc123&t=42"),
        ("https://m.youtube.com/watch?v=abc123", "https://www.youtube.com/watch?v=abc123"),
        ("https://www.youtube.com/watch?v=abc123", "https://www.youtube.com/watch?v=abc123"),
    ],
)
def test_short_and_mobile_youtube_links_reach_transformers_as_watch_urls(url, watch):
    from embedstack.modules.transformer.video import youtube_watch_url

    assert youtube_watch_url(url) == watch
