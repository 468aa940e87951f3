"""Video files with PyAV (FFmpeg's libraries inside its wheels): probe, decode, encode.

PyAV is an optional dependency (``pip install "harmonykit[video]"``); it is imported on
first use (:func:`require_av`), never at import time, and its absence is a
:class:`~harmonykit.errors.MissingDependencyError` that names the extra.

* :func:`probe` reads a clip's facts (:class:`VideoInfo`): size, frame rate, frame count,
  audio stream.
* :func:`iter_frames` decodes the first video stream as ``(H, W, 3)`` uint8 RGB frames
  (and, with ``audio=True``, yields the audio packets in file order between them, for
  remuxing); a frame the decoder rejects, or a clip that ends before its declared frame
  count, is one :class:`VideoReadError` naming the frame.
* :class:`VideoWriter` encodes frames (H.264 ``libx264``, ``yuv420p`` for even sizes,
  ``yuv444p`` otherwise) at a given frame rate and remuxes audio packets unchanged.
* :func:`prefetched` runs an iterator on a background thread (FFmpeg releases the GIL), a
  few items ahead, so decoding overlaps the network and the encoder; :func:`in_background`
  is the other end: a thread that consumes items in order (the apply and the encoder).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import numpy as np

from harmonykit.errors import ImageReadError, MissingDependencyError

__all__ = ["VIDEO_EXTENSIONS", "SizedFrame", "SmallMask", "VideoInfo", "VideoReadError", "VideoWriter", "in_background",
           "is_video_path", "iter_frames", "iter_mask_frames", "prefetched", "probe", "require_av"]

log = logging.getLogger(__name__)

#: file types treated as clips by the command line
VIDEO_EXTENSIONS = (".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi")

T = TypeVar("T")


class VideoReadError(ImageReadError):
    """A clip (or mask clip) cannot be opened or decoded: ``path: reason``."""


def require_av() -> ModuleType:
    """Import PyAV, or raise :class:`MissingDependencyError` naming the ``video`` extra."""
    try:
        import av
    except ImportError:
        raise MissingDependencyError(
            'video needs PyAV (FFmpeg inside its wheels): pip install "harmonykit[video]" (or pip install av)'
        ) from None
    return av


def is_video_path(path: str | Path) -> bool:
    """``path`` has a clip extension (:data:`VIDEO_EXTENSIONS`).

    >>> is_video_path("a/clip.MP4"), is_video_path("photo.jpg")
    (True, False)
    """
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe` reads of a clip.

    Attributes:
        path: the file.
        width, height: frame size in pixels.
        fps: average frame rate (a fraction, e.g. ``30000/1001``).
        frames: the declared frame count, or ``None`` when the container does not say.
        codec: the video codec's name.
        audio_codec: the first audio stream's codec, or ``None`` without audio.
    """

    path: Path
    width: int
    height: int
    fps: Fraction
    frames: int | None
    codec: str
    audio_codec: str | None = None

    @property
    def size(self) -> tuple[int, int]:
        """``(H, W)``."""
        return self.height, self.width

    @property
    def has_audio(self) -> bool:
        return self.audio_codec is not None


def _open(path: str | Path) -> Any:
    av = require_av()
    p = Path(path)
    if not p.is_file():
        raise VideoReadError(p, "file does not exist")
    try:
        container = av.open(str(p))
    except av.error.FFmpegError as exc:
        raise VideoReadError(p, f"not a readable video ({exc.strerror or exc})") from None
    if not container.streams.video:
        container.close()
        raise VideoReadError(p, "has no video stream")
    return container


def probe(path: str | Path) -> VideoInfo:
    """The facts of ``path`` (nothing is decoded).

    Raises:
        VideoReadError: missing file, not a video, or no video stream.
    """
    container = _open(path)
    try:
        vs = container.streams.video[0]
        cc = vs.codec_context
        rate = vs.average_rate or vs.guessed_rate or vs.base_rate or Fraction(25)
        audio = container.streams.audio[0].codec_context.name if container.streams.audio else None
        return VideoInfo(Path(path), int(cc.width), int(cc.height), Fraction(rate), int(vs.frames) or None,
                         str(cc.name), audio)
    finally:
        container.close()


@dataclass(frozen=True)
class AudioPacket:
    """An undecoded audio packet of the source, for :meth:`VideoWriter.mux_audio`."""

    packet: Any


@dataclass(frozen=True)
class SizedFrame:
    """A decoded frame and its small copy (:func:`iter_frames` with ``small``).

    Attributes:
        rgb: ``(H, W, 3)`` uint8, or ``None`` (``full=False``: not converted).
        small: ``(h, w, 3)`` uint8, scaled by FFmpeg (area averaging) from the decoded
            picture: far cheaper than resizing ``rgb``.
        size: the frame's ``(H, W)``.
    """

    rgb: np.ndarray | None
    small: np.ndarray
    size: tuple[int, int]


