"""Table of inputs -> modality for embedstack.inputs: one row per (function, input, supported modalities) with the
expected result or the expected error. Paths marked Existing(...) are created in tmp_path first; Missing(...) are
not."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from embedstack.errors import UnsupportedModalityError
from embedstack.inputs import (
    check_modality,
    classify_batch,
    format_modality,
    infer_batch_modality,
    infer_modality,
    media_kind_of_string,
    supports,
)


@dataclass(frozen=True)
class Existing:
    """A file (or, with folder=True, a directory) of this name in tmp_path, created before the call."""

    name: str
    folder: bool = False


@dataclass(frozen=True)
class Missing:
    """A path of this name in tmp_path that does not exist."""

    name: str


@dataclass(frozen=True)
class Raises:
    error: type[Exception]
    match: str


class FakeVideoDecoder:
    """Stands in for torchcodec's decoders, which are recognised by module and class name."""


FakeVideoDecoder.__module__ = "torchcodec.decoders"


class FakeAudioDecoder:
    pass


FakeAudioDecoder.__module__ = "torchcodec.decoders"


class HasNdim:
    """Array-like by duck typing: ndim and shape."""

    def __init__(self, ndim: int) -> None:
        self.ndim = ndim
        self.shape = (2,) * ndim


class NdimOnly:
    ndim = 3  # no shape: not array-like


IMAGE = Image.new("RGB", (8, 6), color=(200, 10, 10))
GRAY = Image.new("L", (4, 4))
CLIP = np.zeros(1600, dtype=np.float32)
STEREO = np.zeros((2, 1600), dtype=np.float32)
PIXELS = np.zeros((6, 8, 3), dtype=np.uint8)
FRAMES = np.zeros((2, 6, 8, 3), dtype=np.uint8)
BATCHED_FRAMES = np.zeros((1, 2, 6, 8, 3), dtype=np.uint8)
USER = {"role": "user", "content": "hello"}
ASSISTANT = {"role": "assistant", "content": "hi"}
TEXT_IMAGE = ("image", "text")
ALL = ["text", "image", "audio", "video"]
UNSUPPORTED = UnsupportedModalityError


def infer(item, supported=None):
    return ("infer_modality", item, supported)


def batch(items, supported=None):
    return ("infer_batch_modality", items, supported)


def check(items, supported):
    return ("check_modality", items, supported)


def groups(items, supported):
    return ("classify_batch.groups", items, supported)


def media(text):
    return ("media_kind_of_string", text, None)


def can(supported, modality):
    return ("supports", modality, supported)


def fmt(modality):
    return ("format_modality", modality, None)


