"""Apply one operator-mask edit to a whole clip (``harmonykit edit CLIP.mp4 --masks
CLIP.masks.npz ...``): each frame's saved masks are edited the same way
(:meth:`OperatorMasks.edit_many`) and applied to the original frame; no network runs.
Streams like the harmonizer: one frame and its masks in memory at a time; the output is
renamed into place at the end."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from harmonykit.errors import HarmonykitError

__all__ = ["edit_video"]

log = logging.getLogger(__name__)


def edit_video(clip: str | Path, masks: str | Path, out: str | Path, gains: Mapping[str, float] | None = None,
               offsets: Mapping[str, float] | None = None, region: np.ndarray | None = None, crf: int = 18,
               show_progress: bool = True) -> Path:
    """Re-render ``clip`` with its saved per-frame ``masks`` edited by ``gains`` / ``offsets``
    (optionally within ``region``, a mask of any size) into ``out``.

    Raises:
        HarmonykitError: the masks file holds another number of frames than the clip, or
            was computed for another frame size; a corrupt frame (nothing is written).
    """
    from harmonykit.inference.editing import check_edits
    from harmonykit.io import atomic_write
    from harmonykit.utils.progress import progress
    from harmonykit.video.io import (
        AudioPacket,
        VideoWriter,
        iter_frames,
        open_source_audio,
        prefetched,
        probe,
    )
    from harmonykit.video.masks_file import iter_video_masks, read_video_masks_info

    gains, offsets = dict(gains or {}), dict(offsets or {})
    info = probe(clip)
    _, space, n_masks, meta = read_video_masks_info(masks)
    check_edits(gains, offsets, space)
    if info.frames is not None and n_masks != info.frames:
        raise HarmonykitError(f"{masks} holds masks for {n_masks} frames but {clip} has {info.frames}")
    size = meta.get("image_size")
    if isinstance(size, list) and len(size) == 2 and tuple(size) != info.size:
        raise HarmonykitError(f"{masks} was computed for a {size[1]}x{size[0]} clip, {clip} is "
                              f"{info.width}x{info.height}")
    out = Path(out)
    src, audio, start = open_source_audio(clip)
    mask_iter = iter_video_masks(masks)
    n = 0
    t0 = time.perf_counter()
    bar = progress(total=info.frames, desc=f"edit {Path(clip).name}", unit="frame",
                   disable=None if show_progress else True)
    try:
        with atomic_write(out) as tmp:
            writer = VideoWriter(tmp, info.width, info.height, info.fps, audio_from=audio, audio_offset=start,
                                 crf=crf)
            try:
                for item in prefetched(iter_frames(clip, audio=True)):
                    if isinstance(item, AudioPacket):
                        writer.mux_audio(item)
                        continue
                    m = next(mask_iter, None)
                    if m is None:
                        raise HarmonykitError(f"{masks} ends after {n} frames; {clip} goes on")
                    edited = m.edit_many(gains, offsets, region) if (gains or offsets or region is not None) else m
                    writer.write(edited.apply_uint8(item))
                    n += 1
                    bar.update(1)
                if next(mask_iter, None) is not None:
                    raise HarmonykitError(f"{masks} holds more frames than {clip}'s {n}")
                writer.close()
            except BaseException:
                writer.abort()
                raise
    finally:
        bar.close()
        src.close()
    log.debug("%s: %d frames edited in %.1f s", out, n, time.perf_counter() - t0)
    return out
