"""Scores of harmonized clips against the real clip (defined in ``docs/evaluation.md``).

* per frame: MSE, fMSE, PSNR (:mod:`harmonykit.evaluation.metrics`, RGB 0..255), averaged
  over the frames of a clip, then over clips;
* **temporal-consistency error (TCE)**: with ``mu_t`` the mean RGB colour (0..255) of the
  output's foreground in frame ``t`` (mask >= 0.5) and ``nu_t`` the same in the real clip,

      TCE = mean over t >= 1 of || (mu_t - mu_{t-1}) - (nu_t - nu_{t-1}) ||_2

  the frame-to-frame change of the foreground's mean colour beyond the real clip's own
  (camera motion changes the real clip's mean too; only the excess is flicker). 0 for an
  output whose foreground changes exactly as the real one does.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from harmonykit.video.harmonizer import VideoHarmonizer

__all__ = ["ClipScorer", "evaluate_video_benchmark", "foreground_mean", "temporal_consistency_error"]


def foreground_mean(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean RGB ``(3,)`` of ``image`` where ``mask`` (uint8 or float) is at least half on."""
    m = mask >= (128 if mask.dtype == np.uint8 else 0.5)
    if not m.any():
        return np.full(3, np.nan)
    return image[m].astype(np.float64).mean(axis=0)


def temporal_consistency_error(outputs: Iterable[np.ndarray], reals: Iterable[np.ndarray],
                               masks: Iterable[np.ndarray]) -> float:
    """The TCE of a clip (module docstring).

    >>> f = [np.full((2, 2, 3), v, np.uint8) for v in (10, 20, 10)]
    >>> m = [np.full((2, 2), 255, np.uint8)] * 3
    >>> temporal_consistency_error(f, f, m), round(temporal_consistency_error(f, [f[0]] * 3, m), 2)
    (0.0, 17.32)
    """
    scorer = ClipScorer()
    for o, r, m in zip(outputs, reals, masks):
        scorer.add(o, r, m)
    return scorer.summary()["tce"]


class ClipScorer:
    """Accumulates one clip's per-frame scores, frame by frame (nothing is kept but means)."""

    def __init__(self) -> None:
        self.per_frame: dict[str, list[float]] = {"mse": [], "fmse": [], "psnr": []}
        self._steps: list[float] = []
        self._prev: tuple[np.ndarray, np.ndarray] | None = None

    def add(self, output: np.ndarray, real: np.ndarray, mask: np.ndarray) -> None:
        from harmonykit.evaluation.metrics import fmse, mse, psnr_from_mse

        m = mask.astype(np.float32) / 255.0 if mask.dtype == np.uint8 else mask
        v = mse(output, real)
        self.per_frame["mse"].append(v)
        self.per_frame["fmse"].append(fmse(output, real, m))
        self.per_frame["psnr"].append(psnr_from_mse(v))
        mu, nu = foreground_mean(output, mask), foreground_mean(real, mask)
        if self._prev is not None:
            step = np.linalg.norm((mu - self._prev[0]) - (nu - self._prev[1]))
            if np.isfinite(step):
                self._steps.append(float(step))
        self._prev = (mu, nu)

    def summary(self) -> dict[str, float]:
        out = {k: float(np.nanmean(v)) if v else float("nan") for k, v in self.per_frame.items()}
        out["tce"] = float(np.mean(self._steps)) if self._steps else float("nan")
        return out


def _read(paths: list[Path]) -> Iterator[np.ndarray]:
    from harmonykit.io import read_image

    for p in paths:
        yield read_image(p)


def _read_masks(paths: list[Path]) -> Iterator[np.ndarray]:
    from PIL import Image

    for p in paths:
        yield np.asarray(Image.open(p).convert("L"))


def evaluate_video_benchmark(bench: str | Path, harmonizer: VideoHarmonizer | None,
                             limit: int | None = None) -> dict[str, Any]:
    """Harmonize every clip of a built benchmark (:mod:`harmonykit.video.benchmark`) with
    ``harmonizer`` (``None``: score the composites themselves) and score it.

    Returns:
        ``{"clips": {id: {mse, fmse, psnr, tce}}, "mean": {...}, "frames": n}``.
    """
    from harmonykit.video.benchmark import iter_benchmark_clips

    clips: dict[str, dict[str, float]] = {}
    frames = 0
    for k, (clip_id, comp, real, mask) in enumerate(iter_benchmark_clips(bench)):
        if limit is not None and k >= limit:
            break
        scorer = ClipScorer()
        masks = list(_read_masks(mask))  # small frames; read twice otherwise
        if harmonizer is None:
            outputs: Iterable[np.ndarray] = _read(comp)
        else:
            outputs = (r.rgb for r in harmonizer.frames(_read(comp), iter(masks)))
        for o, r, m in zip(outputs, _read(real), masks):
            scorer.add(o, r, m)
            frames += 1
        clips[clip_id] = scorer.summary()
    keys = ("mse", "fmse", "psnr", "tce")
    mean = {k: float(np.nanmean([c[k] for c in clips.values()])) if clips else float("nan") for k in keys}
    return {"clips": clips, "mean": mean, "frames": frames}