# (id, call, expected): call is (function, input, supported); expected is the return value or Raises(...).
ROWS: list[tuple[str, tuple, Any]] = [
    # ---- strings: text unless a media URL / data URI / existing media file that the model takes
    ("plain text", infer("a sentence"), "text"),
    ("plain text, text model", infer("a sentence", ["text"]), "text"),
    ("empty string", infer(""), "text"),
    ("image url", infer("https://example.com/cat.jpg"), "image"),
    ("image url upper case, query", infer("http://example.com/a/CAT.PNG?size=2", ALL), "image"),
    ("image url, text-only model", infer("https://example.com/cat.jpg", ["text"]), "text"),
    ("image url, image model", infer("https://example.com/cat.webp", ["text", "image"]), "image"),
    ("image url, audio model takes no images", infer("https://example.com/cat.gif", ["text", "audio"]), "text"),
    ("video url", infer("https://example.com/clip.mp4", ["text", "video"]), "video"),
    ("video url, image model", infer("https://example.com/clip.mkv", ["text", "image"]), "text"),
    ("audio url", infer("https://example.com/song.mp3", ["audio"]), "audio"),
    ("audio url flac", infer("https://example.com/a/b/song.flac"), "audio"),
    ("extension in the query only", infer("https://example.com/view?file=cat.jpg"), "text"),
    ("youtube watch url", infer("https://www.youtube.com/watch?v=abc"), "video"),
    ("youtube bare host", infer("https://youtube.com/watch?v=abc", ["video"]), "video"),
    ("youtu.be", infer("https://youtu.be/abc", ["text", "video"]), "video"),
    ("mobile youtube", infer("http://m.youtube.com/watch?v=abc"), "video"),
    ("youtube, model without video", infer("https://youtu.be/abc", ["text", "image"]), "text"),
    ("other youtube subdomain", infer("https://music.youtube.com/watch?v=abc"), "text"),
    ("web page url", infer("https://example.com/page.html"), "text"),
    ("url with a space is text", infer("https://example.com/a cat.jpg"), "text"),
    ("ftp url is not a url", infer("ftp://example.com/cat.jpg"), "text"),
    ("malformed url", infer("http://[oops/cat.png"), "text"),
    ("data image uri", infer("data:image/png;base64,iVBORw0KGgo="), "image"),
    ("data image uri, image model", infer("data:image/jpeg;base64,AAAA", ["image"]), "image"),
    ("data image uri, text model", infer("data:image/png;base64,AAAA", ["text"]), "text"),
    ("data audio uri", infer("data:audio/wav;base64,AAAA"), "text"),
    ("existing png", infer(Existing("photo.png")), "image"),
    ("existing upper-case JPEG", infer(Existing("PHOTO.JPEG"), ["text", "image"]), "image"),
    ("existing png, text model", infer(Existing("photo.png"), ["text"]), "text"),
    ("existing png, audio model", infer(Existing("photo.png"), ["text", "audio"]), "text"),
    ("existing mkv", infer(Existing("clip.mkv")), "video"),
    ("existing wav", infer(Existing("sound.wav"), ["audio"]), "audio"),
    ("existing txt", infer(Existing("notes.txt")), "text"),
    ("missing png", infer(Missing("nowhere.png")), "text"),
    ("folder named like an image", infer(Existing("album.png", folder=True)), "text"),
    # ---- text pairs and wrong-length sequences
    ("text pair tuple", infer(("a question", "an answer")), "text"),
    ("text pair list", infer(["a question", "an answer"], ["text"]), "text"),
    ("pair of empty strings", infer(("", "")), "text"),
    ("one-string tuple", infer(("alone",)), Raises(UNSUPPORTED, r"tuple of 1 items")),
    ("three strings", infer(["a", "b", "c"]), Raises(UNSUPPORTED, r"list of 3 items.*exactly two strings")),
    ("empty list", infer([]), Raises(UNSUPPORTED, r"list of 0 items")),
    ("pair with a number", infer(("a", 1)), Raises(UNSUPPORTED, r"tuple of 2 items")),
    ("list of images", infer([IMAGE, IMAGE]), Raises(UNSUPPORTED, r"list of 2 items")),
    # ---- chat messages and conversations
    ("one message", infer(USER), "message"),
    ("conversation", infer([USER, ASSISTANT]), "message"),
    ("conversation, text-only model", infer([USER], ["text"]), "message"),
    ("structured message content", infer({"role": "user", "content": [{"type": "text", "text": "x"}]}), "message"),
    ("message without content", infer([{"role": "user"}]), Raises(UNSUPPORTED, r"list of 1 items")),
    ("role-only dict", infer({"role": "user"}), Raises(UNSUPPORTED, r"not modalities: \['role'\]")),
    # ---- modality dicts
    ("text dict", infer({"text": "a caption"}), "text"),
    ("image dict", infer({"image": IMAGE}), "image"),
    ("text+image dict is sorted", infer({"text": "a caption", "image": IMAGE}), TEXT_IMAGE),
    ("image+text dict", infer({"image": IMAGE, "text": "a caption"}), TEXT_IMAGE),
    ("three modalities", infer({"video": FRAMES, "text": "t", "audio": CLIP}), ("audio", "text", "video")),
    ("empty dict", infer({}), Raises(UNSUPPORTED, r"empty dict")),
    ("unknown key", infer({"txt": "a"}), Raises(UNSUPPORTED, r"not modalities: \['txt'\]")),
    ("known and unknown keys", infer({"text": "a", "foo": 1}), Raises(UNSUPPORTED, r"not modalities: \['foo'\]")),
    ("legacy task dict", infer({"query": "a"}), Raises(UNSUPPORTED, r"\['query'\]")),
    ("non-string key", infer({1: "a"}), Raises(UNSUPPORTED, r"not modalities: \['1'\]")),
    ("audio dict", infer({"array": CLIP, "sampling_rate": 16000}), "audio"),
    ("video dict", infer({"array": FRAMES, "video_metadata": {"fps": 2}}), "video"),
    ("audio wins over video", infer({"array": CLIP, "sampling_rate": 16000, "video_metadata": {}}), "audio"),
    ("bare array dict", infer({"array": CLIP}), Raises(UNSUPPORTED, r"needs 'sampling_rate'.*\['array'\]")),
    # ---- objects: PIL images, arrays by dimension, torchcodec decoders, anything else
    ("pil rgb image", infer(IMAGE), "image"),
    ("pil grayscale image", infer(GRAY, ["text", "image"]), "image"),
    ("pil image, text model (checked later)", infer(IMAGE, ["text"]), "image"),
    ("1-d array", infer(CLIP), "audio"),
    ("2-d array", infer(STEREO), "audio"),
    ("3-d array", infer(PIXELS), "image"),
    ("4-d array", infer(FRAMES), "video"),
    ("5-d array", infer(BATCHED_FRAMES), "video"),
    ("0-d array", infer(np.array(1.0)), Raises(UNSUPPORTED, r"a ndarray is")),
    ("6-d array", infer(np.zeros((1,) * 6)), Raises(UNSUPPORTED, r"a ndarray is")),
    ("1-d tensor", infer(torch.zeros(100)), "audio"),
    ("3-d tensor", infer(torch.zeros(3, 4, 4)), "image"),
    ("duck-typed 4-d", infer(HasNdim(4)), "video"),
    ("ndim without shape", infer(NdimOnly()), Raises(UNSUPPORTED, r"a NdimOnly is")),
    ("torchcodec video decoder", infer(FakeVideoDecoder()), "video"),
    ("torchcodec audio decoder", infer(FakeAudioDecoder()), "audio"),
    ("int", infer(42), Raises(UNSUPPORTED, r"Cannot tell what kind of input a int is")),
    ("none", infer(None), Raises(UNSUPPORTED, r"a NoneType is")),
    ("bytes", infer(b"a sentence"), Raises(UNSUPPORTED, r"a bytes is")),
    ("set of strings", infer({"a", "b"}), Raises(UNSUPPORTED, r"a set is")),
    # ---- media_kind_of_string on its own (no model filter)
    ("media: text", media("just words"), None),
    ("media: jpeg url", media("https://example.com/x.jpeg"), "image"),
    ("media: bmp url", media("https://example.com/x.bmp"), "image"),
    ("media: mov url", media("https://example.com/x.MOV"), "video"),
    ("media: aac url", media("https://example.com/x.aac"), "audio"),
    ("media: youtube", media("https://youtu.be/xyz"), "video"),
    ("media: page", media("https://example.com/"), None),
    ("media: data uri", media("data:image/gif;base64,R0lGOD"), "image"),
    ("media: existing ogg", media(Existing("a.ogg")), "audio"),
    ("media: existing tiff", media(Existing("scan.tiff")), "image"),
    ("media: missing mp4", media(Missing("gone.mp4")), None),
    # ---- format_modality
    ("format text", fmt("text"), "text"),
    ("format image+text", fmt(TEXT_IMAGE), "image+text"),
    ("format three", fmt(("audio", "text", "video")), "audio+text+video"),
    # ---- supports(supported, modality)
    ("supports text", can(["text"], "text"), True),
    ("supports image? no", can(["text"], "image"), False),
    ("supports compound, unsorted ask", can(["text", TEXT_IMAGE], ("text", "image")), True),
    ("chat model takes a mix of its parts", can(["text", "image", "message"], ("text", "image")), True),
    ("no chat template, no mix", can(["text", "image"], TEXT_IMAGE), False),
    ("chat model without images", can(["text", "message"], TEXT_IMAGE), False),
    ("message needs message", can(["text", "image"], "message"), False),
    # ---- infer_batch_modality
    ("batch: empty", batch([]), "text"),
    ("batch: texts", batch(["a", "b"]), "text"),
    ("batch: strings, no model given, not looked at", batch(["a", "https://example.com/c.png"]), "text"),
    ("batch: text and image url, image model", batch(["a", "https://example.com/c.png"], ["text", "image"]), "message"),
    ("batch: image url, text model", batch(["a", "https://example.com/c.png"], ["text"]), "text"),
    ("batch: image urls", batch(["https://example.com/a.png", "https://x.org/b.jpg"], ["text", "image"]), "image"),
    ("batch: images", batch([IMAGE, PIXELS]), "image"),
    ("batch: image and text", batch([IMAGE, "a"]), "message"),
    ("batch: pair and text", batch([("a", "b"), "c"], ["text"]), "text"),
    ("batch: compound dicts", batch([{"image": IMAGE, "text": "a"}, {"text": "b", "image": IMAGE}]),
     TEXT_IMAGE),
    ("batch: unknown item", batch(["a", 42]), Raises(UNSUPPORTED, r"a int is")),
    # ---- check_modality(items, supported, "This model")
    ("check: texts", check(["a", "b"], ["text"]), "text"),
    ("check: image to text model", check([IMAGE], ["text"]),
     Raises(UNSUPPORTED, r"cannot take 'image' inputs; it takes text")),
    ("check: empty batch to image model", check([], ["image"]), Raises(UNSUPPORTED, r"cannot take 'text' inputs")),
    ("check: mix of supported kinds", check([IMAGE, "a", PIXELS], ["text", "image"]), "message"),
    ("check: mix with an unsupported kind", check(["a", IMAGE], ["text"]),
     Raises(UNSUPPORTED, r"'message' inputs \(a mix of image, text\)")),
    ("check: mix, chat model", check(["a", IMAGE], ["text", "image", "message"]), "message"),
    ("check: audio and text", check([CLIP, "a"], ["text", "audio"]), "message"),
    ("check: compound, chat model", check([{"text": "a", "image": IMAGE}], ["text", "image", "message"]),
     TEXT_IMAGE),
    ("check: compound, declared", check([{"image": IMAGE, "text": "a"}], ["text", TEXT_IMAGE]), TEXT_IMAGE),
    ("check: compound, not declared", check([{"text": "a", "image": IMAGE}], ["text", "image"]),
     Raises(UNSUPPORTED, r"cannot take 'image\+text' inputs; it takes text, image\.")),
    ("check: conversations, chat model", check([[USER, ASSISTANT], [USER]], ["text", "message"]), "message"),
    ("check: conversation, text model", check([[USER]], ["text"]),
     Raises(UNSUPPORTED, r"cannot take 'message' inputs; it takes text\.")),
    ("check: image url, image model", check(["https://example.com/a.png"], ["text", "image"]), "image"),
    ("check: error lists what the model takes", check([CLIP], ["text", TEXT_IMAGE]),
     Raises(UNSUPPORTED, r"cannot take 'audio' inputs; it takes text, image\+text\. Pass")),
    # ---- classify_batch(...).groups: positions per modality, None when one pass serves all
    ("groups: all strings", groups(["a", "b"], ["text", "image"]), None),
    ("groups: text and images", groups([IMAGE, "a", PIXELS], ["text", "image"]), {"image": [0, 2], "text": [1]}),
    ("groups: one kind", groups([IMAGE, PIXELS], ["text", "image"]), None),
    ("groups: chat model", groups([IMAGE, "a"], ["text", "image", "message"]), None),
    ("groups: legacy task dicts", groups([{"query": "a"}, IMAGE], ["text", "image"]),
     Raises(UNSUPPORTED, r"keys that are not modalities: \['query'\]")),
    ("groups: text and an image URL", groups(["a", "https://example.com/a.png"], ["text", "image"]),
     {"text": [0], "image": [1]}),
    ("groups: three kinds", groups(["a", CLIP, {"text": "t", "image": IMAGE}, "b"], ["text", "audio", TEXT_IMAGE]),
     {"text": [0, 3], "audio": [1], TEXT_IMAGE: [2]}),
    ("groups: pair and audio", groups([("q", "a"), {"array": CLIP, "sampling_rate": 8000}], ["text", "audio"]),
     {"text": [0], "audio": [1]}),
]  # fmt: skip

