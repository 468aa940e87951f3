"""Where a clip's masks come from: a mask clip, one mask image, a folder of frame masks.

Everything that can be checked before the first frame is (a mask clip's size and frame
count, a mask image's size, a folder's file count), so that a mismatch is one error and
nothing is written; what cannot (a clip that does not declare its length) is checked
while the frames go by.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from harmonykit.errors import HarmonykitError, ImageReadError
from harmonykit.video.io import VideoInfo, is_video_path, iter_mask_frames, probe

__all__ = ["find_clip_mask", "mask_source"]


def _mask_files(folder: Path) -> list[Path]:
    from harmonykit.io import IMAGE_EXTENSIONS

    return sorted(p for p in folder.iterdir()
                  if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTENSIONS)


def _folder_masks(files: list[Path], size: tuple[int, int]) -> Iterator[np.ndarray]:
    from harmonykit.io import read_mask

    for f in files:
        m = read_mask(f)
        if m.shape != size:
            raise ImageReadError(f, f"mask is {m.shape[1]}x{m.shape[0]} but the clip is {size[1]}x{size[0]} (WxH)")
        yield m


def mask_source(mask: Any, info: VideoInfo, small: tuple[int, int] | None = None
                ) -> tuple[Iterator[Any] | None, Any]:
    """``(per-frame masks or None, one mask for every frame or None)`` for ``mask``.

    ``mask``: ``None``; a mask clip (its size and declared frame count must match the
    clip's); a mask image (its size must match); a folder of mask images, one per frame in
    name order; or an array / PIL image (every frame). ``small`` ``(h, w)``: a mask clip
    is decoded at that size only (:class:`~harmonykit.video.io.SmallMask` items).

    Raises:
        HarmonykitError: the mask does not exist or does not fit the clip.
    """
    if mask is None or not isinstance(mask, (str, Path)):
        return None, mask
    p = Path(mask).expanduser()
    if p.is_dir():
        files = _mask_files(p)
        if not files:
            raise HarmonykitError(f"--mask {p}: the folder holds no mask images")
        if info.frames is not None and len(files) != info.frames:
            raise HarmonykitError(f"--mask {p}: {len(files)} mask images for the clip's {info.frames} frames")
        return _folder_masks(files, info.size), None
    if not p.is_file():
        raise HarmonykitError(f"--mask {p}: no such file or folder")
    if is_video_path(p):
        m = probe(p)
        if m.size != info.size:
            raise HarmonykitError(f"mask clip {p} is {m.width}x{m.height} but the clip is {info.width}x{info.height}")
        if m.frames is not None and info.frames is not None and m.frames != info.frames:
            raise HarmonykitError(f"mask clip {p} has {m.frames} frames but the clip has {info.frames}")
        return iter_mask_frames(p, small=small), None
    from harmonykit.io import read_mask

    static = read_mask(p)
    if static.shape != info.size:
        raise HarmonykitError(f"mask {p} is {static.shape[1]}x{static.shape[0]} but the clip is "
                              f"{info.width}x{info.height}")
    return None, static


def find_clip_mask(clip: Path) -> Path | None:
    """``--mask auto``: ``<stem>_mask.<video ext>``, ``<stem>_mask.<image ext>`` or a
    ``<stem>_masks/`` folder next to the clip, in that order; ``None`` when none exists."""
    from harmonykit.io import IMAGE_EXTENSIONS
    from harmonykit.video.io import VIDEO_EXTENSIONS

    for ext in (*VIDEO_EXTENSIONS, *IMAGE_EXTENSIONS):
        for cand in (clip.with_name(f"{clip.stem}_mask{ext}"), clip.with_name(f"{clip.stem}_mask{ext.upper()}")):
            if cand.is_file():
                return cand
    folder = clip.with_name(f"{clip.stem}_masks")
    return folder if folder.is_dir() else None
