"""Harmonize clips: :class:`VideoHarmonizer` (wraps a :class:`~harmonykit.inference.Harmonizer`)
and :func:`harmonize_video`.

>>> from harmonykit.video import VideoHarmonizer                     # doctest: +SKIP
>>> vh = VideoHarmonizer.from_pretrained("default")                   # doctest: +SKIP
>>> vh.harmonize_video("clip.mp4", "out/clip.mp4", mask="clip_mask.mp4")  # doctest: +SKIP

Per frame: the frame is resized to the work size, the network gives operator masks there,
they are smoothed over time (:mod:`harmonykit.video.smoothing`: a gate-normalised EMA with
a scene-cut reset; mask-free two-stage models also smooth their localisation before it
becomes the soft mask), and applied to the full-resolution frame in row tiles. RGB models
and baselines run frame by frame through the harmonizer, unsmoothed (a note says so).

Frames are streamed through four threads, a stage each: decoding (with the work-size
copies), the network and the smoothing (in frame order, the caller's thread), the
full-resolution apply, the encoder; the bounded queues between them keep memory
independent of the clip's length. The output is
written to a temporary file next to it and renamed at the end: an error (a corrupt frame,
a mask clip of another length) or a kill leaves no output, and a rerun writes it whole.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from harmonykit.errors import HarmonykitError
from harmonykit.operators import OperatorMasks
from harmonykit.video.smoothing import (
    DEFAULT_CUT_THRESHOLD,
    DEFAULT_SMOOTHING,
    MaskSmoother,
    ProbabilityEMA,
    SceneCutDetector,
)

if TYPE_CHECKING:
    from harmonykit.inference import Harmonizer

__all__ = ["FrameResult", "VideoHarmonizer", "VideoSummary", "harmonize_video"]

log = logging.getLogger(__name__)


@dataclass
class FrameResult:
    """One harmonized frame.

    Attributes:
        index: 0-based frame number.
        rgb: ``(H, W, 3)`` uint8 harmonized frame.
        operator_masks: the smoothed masks applied (work size, batch of 1), or ``None``
            (RGB models, baselines, frames with an empty mask).
        cut: this frame started a new shot (the smoothing was reset).
        localisation: the smoothed localisation ``(1, 1, h, w)`` of a mask-free two-stage
            model, else ``None``.
    """

    index: int
    rgb: np.ndarray
    operator_masks: OperatorMasks | None = None
    cut: bool = False
    localisation: Tensor | None = None


@dataclass
class VideoSummary:
    """What :meth:`VideoHarmonizer.harmonize_video` did."""

    output: Path
    frames: int
    fps: float
    size: tuple[int, int]
    seconds: float
    cuts: list[int] = field(default_factory=list)
    masks_file: Path | None = None
    audio: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def frames_per_second(self) -> float:
        """Processing speed (frames / wall second, decode and encode included)."""
        return self.frames / self.seconds if self.seconds > 0 else float("inf")


class VideoHarmonizer:
    """Harmonize clips frame by frame with temporally smoothed operator masks.

    Args:
        harmonizer: the :class:`~harmonykit.inference.Harmonizer` (model, device, work
            size, tiles).
        smoothing: EMA decay in ``[0, 1)`` for the operator masks and the localisation
            (0: frames independent).
        cut_threshold: histogram distance that counts as a scene cut (resets smoothing).
        network_every: run the network on every Nth frame only (1: every frame). On the
            frames between, the smoothed operator masks are re-applied with that frame's gate
            (its given mask, resized; mask-free, the last localisation), so a given mask
            still follows the object; a scene cut always runs the network. Needs
            ``smoothing > 0`` (it is the smoother's state that is re-applied). ``None``:
            :data:`~harmonykit.video.settings.DEFAULT_NETWORK_EVERY` (2) with smoothing,
            1 without.
    """

    def __init__(self, harmonizer: Harmonizer, smoothing: float = DEFAULT_SMOOTHING,
                 cut_threshold: float = DEFAULT_CUT_THRESHOLD, network_every: int | None = None) -> None:
        from harmonykit.limits import check
        from harmonykit.models.heads import OperatorMaskHead
        from harmonykit.video.settings import resolve_network_every

        check("smoothing", smoothing, "smoothing")
        check("cut_threshold", cut_threshold, "cut_threshold")
        network_every = resolve_network_every(network_every, smoothing)
        self.network_every = int(check("network_every", network_every, "network_every"))
        if self.network_every > 1 and not float(smoothing) > 0:
            raise HarmonykitError("network_every > 1 needs smoothing > 0 (the smoothed masks are re-applied)")
        self.harmonizer = harmonizer
        self.smoothing = float(smoothing)
        self.cut_threshold = float(cut_threshold)
        SceneCutDetector(cut_threshold)  # validate both now
        ProbabilityEMA(smoothing)
        model = harmonizer.model
        self._model = model if model is not None and isinstance(model.head, OperatorMaskHead) else None
        self.notes: list[str] = []
        if self._model is None:
            self.notes.append(f"{harmonizer.name} has no operator masks: frames are harmonized one by one, "
                              "without temporal smoothing")

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path = "default", *, smoothing: float = DEFAULT_SMOOTHING,
                        cut_threshold: float = DEFAULT_CUT_THRESHOLD, network_every: int | None = None,
                        **kwargs: Any) -> VideoHarmonizer:
        """:meth:`Harmonizer.from_pretrained` (``device``, ``work_size``... in ``kwargs``), wrapped."""
        from harmonykit.inference import Harmonizer

        return cls(Harmonizer.from_pretrained(name_or_path, **kwargs), smoothing=smoothing,
                   cut_threshold=cut_threshold, network_every=network_every)

    @property
    def smooths(self) -> bool:
        """Operator-mask model and ``smoothing > 0``."""
        return self._model is not None and self.smoothing > 0

    def __repr__(self) -> str:
        return (f"VideoHarmonizer({self.harmonizer.name!r}, smoothing={self.smoothing}, "
                f"cut_threshold={self.cut_threshold}, work_size={self.harmonizer.work_size})")

    # ------------------------------------------------------------------ frames
    def frames(self, frames: Iterable[np.ndarray], masks: Iterable[np.ndarray | None] | None = None,
               mask: np.ndarray | None = None) -> Iterator[FrameResult]:
        """Harmonize a sequence of ``(H, W, 3)`` uint8 frames, lazily, in order.

        Args:
            frames: the frames (all the same size).
            masks: one mask per frame (uint8 0..255, float 0..1 or bool, ``(H, W)``), or
            mask: one mask for every frame; neither: mask-free (models that need a mask fail).

        Raises:
            HarmonykitError: frames of different sizes, a mask of another size, or fewer /
                more masks than frames.
        """
        state = _State(self)
        for item in _validated(frames, masks, mask, state.prepare):
            assert isinstance(item, _Prepared)
            yield state.render(state.plan(item))

    # -------------------------------------------------------------------- file
    def harmonize_video(self, clip: str | Path, out: str | Path, mask: Any = None,
                        save_masks: str | Path | None = None, crf: int = 18, preset: str = "veryfast",
                        show_progress: bool = True) -> VideoSummary:
        """Harmonize ``clip`` into ``out`` (``.mp4``, ``.mkv`` or ``.mov``).

        Four threads, a stage each: decoding (with the work-size copies), the network and
        the smoothing (the caller's thread), the full-resolution apply, the encoder; the
        queues between them hold a few frames, so memory does not depend on the clip's
        length, and the frames come out in order, as :meth:`frames` gives them.

        Args:
            clip: the source clip (any FFmpeg-readable video).
            out: the output file: written to a temporary file next to it, renamed at the end.
            mask: a mask clip (same size and frame count), a mask image (every frame), a
                folder of per-frame mask images (sorted by name, one per frame), an array,
                or ``None`` (mask-free).
            save_masks: also write the per-frame smoothed operator masks there (``.npz``,
                :mod:`harmonykit.video.masks_file`).
            crf, preset: x264 quality and speed.
            show_progress: a tqdm bar with frames/s on stderr.

        Raises:
            HarmonykitError: unreadable clip, corrupt frame, mask of another size or length
                (one error; nothing is written).
        """
        from harmonykit.io import atomic_write
        from harmonykit.mask_metadata import mask_metadata
        from harmonykit.utils.progress import progress
        from harmonykit.video.io import (
            AudioPacket,
            VideoWriter,
            in_background,
            iter_frames,
            open_source_audio,
            prefetched,
            probe,
        )
        from harmonykit.video.masks_file import VideoMasksWriter
        from harmonykit.video.sources import mask_source

        info = probe(clip)
        out = Path(out)
        # the decoders make the network's copies (FFmpeg's area scaling: ~1 ms a frame, not ~10)
        small = self.harmonizer.work_size if self._model is not None else None
        masks_iter, static = mask_source(mask, info, small=small)
        t0 = time.perf_counter()
        state = _State(self)
        src, audio_stream, start = open_source_audio(clip)
        masks_writer = None
        if save_masks is not None and self._model is not None:
            meta = mask_metadata(image_size=info.size, source=clip, model=self.harmonizer.name,
                                 work_size=self.harmonizer.work_size)
            masks_writer = VideoMasksWriter(save_masks, {**meta, "fps": float(info.fps)})
        summary = VideoSummary(out, 0, float(info.fps), info.size, 0.0, audio=audio_stream is not None,
                               notes=list(self.notes))
        bar = progress(total=info.frames, desc=f"harmonize {Path(clip).name}", unit="frame",
                       disable=None if show_progress else True)
        try:
            with atomic_write(out) as tmp:
                writer = VideoWriter(tmp, info.width, info.height, info.fps, audio_from=audio_stream,
                                     audio_offset=start, crf=crf, preset=preset)

                def encode(item: FrameResult | AudioPacket) -> None:  # on the encoder thread, in order
                    if isinstance(item, AudioPacket):
                        writer.mux_audio(item)
                        return
                    writer.write(item.rgb)
                    if masks_writer is not None and item.operator_masks is not None:
                        masks_writer.add(item.operator_masks)
                    if item.cut and item.index > 0:
                        summary.cuts.append(item.index)
                    summary.frames += 1
                    bar.update(1)

                try:
                    inputs = prefetched(_validated(iter_frames(clip, audio=True, small=small), masks_iter, static,
                                                   state.prepare), depth=4)
                    with in_background(encode, depth=2, name="harmonykit-video-encode") as encoder:

                        def render(item: _Planned | AudioPacket) -> None:  # on the apply thread, in order
                            encoder.put(item if isinstance(item, AudioPacket) else state.render(item))

                        with in_background(render, depth=2, name="harmonykit-video-apply") as renderer:
                            for item in inputs:
                                renderer.put(item if isinstance(item, AudioPacket) else state.plan(item))
                    if summary.frames == 0:
                        raise HarmonykitError(f"{clip}: has no frames")
                    writer.close()
                except BaseException:
                    writer.abort()
                    raise
                if masks_writer is not None:
                    if masks_writer.frames != summary.frames:
                        raise HarmonykitError("some frames had no operator masks (empty mask): "
                                              "--save-masks needs masks for every frame")
                    summary.masks_file = masks_writer.close()
                    masks_writer = None
        finally:
            bar.close()
            src.close()
            if masks_writer is not None:
                masks_writer.discard()
        summary.seconds = time.perf_counter() - t0
        log.debug("%s: %d frames in %.1f s (%.1f frames/s)", out, summary.frames, summary.seconds,
                  summary.frames_per_second)
        return summary


_MISSING: Any = object()


@dataclass
class _Prepared:
    """A frame with its mask and their work-size copies (made ahead, on the reader thread)."""

    index: int
    rgb: np.ndarray
    mask: np.ndarray | None           # full size; None: mask-free, or only ``small_mask`` was decoded
    small: Tensor | None = None       # (1, 3, h, w) in [0, 1]; None for RGB models / baselines
    small_mask: Tensor | None = None  # (1, 1, h, w) in [0, 1]
    empty: bool = False               # a mask was given and it is all zeros


@dataclass
class _Planned:
    """What the network and the smoothing decided for a frame: the operator masks to apply
    at full resolution, or the finished frame (RGB models, baselines, an empty mask)."""

    index: int
    rgb: np.ndarray
    cut: bool = False
    masks: OperatorMasks | None = None
    localisation: Tensor | None = None
    done: np.ndarray | None = None


def _validated(frames: Iterable[Any], masks: Iterable[np.ndarray | None] | None, mask: Any,
               prepare: Callable[..., _Prepared]) -> Iterator[Any]:
    """``frames`` paired with their masks as :class:`_Prepared` items (through ``prepare``),
    checked: one size for all frames, masks of that size, as
    many masks as frames. Other items (audio packets) pass through unchanged, in order."""
    from harmonykit.inference.harmonizer import mask_array

    mask_iter = iter(masks) if masks is not None else None
    size: tuple[int, int] | None = None
    i = -1
    from harmonykit.video.io import SizedFrame, SmallMask

    for item in frames:
        small = None
        if isinstance(item, SizedFrame):
            item, small = item.rgb, item.small
        if not isinstance(item, np.ndarray):
            yield item
            continue
        i += 1
        rgb = item
        if size is None:
            size = rgb.shape[:2]
        elif rgb.shape[:2] != size:
            raise HarmonykitError(f"frame {i + 1} is {rgb.shape[1]}x{rgb.shape[0]}, the first was {size[1]}x{size[0]}")
        m = mask
        if mask_iter is not None:
            m = next(mask_iter, _MISSING)
            if m is _MISSING:
                raise HarmonykitError(f"the masks end after {i} frames, the clip goes on")
        if isinstance(m, SmallMask):
            if m.size != size:
                raise HarmonykitError(f"frame {i + 1}: the mask is {m.size[1]}x{m.size[0]}, the clip {size[1]}x{size[0]}")
            m_arr: Any = m
        else:
            try:
                m_arr = mask_array(m, size)
            except HarmonykitError as exc:
                raise HarmonykitError(f"frame {i + 1}: {exc}") from None
        yield prepare(i, rgb, m_arr, small)
    if mask_iter is not None and next(mask_iter, _MISSING) is not _MISSING:
        raise HarmonykitError(f"there are more masks than the clip's {i + 1} frames")


class _State:
    """The per-clip state of :meth:`VideoHarmonizer.frames`: cut detector and smoothers.

    A frame goes through :meth:`prepare` (stateless: the work-size copies), :meth:`plan`
    (in frame order: cut detection, network, smoothing) and :meth:`render` (stateless:
    the full-resolution apply), so that the first and the last can run on other threads.
    """

    def __init__(self, vh: VideoHarmonizer) -> None:
        self.vh = vh
        self.h = vh.harmonizer
        self.cuts = SceneCutDetector(vh.cut_threshold)
        self.loc = ProbabilityEMA(vh.smoothing)
        self.smoother: MaskSmoother | None = None
        model = vh._model
        self.two_stage = model is not None and model.has_localisation and (
            model.mask_free == "two_stage" or model.localiser is not None)
        self.gated = model is not None and model.has_localisation
        self.last_gate: Tensor | None = None  # mask-free: the last network frame's soft mask
        self.ran = 0  # network runs (tests, figures)

    def prepare(self, index: int, rgb: np.ndarray, mask: Any, small_rgb: np.ndarray | None = None) -> _Prepared:
        """The work-size copies of ``rgb`` and ``mask`` (a full-size array, a
        :class:`~harmonykit.video.io.SmallMask` or ``None``; nothing for RGB models).
        ``small_rgb``: a uint8 copy of ``rgb`` at the work size already made (the decoder's)."""
        from harmonykit.imageops import downsize, to_tensor_image, to_tensor_mask
        from harmonykit.video.io import SmallMask

        h = self.h
        size = tuple(h.work_size or rgb.shape[:2])
        if isinstance(mask, SmallMask):
            if self.vh._model is None or mask.small.shape != size:
                raise HarmonykitError("internal: a mask decoded at the work size for another size or model")
            small_mask = to_tensor_mask(mask.small)[None]
            empty, mask = not mask.small.any(), None
        else:
            small_mask, empty = None, mask is not None and not mask.any()
        if self.vh._model is None:
            return _Prepared(index, rgb, mask, empty=empty)
        if small_rgb is not None and small_rgb.shape[:2] == size:
            small = to_tensor_image(small_rgb)[None]
        else:
            small = downsize(rgb, size, h.tile_rows)
        if mask is not None:
            small_mask = downsize(mask, size, h.tile_rows).clamp_(0, 1)
        return _Prepared(index, rgb, mask, small, small_mask, empty)

    def plan(self, prep: _Prepared) -> _Planned:
        from harmonykit.pipeline.render import torch_threads

        h = self.h
        index, rgb, mask = prep.index, prep.rgb, prep.mask
        if self.vh._model is None:  # RGB model or baseline: the still-image path
            return _Planned(index, rgb, done=h(rgb, mask).rgb)
        assert prep.small is not None
        dev = h.device
        small = prep.small.to(dev)
        cut = self.cuts(small)
        if cut:
            self.loc.reset()
            if self.smoother is not None:
                self.smoother.reset()
        if prep.empty:  # the object is not in this frame
            return _Planned(index, rgb, cut, done=rgb.copy())
        model = self.vh._model
        assert model is not None
        small_mask = None if prep.small_mask is None else prep.small_mask.to(dev)
        smoother = self.smoother
        if (index % self.vh.network_every != 0 and not cut and smoother is not None and smoother.primed
                and (small_mask is not None or not self.gated or self.last_gate is not None)):
            return self._reuse(index, rgb, cut, smoother, small_mask)
        self.ran += 1
        p_s = None
        with torch.inference_mode(), torch_threads(h.network_thread_count() if dev.type == "cpu" else None):
            if small_mask is not None:
                out = model.harmonize_with_mask(small, small_mask)
                gate = small_mask if self.gated else None
            elif self.two_stage and self.vh.smoothing > 0:
                p = model.localise(small)
                assert p is not None
                p_s = self.loc(p)
                soft = model.soft_mask(p_s, small.shape[-2:])
                out = model.harmonize_with_mask(small, soft)
                gate = soft
            else:
                out = model(small)
                gate = out.localisation if self.gated else None
        masks = out.operator_masks
        assert masks is not None
        values = masks.values.detach().float()
        if self.vh.smoothing > 0:
            if self.smoother is None:
                ident = OperatorMasks.identity(masks.channels, 1, 1, 1, masks.space).values.flatten()
                self.smoother = MaskSmoother(ident, self.vh.smoothing)
            if gate is not None and gate.shape[-2:] != values.shape[-2:]:
                gate = F.interpolate(gate.float(), size=values.shape[-2:], mode="area"
                                     if gate.shape[-1] >= values.shape[-1] else "bilinear")
            values = self.smoother(values, gate)
            self.last_gate = gate if small_mask is None else None
        self.channels, self.space = masks.channels, masks.space
        return _Planned(index, rgb, cut, OperatorMasks(values, masks.channels, masks.space), p_s)

    def _reuse(self, index: int, rgb: np.ndarray, cut: bool, smoother: MaskSmoother,
               small_mask: Tensor | None) -> _Planned:
        """A frame the network skips: the smoother's state with this frame's gate."""
        gate = small_mask if (small_mask is not None and self.gated) else self.last_gate
        shape = smoother.current().shape[-2:]
        if gate is not None and gate.shape[-2:] != shape:
            gate = F.interpolate(gate.float(), size=shape, mode="area" if gate.shape[-1] >= shape[-1] else "bilinear")
        return _Planned(index, rgb, cut, OperatorMasks(smoother.current(gate), self.channels, self.space))

    def render(self, planned: _Planned) -> FrameResult:
        """The full-resolution frame of ``planned`` (the operator masks applied in row tiles)."""
        if planned.masks is None:
            assert planned.done is not None
            return FrameResult(planned.index, planned.done, None, planned.cut)
        # a given mask gates the masks: rows the object does not reach are copied, not retouched
        full = planned.masks.apply_uint8(planned.rgb, tile_rows=self.h.tile_rows, device=self.h.device,
                                         only_changed_rows=True)
        return FrameResult(planned.index, full, planned.masks.to("cpu"), planned.cut, planned.localisation)


def harmonize_video(clip: str | Path, out: str | Path, model: str | Path = "default", mask: Any = None, *,
                    smoothing: float = DEFAULT_SMOOTHING, cut_threshold: float = DEFAULT_CUT_THRESHOLD,
                    save_masks: str | Path | None = None, device: str = "cpu", work_size: int = 256,
                    network_every: int | None = None, show_progress: bool = True) -> VideoSummary:
    """Harmonize ``clip`` into ``out`` with a packaged model, a model folder or a baseline
    (see :meth:`VideoHarmonizer.harmonize_video`)."""
    vh = VideoHarmonizer.from_pretrained(model, smoothing=smoothing, cut_threshold=cut_threshold, device=device,
                                         work_size=work_size, network_every=network_every)
    return vh.harmonize_video(clip, out, mask=mask, save_masks=save_masks, show_progress=show_progress)
