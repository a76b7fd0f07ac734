"""Video inputs of the Transformer module: unwrapped as sentence-transformers 6.2 does, files decoded with PyAV.

What a video may be: a file path or URL, a 4-D ``(frames, H, W, C)`` / ``(frames, C, H, W)`` array or tensor
(5-D for several), a list of frames (PIL images or 3-D arrays) under a ``"video"`` key, a
``{"array": frames, "video_metadata": {...}}`` dict, or a ``{"type": "video", "video": ...}`` part of a chat
message. Frame sampling (``fps``, ``num_frames``, ``do_sample_frames``, ...) is the video processor's, set through
``processing_kwargs={"video": {...}}`` on the module or per call.

transformers decodes video files with torchcodec (or torchvision before 0.26); where neither can, embedstack
decodes them itself with PyAV (``av``) into frames and the metadata the processor would have read (fps, frame
count), so that sampling and frame timestamps come out the same. Video processors themselves need torchvision.
"""

from __future__ import annotations

import importlib.util
import io
from collections.abc import Callable
from functools import cached_property
from typing import Any

from embedstack.errors import MissingExtraError, UnsupportedModalityError
from embedstack.inputs import YOUTUBE_HOSTS, infer_modality

VIDEO_ENVIRONMENT = (
    "In a clone of embedstack, run `scripts/setup.sh video` and use `.venv-video/bin/python` (torch 2.14.1 with "
    "torchvision 0.29.1 and PyAV); elsewhere, pip install 'embedstack[video]' with a torchvision built for your "
    "torch."
)
_MESSAGE_VIDEO_KEYS = ("video", "url", "path")


def check_video_support() -> None:
    """Raise :class:`MissingExtraError` when transformers' video processors cannot run (no torchvision)."""
    if importlib.util.find_spec("torchvision") is None:
        raise MissingExtraError(
            "Video inputs need torchvision: transformers' video processors are built on it, and it is not "
            f"installed in this environment. {VIDEO_ENVIRONMENT}"
        )


def as_sequence(value: Any) -> list | tuple:
    """``value`` itself when it is a list or tuple, else ``[value]``."""
    return value if isinstance(value, (list, tuple)) else [value]


def is_video_frames(value: Any) -> bool:
    """A non-empty list or tuple of images: the frames of one video."""
    if not isinstance(value, (list, tuple)) or not value:
        return False
    try:
        return all(infer_modality(frame) == "image" for frame in value)
    except ValueError:
        return False