def iter_frames(path: str | Path, audio: bool = False, small: tuple[int, int] | None = None,
                full: bool = True) -> Iterator[Any]:
    """Decode ``path``'s first video stream: ``(H, W, 3)`` uint8 RGB arrays, in order.

    With ``audio``, the first audio stream's packets come too, as :class:`AudioPacket`
    items in file order between the frames. With ``small`` ``(h, w)``, each frame comes as
    a :class:`SizedFrame` with a copy at that size (and with ``full=False``, only that copy).

    Raises:
        VideoReadError: the file cannot be opened, a frame cannot be decoded (``frame N``,
            1-based), or the clip ends before its declared frame count.
    """
    av = require_av()
    container = _open(path)
    n = 0
    try:
        vs = container.streams.video[0]
        vs.thread_type = "AUTO"
        declared = int(vs.frames) or None
        streams = [vs]
        if audio and container.streams.audio:
            streams.append(container.streams.audio[0])
        try:
            for packet in container.demux(*streams):
                if packet.stream.type == "audio":
                    if packet.dts is not None:
                        yield AudioPacket(packet)
                    continue
                for frame in packet.decode():
                    if frame.is_corrupt:
                        raise VideoReadError(path, f"frame {n + 1} is corrupt")
                    n += 1
                    if small is None:
                        yield frame.to_ndarray(format="rgb24")
                    else:
                        yield SizedFrame(frame.to_ndarray(format="rgb24") if full else None,
                                         frame.reformat(width=small[1], height=small[0], format="rgb24",
                                                        interpolation="AREA").to_ndarray(),
                                         (int(frame.height), int(frame.width)))
        except av.error.FFmpegError as exc:
            raise VideoReadError(path, f"frame {n + 1} cannot be decoded: the clip is corrupt "
                                       f"({exc.strerror or exc})") from None
        if declared is not None and n < declared and Path(path).suffix.lower() in (".mp4", ".mov", ".m4v"):
            raise VideoReadError(path, f"ends after {n} of its {declared} frames (truncated or corrupt)")
    finally:
        container.close()


@dataclass(frozen=True)
class SmallMask:
    """A mask clip's frame decoded at a small size only (:func:`iter_mask_frames` with
    ``small``): operator-mask models need the mask at their work size, never at full size.

    Attributes:
        small: ``(h, w)`` uint8 (the maximum over RGB of FFmpeg's area-scaled frame).
        size: the full frame's ``(H, W)``.
    """

    small: np.ndarray
    size: tuple[int, int]


def iter_mask_frames(path: str | Path, small: tuple[int, int] | None = None) -> Iterator[Any]:
    """A mask clip's frames as ``(H, W)`` uint8 (the maximum over the RGB channels, so a
    grey or a coloured mask both work); with ``small`` ``(h, w)``, as :class:`SmallMask`
    items at that size instead."""
    from harmonykit.io import max_over_channels

    if small is None:
        for rgb in iter_frames(path):
            yield max_over_channels(rgb)
        return
    for frame in iter_frames(path, small=small, full=False):
        yield SmallMask(max_over_channels(frame.small), frame.size)


class VideoWriter:
    """Encode RGB frames to ``path`` at ``fps``; remux audio packets unchanged.

    Args:
        path: the output file; its suffix picks the container (``.mp4``, ``.mkv``, ``.mov``).
        width, height: frame size.
        fps: frame rate (frame ``i`` is shown at ``i / fps``).
        audio_from: a source audio stream to copy (its packets are given to
            :meth:`mux_audio`), or ``None``.
        audio_offset: seconds subtracted from the audio timestamps (the source video's
            start time, so that audio stays in sync with frames that start at 0).
        crf: x264 constant rate factor (0 lossless, 18 visually lossless, 23 default).
        preset: x264 speed preset.
    """

    def __init__(self, path: str | Path, width: int, height: int, fps: Fraction, audio_from: Any = None,
                 audio_offset: float = 0.0, crf: int = 18, preset: str = "veryfast") -> None:
        av = require_av()
        self.path = Path(path)
        fmt = {".mkv": "matroska", ".mov": "mov"}.get(self.path.suffix.lower(), "mp4")
        self._out = av.open(str(self.path), "w", format=fmt)
        self._v = self._out.add_stream("libx264", rate=Fraction(fps))
        self._v.width, self._v.height = int(width), int(height)
        self._v.pix_fmt = "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"
        self._v.options = {"crf": str(int(crf)), "preset": preset}
        self._v.codec_context.thread_count = 0  # FFmpeg picks
        self._a = None
        self._audio_shift = 0
        if audio_from is not None:
            self._a = self._out.add_stream_from_template(audio_from)
            tb = audio_from.time_base
            self._audio_shift = round(audio_offset / float(tb)) if tb else 0
        self.frames = 0

    def write(self, rgb: np.ndarray) -> None:
        """Encode one ``(H, W, 3)`` uint8 frame."""
        av = require_av()
        rgb = np.ascontiguousarray(rgb)
        h, w = rgb.shape[:2]
        frame = av.VideoFrame(w, h, "rgb24")  # a new buffer: the encoder may still hold the last one
        if frame.planes[0].line_size == 3 * w:
            frame.planes[0].update(rgb)  # one copy (from_ndarray's is ~6 times slower at 1080p)
        else:
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        frame.pts = self.frames
        frame.time_base = Fraction(1) / self._v.codec_context.framerate
        for packet in self._v.encode(frame):
            self._out.mux(packet)
        self.frames += 1

    def mux_audio(self, item: AudioPacket) -> None:
        """Copy one source audio packet (ignored without ``audio_from``)."""
        if self._a is None:
            return
        packet = item.packet
        if self._audio_shift:
            if packet.pts is not None:
                packet.pts -= self._audio_shift
            if packet.dts is not None:
                packet.dts -= self._audio_shift
        packet.stream = self._a
        self._out.mux(packet)

    def close(self) -> None:
        """Flush the encoder and finish the file."""
        for packet in self._v.encode(None):
            self._out.mux(packet)
        self._out.close()

    def abort(self) -> None:
        """Close without flushing (after an error; the file is discarded by the caller)."""
        try:
            self._out.close()
        except Exception:  # noqa: BLE001 - best effort on a broken file
            log.debug("closing an aborted video output failed", exc_info=True)