FUNCTIONS = {
    "infer_modality": lambda value, supported: infer_modality(value, supported),
    "infer_batch_modality": lambda value, supported: infer_batch_modality(value, supported),
    "check_modality": lambda value, supported: check_modality(value, supported, "This model"),
    "classify_batch.groups": lambda value, supported: classify_batch(value, supported, "This model").groups,
    "media_kind_of_string": lambda value, supported: media_kind_of_string(value),
    "supports": lambda value, supported: supports(supported, value),
    "format_modality": lambda value, supported: format_modality(value),
}


def resolve(value: Any, folder: Path) -> Any:
    """Replace Existing/Missing markers (anywhere in lists, tuples, dict values) by paths in ``folder``."""
    if isinstance(value, Existing):
        path = folder / value.name
        if value.folder:
            path.mkdir()
        else:
            path.write_bytes(b"\x00" * 8)
        return str(path)
    if isinstance(value, Missing):
        return str(folder / value.name)
    if isinstance(value, list):
        return [resolve(item, folder) for item in value]
    if isinstance(value, tuple):
        return tuple(resolve(item, folder) for item in value)
    if isinstance(value, dict) and not any(isinstance(key, int) for key in value):
        return {key: resolve(item, folder) for key, item in value.items()}
    return value


def test_row_ids_are_unique():
    names = [name for name, _, _ in ROWS]
    assert len(names) == len(set(names))


@pytest.mark.parametrize(("call", "expected"), [row[1:] for row in ROWS], ids=[row[0] for row in ROWS])
def test_inputs_table(call, expected, tmp_path):
    function, value, supported = call
    value = resolve(value, tmp_path)
    if isinstance(expected, Raises):
        with pytest.raises(expected.error, match=expected.match):
            FUNCTIONS[function](value, supported)
        return
    result = FUNCTIONS[function](value, supported)
    assert result == expected
    assert type(result) is type(expected)  # a compound modality is a tuple, never a list
    if isinstance(expected, dict):
        assert list(result.items()) == list(expected.items())  # groups in order of first appearance
