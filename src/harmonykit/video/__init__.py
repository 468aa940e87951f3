"""Video: harmonize clips with temporally smoothed operator masks, and a clip benchmark.

* :class:`VideoHarmonizer` / :func:`harmonize_video` - harmonize a clip
  (:mod:`harmonykit.video.harmonizer`; smoothing in :mod:`harmonykit.video.smoothing`);
* :func:`edit_video` - apply one operator-mask edit to a whole clip;
* :mod:`harmonykit.video.io` - PyAV decode / encode (PyAV is the ``video`` extra, imported
  on first use);
* :mod:`harmonykit.video.benchmark` / :mod:`harmonykit.video.metrics` - build clips from
  photos with object masks, and score harmonized clips (per-frame MSE / fMSE / PSNR and
  temporal consistency).

>>> from harmonykit.video import harmonize_video                        # doctest: +SKIP
>>> harmonize_video("clip.mp4", "out/clip.mp4", mask="clip_mask.mp4")   # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import Any

# name -> submodule; imported on first use, so that ``harmonykit.video.io`` (and the command
# line's --help) does not import PyTorch
_EXPORTS = {
    "edit_video": "edit", "FrameResult": "harmonizer", "VideoHarmonizer": "harmonizer", "VideoSummary": "harmonizer",
    "harmonize_video": "harmonizer", "VIDEO_EXTENSIONS": "io", "VideoInfo": "io", "VideoReadError": "io",
    "is_video_path": "io", "probe": "io", "require_av": "io",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"harmonykit.video.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'harmonykit.video' has no attribute {name!r}")
