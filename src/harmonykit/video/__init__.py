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

from harmonykit.video.edit import edit_video
from harmonykit.video.harmonizer import FrameResult, VideoHarmonizer, VideoSummary, harmonize_video
from harmonykit.video.io import (
           VIDEO_EXTENSIONS,
           VideoInfo,
           VideoReadError,
           is_video_path,
           probe,
           require_av,
)

__all__ = ["FrameResult", "VIDEO_EXTENSIONS", "VideoHarmonizer", "VideoInfo", "VideoReadError", "VideoSummary",
           "edit_video", "harmonize_video", "is_video_path", "probe", "require_av"]