def open_source_audio(path: str | Path) -> tuple[Any, Any, float]:
    """``(container, audio stream or None, video start time in s)`` of a clip: the audio
    stream is the template of :class:`VideoWriter`'s copy. Close the container after use."""
    container = _open(path)
    vs = container.streams.video[0]
    start = float(vs.start_time * vs.time_base) if vs.start_time is not None and vs.time_base else 0.0
    audio = container.streams.audio[0] if container.streams.audio else None
    return container, audio, start


_DONE = object()


def prefetched(items: Iterable[T], depth: int = 4) -> Iterator[T]:
    """Iterate ``items`` on a daemon thread, at most ``depth`` items ahead (so memory stays
    bounded); exceptions are raised here, in order. Stopping early stops the thread."""
    q: queue.Queue[Any] = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def feed() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        q.put((item, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put((_DONE, None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            q.put((_DONE, exc))

    thread = threading.Thread(target=feed, name="harmonykit-video-read", daemon=True)
    thread.start()
    try:
        while True:
            item, exc = q.get()
            if item is _DONE:
                if exc is not None:
                    raise exc
                return
            yield item
    finally:
        stop.set()
        while thread.is_alive():
            try:
                q.get_nowait()
            except queue.Empty:
                thread.join(timeout=0.05)


class BackgroundSink:
    """The producer's end of :func:`in_background`: :meth:`put` hands an item over."""

    def __init__(self, q: queue.Queue[Any], thread: threading.Thread, failed: list[BaseException]) -> None:
        self._q, self._thread, self._failed = q, thread, failed

    def put(self, item: Any) -> None:
        """Queue ``item`` (blocks while the queue is full); raises the consumer's error, if
        it failed."""
        while True:
            if self._failed:
                raise self._failed[0]
            try:
                self._q.put(item, timeout=0.1)
                return
            except queue.Full:
                if not self._thread.is_alive() and not self._failed:
                    raise RuntimeError("the background consumer stopped") from None


@contextmanager
def in_background(consume: Callable[[Any], None], depth: int = 4,
                  name: str = "harmonykit-background") -> Iterator[BackgroundSink]:
    """Run ``consume(item)`` on a thread for every item ``put`` into the yielded sink, in
    order, at most ``depth`` items behind. Leaving the block normally waits for the last
    item and raises the consumer's error, if any; leaving with an error stops the
    consumer (items still queued are dropped) and lets that error through.

    >>> seen = []
    >>> with in_background(seen.append) as sink:
    ...     for i in range(5):
    ...         sink.put(i)
    >>> seen
    [0, 1, 2, 3, 4]
    """
    q: queue.Queue[Any] = queue.Queue(maxsize=max(1, depth))
    failed: list[BaseException] = []
    stop = threading.Event()

    def run() -> None:
        while True:
            item = q.get()
            if item is _DONE or stop.is_set():
                return
            try:
                consume(item)
            except BaseException as exc:  # noqa: BLE001 - handed to the producer
                failed.append(exc)
                return

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    sink = BackgroundSink(q, thread, failed)
    try:
        yield sink
    except BaseException:
        stop.set()
        while thread.is_alive():
            try:
                q.get_nowait()
            except queue.Empty:
                with contextlib.suppress(queue.Full):
                    q.put_nowait(_DONE)
                thread.join(timeout=0.05)
        raise
    if not failed:
        sink.put(_DONE)
    thread.join()
    if failed:
        raise failed[0]