class VideoUnwrapper:
    """Turns the video inputs of one batch into what the processor takes, collecting their metadata.

    One metadata entry per video (None where the input carries none), in the order the processor sees the
    videos; :meth:`metadata` then drops the list when no video has metadata, or fills the gaps, as
    sentence-transformers 6.2 does. Decoding a file or URL gives its metadata, so its frames are sampled as
    transformers would sample them from the file.
    """

    def __init__(self) -> None:
        self.entries: list[tuple[Any, Any]] = []  # (metadata or None, the video as passed on)

    @cached_property
    def _decode(self) -> Callable[[str], dict[str, Any]] | None:
        """Looked up at the first video file or URL only."""
        return file_decoder()

    def unwrap(self, value: Any) -> Any:
        """The processor's form of a video value (several videos give a list); metadata recorded."""
        if is_video_frames(value):
            value = {"array": value, "video_metadata": None}
        if getattr(value, "ndim", None) == 5:  # (videos, frames, ...): each its own video, as in a list
            value = list(value)
        if isinstance(value, (list, tuple)):
            return [video for item in value for video in as_sequence(self.unwrap(item))]
        if isinstance(value, str) and self._decode is not None:
            value = self._decode(value)
        if isinstance(value, dict):
            frames = value["array"]
            video = [list(frames)] if isinstance(frames, (list, tuple)) else frames
            self.entries.append((value.get("video_metadata"), video[0] if isinstance(video, list) else video))
            return video
        if "torchcodec" in (type(value).__module__ or "") and hasattr(value, "get_frames_in_range"):
            return self._torchcodec_frames(value)
        self.entries.append((None, value))
        return value

    def _torchcodec_frames(self, decoder: Any) -> Any:
        batch = decoder.get_frames_in_range(0, len(decoder))
        metadata = {
            "fps": decoder.metadata.average_fps,
            "total_num_frames": decoder.metadata.num_frames,
            "duration": decoder.metadata.duration_seconds,
            "frames_indices": list(range(batch.data.shape[0])),
        }
        self.entries.append((metadata, batch.data))
        return batch.data

    def message(self, conversation: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """``conversation`` with its video files and URLs decoded, in new message dicts; metadata recorded."""
        result = []
        for message in conversation:
            content = message.get("content")
            if not isinstance(content, list):
                result.append(message)
                continue
            parts = []
            for part in content:
                if isinstance(part, dict) and part.get("type") == "video":
                    part = self._message_part(part)
                parts.append(part)
            result.append({**message, "content": parts})
        return result

    def _message_part(self, part: dict[str, Any]) -> dict[str, Any]:
        key = next((key for key in _MESSAGE_VIDEO_KEYS if key in part), None)
        if key is None:
            return part
        value = part[key]
        if isinstance(value, str) and self._decode is not None:
            decoded = self._decode(value)
            self.entries.append((decoded["video_metadata"], decoded["array"]))
            return {"type": "video", "video": decoded["array"]}
        self.entries.append((None, value))
        return part

    def metadata(self) -> list[Any] | None:
        """Every video's metadata, defaults filled in; None when no video carries any.

        Raises:
            UnsupportedModalityError: Some videos carry metadata and a video file or URL that transformers
                decodes itself does not, so no list can line up with the videos.
        """
        if all(entry is None for entry, _ in self.entries):
            return None
        filled = []
        for entry, video in self.entries:
            if entry is None:
                if isinstance(video, str) or not hasattr(video, "__len__"):
                    raise UnsupportedModalityError(
                        "This batch mixes videos that carry per-sample 'video_metadata' with videos that do not. "
                        "Default metadata can only be inferred for in-memory videos (frame arrays or lists), so "
                        "either pass 'video_metadata' for every video in the batch or for none of them."
                    )
                entry = {
                    "total_num_frames": len(video),
                    "fps": None,
                    "duration": None,
                    "frames_indices": list(range(len(video))),
                }
            filled.append(entry)
        return filled


def file_decoder() -> Callable[[str], dict[str, Any]] | None:
    """How video files and URLs get decoded here: None when transformers decodes them itself (torchcodec)."""
    try:
        from transformers.utils.import_utils import is_torchcodec_usable
    except ImportError:  # transformers releases before the check: torchcodec is taken as it is found
        return decode_video if importlib.util.find_spec("torchcodec") is None else None
    return None if is_torchcodec_usable(decode="video") else decode_video


def decode_video(source: str) -> dict[str, Any]:
    """All frames of a video file or URL as ``{"array": (frames, H, W, 3) uint8, "video_metadata": {...}}``.

    The metadata is what transformers' PyAV reader reports (fps, frame count, duration, size), with every frame
    index, so the video processor samples frames from it as it would from the file.

    Raises:
        MissingExtraError: PyAV is not installed (or yt-dlp, for a YouTube URL).
    """
    if importlib.util.find_spec("av") is None:
        raise MissingExtraError(
            f"The video {source!r} is a file or URL, which embedstack decodes with PyAV (torchcodec is not usable "
            f"here), and PyAV is not installed. Run: pip install av. {VIDEO_ENVIRONMENT}"
        )
    from urllib.parse import urlparse

    if urlparse(source).netloc in YOUTUBE_HOSTS:
        return _decode_youtube(source)
    if source.startswith(("http://", "https://")):
        import httpx

        response = httpx.get(source, follow_redirects=True)
        response.raise_for_status()
        return _decode_pyav(io.BytesIO(response.content))
    return _decode_pyav(source)


def _decode_pyav(file: Any) -> dict[str, Any]:
    # Not transformers' read_video_pyav: it sizes the clip from the stream header's frame count, which is 0 for
    # some files; this counts the frames it decodes.
    import av
    import numpy as np

    with av.open(file) as container:
        stream = container.streams.video[0]
        rate = stream.average_rate
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    if not frames:
        raise UnsupportedModalityError(f"The video {getattr(file, 'name', file)!r} has no frames to decode.")
    fps = float(rate) if rate else None
    metadata = {
        "total_num_frames": len(frames),
        "fps": fps,
        "width": int(frames[0].shape[1]),
        "height": int(frames[0].shape[0]),
        "duration": len(frames) / fps if fps else None,
        "video_backend": "pyav",
        "frames_indices": list(range(len(frames))),
    }
    return {"array": np.stack(frames), "video_metadata": metadata}  # (frames, H, W, 3)


def _decode_youtube(url: str) -> dict[str, Any]:
    if importlib.util.find_spec("yt_dlp") is None:
        raise MissingExtraError(f"The video {url!r} is on YouTube; fetching it needs yt-dlp. Run: pip install yt-dlp")
    from transformers.video_utils import load_video

    frames, metadata = load_video(youtube_watch_url(url), backend="pyav")  # type: ignore[arg-type]  # URLs too
    return {"array": frames, "video_metadata": {key: metadata[key] for key in metadata}}


def youtube_watch_url(url: str) -> str:
    """``url`` on the host transformers' ``load_video`` recognises (www.youtube.com): short and mobile links moved."""
    from urllib.parse import urlparse

    parsed = urlparse(url)
    if parsed.netloc == "youtu.be":
        query = f"&{parsed.query}" if parsed.query else ""
        return f"https://www.youtube.com/watch?v={parsed.path.strip('/')}{query}"
    if parsed.netloc == "m.youtube.com":
        return parsed._replace(netloc="www.youtube.com").geturl()
    return url
