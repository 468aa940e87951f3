"""Reference-free evaluation on real composites (no ground truth).

A real composite has no harmonious target, so what can be measured is *where* a method
changes the image. For each composite with its pasted-region mask ``M``:

* ``ΔE`` per pixel: the CIE76 colour difference ``||Lab(result) - Lab(composite)||`` (D65,
  float64 from uint8 sRGB);
* ``de_in``: mean ``ΔE`` inside ``M`` (the correction of the pasted object);
* ``de_out``: mean ``ΔE`` outside ``M`` (collateral change of the background: with the mask
  given it must be about 0; mask-free, it is the false-positive change);
* ``ratio``: ``de_in / de_out`` (``inf`` when only the inside changed, ``nan`` when
  nothing changed at all).

Overall figures are the means of ``de_in`` and ``de_out`` over images, their ratio
(``ratio_of_means``), the median of the per-image ratios, and the share of images whose
ratio is at least 4. ``write_reference_free_report`` writes ``metrics.json``,
``per_image.csv``, ``table.md`` and ``figure.png`` (composite | result | ΔE heatmap, the
mask outline drawn on the composite) for the images with the largest and smallest ratio.

**Paired figures** where a composite has its ground-truth photo (``X_real.<ext>`` in a
folder set, :attr:`~harmonykit.data.composites.CompositeItem.real_path`): the full-resolution
result against that photo, with the definitions of :mod:`harmonykit.evaluation.metrics`:
``mse``, ``fmse`` (the composite's mask) and ``psnr`` (data range 255, capped at 100 dB),
per image and as means over the paired images (PSNR: the mean of the per-image values, the
iHarmony4 convention). They are added to the per-image rows, to ``metrics.json``
(``"paired"``) and to ``table.md``; a set without real photos gets exactly the
reference-free report. A real photo of another size than its composite is a failure of that
composite (naming the file); the others are evaluated.

The method is injected as a callable ``run(image, mask) -> uint8 image`` (``mask`` is
``None`` in the mask-free setting), so this module depends on no model code.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from harmonykit.data.composites import CompositeSet, read_composite, read_real
from harmonykit.errors import HarmonykitError
from harmonykit.evaluation import metrics as M
from harmonykit.io import atomic_write_bytes, atomic_write_text
from harmonykit.utils.progress import progress

__all__ = [
    "RATIO_GOAL",
    "RunFn",
    "CompositeScore",
    "CompositeFailure",
    "ReferenceFreeResult",
    "delta_e",
    "score_change",
    "score_paired",
    "heatmap_rgb",
    "mask_outline",
    "evaluate_real_composites",
    "write_reference_free_report",
]

log = logging.getLogger(__name__)

#: a per-image ratio at least this high counts as "changes the object, not the background"
RATIO_GOAL = 4.0

RunFn = Callable[[np.ndarray, "np.ndarray | None"], np.ndarray]


def delta_e(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """CIE76 ``ΔE`` ``(H, W)`` float64 between two uint8 RGB images ``(H, W, 3)``.

    >>> img = np.zeros((1, 2, 3), np.uint8); other = img.copy(); other[0, 1] = 255
    >>> [round(float(v), 1) for v in delta_e(img, other)[0]]
    [0.0, 100.0]
    """
    from skimage.color import rgb2lab

    if a.shape != b.shape or a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"expected two (H, W, 3) images of one size, got {a.shape} and {b.shape}")
    d = rgb2lab(a) - rgb2lab(b)
    return np.sqrt(np.sum(d * d, axis=2))


@dataclass(frozen=True)
class CompositeScore:
    """Figures of one composite: ``id``, mask share ``fg_ratio``, ``de_in``, ``de_out``,
    ``ratio`` (see the module docstring), the size ``width`` x ``height`` and, for a
    composite with its real photo, the paired ``mse``, ``fmse``, ``psnr`` (else ``None``)."""

    id: str
    fg_ratio: float
    de_in: float
    de_out: float
    ratio: float
    width: int
    height: int
    mse: float | None = None
    fmse: float | None = None
    psnr: float | None = None

    @property
    def paired(self) -> bool:
        """Whether the paired figures were computed (the composite has a real photo)."""
        return self.mse is not None


@dataclass(frozen=True)
class CompositeFailure:
    """A composite that could not be scored: ``id``, the file and the reason."""

    id: str
    file: str
    reason: str


def score_change(id: str, composite: np.ndarray, result: np.ndarray, mask: np.ndarray) -> tuple[CompositeScore, np.ndarray]:
    """Score one result against its composite; returns the score and the ``ΔE`` map.

    Raises:
        ValueError: shapes differ, or the mask is empty or covers everything.
    """
    m = np.asarray(mask).astype(bool)
    if m.shape != composite.shape[:2]:
        raise ValueError(f"mask {m.shape} does not match the image {composite.shape[:2]}")
    if not m.any() or m.all():
        raise ValueError("the mask must cover part of the image (it is empty or full)")
    de = delta_e(result, composite)
    de_in, de_out = float(de[m].mean()), float(de[~m].mean())
    ratio = de_in / de_out if de_out > 0 else (math.inf if de_in > 0 else math.nan)
    h, w = m.shape
    return CompositeScore(id, float(m.mean()), de_in, de_out, ratio, w, h), de


def score_paired(result: np.ndarray, real: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """Paired figures of a full-resolution ``result`` against the ``real`` photo: ``mse``,
    ``fmse`` (``mask`` binarised at 0.5) and ``psnr`` (data range 255), as in
    :mod:`harmonykit.evaluation.metrics`.

    >>> a = np.zeros((2, 2, 3), np.uint8); b = a.copy(); b[0, 0, 0] = 6
    >>> score_paired(a, b, np.array([[True, True], [False, False]]))["fmse"]
    6.0
    """
    mse = M.mse(result, real)
    return {"mse": mse, "fmse": M.fmse(result, real, mask), "psnr": M.psnr_from_mse(mse)}


@dataclass
class ReferenceFreeResult:
    """What :func:`evaluate_real_composites` returns: per-image scores, failures, the
    summary dict (as written to ``metrics.json``) and the figure rows."""

    scores: list[CompositeScore] = field(default_factory=list)
    failures: list[CompositeFailure] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    figure: bytes = b""


def _summary(scores: Sequence[CompositeScore], label: str, with_mask: bool, seconds: float,
             failures: Sequence[CompositeFailure], source: str) -> dict[str, Any]:
    de_in = float(np.mean([s.de_in for s in scores])) if scores else math.nan
    de_out = float(np.mean([s.de_out for s in scores])) if scores else math.nan
    ratios = np.array([s.ratio for s in scores], dtype=np.float64)
    out = {
        "kind": "reference_free",
        "method": label,
        "mask": "given" if with_mask else "mask-free",
        "source": source,
        "counts": {"scored": len(scores), "failed": len(failures)},
        "overall": {
            "de_in": de_in,
            "de_out": de_out,
            "ratio_of_means": de_in / de_out if scores and de_out > 0 else (math.inf if scores and de_in > 0 else math.nan),
            "median_ratio": float(np.nanmedian(ratios)) if scores and not np.isnan(ratios).all() else math.nan,
            "share_ratio_at_least_4": float(np.mean(ratios >= RATIO_GOAL)) if scores else math.nan,
        },
        "failures": [asdict(f) for f in failures],
        "timing": {"seconds": seconds, "images_per_second": len(scores) / seconds if seconds > 0 else math.nan},
    }
    paired = [s for s in scores if s.paired]
    if paired:
        out["paired"] = {
            "n": len(paired),
            "resolution": "full",
            "mean": {k: float(np.nanmean([getattr(s, k) for s in paired])) for k in ("mse", "fmse", "psnr")},
            "per_image": [{"id": s.id, "mse": s.mse, "fmse": s.fmse, "psnr": s.psnr} for s in paired],
        }
    return out


def heatmap_rgb(values: np.ndarray, scale: float) -> np.ndarray:
    """``(H, W)`` values as an ``inferno`` heatmap ``(H, W, 3)`` uint8, ``scale`` the brightest."""
    from matplotlib import colormaps

    return (colormaps["inferno"](np.clip(values / scale, 0.0, 1.0))[..., :3] * 255.0).astype(np.uint8)


def mask_outline(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """A copy of ``image`` with the edge of the bool ``mask`` drawn in green (about 1/128 of
    the shorter side thick)."""
    from scipy.ndimage import binary_erosion

    edge = mask & ~binary_erosion(mask, iterations=max(1, min(mask.shape) // 128))
    out = image.copy()
    out[edge] = (0, 255, 0)
    return out


def _figure(rows: Sequence[tuple[str, np.ndarray, np.ndarray, np.ndarray]], title: str, scale: float,
            cell: int = 160) -> bytes:
    from PIL import Image, ImageDraw

    label_w, head_h, pad = 170, 34, 4
    cols = ("composite (mask outline)", "result", f"change dE (0..{scale:g})")
    width = label_w + len(cols) * (cell + pad) + pad
    height = head_h + max(1, len(rows)) * (cell + pad) + pad
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    draw.text((pad, 2), title, fill="black")
    for j, name in enumerate(cols):
        draw.text((label_w + j * (cell + pad) + pad, head_h - 14), name, fill="black")
    for i, (text, comp, res, heat) in enumerate(rows):
        y = head_h + i * (cell + pad)
        draw.multiline_text((pad, y + 4), text, fill="black", spacing=3)
        for j, img in enumerate((comp, res, heat)):
            tile = Image.fromarray(img)
            tile.thumbnail((cell, cell), Image.Resampling.BILINEAR)
            x = label_w + j * (cell + pad) + pad
            canvas.paste(tile, (x + (cell - tile.size[0]) // 2, y + (cell - tile.size[1]) // 2))
    buf = io.BytesIO()
    canvas.save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def evaluate_real_composites(
    composites: CompositeSet,
    run: RunFn,
    *,
    with_mask: bool = False,
    label: str = "method",
    limit: int | None = None,
    figure_rows: int = 4,
    heat_scale: float = 20.0,
    show_progress: bool | None = None,
) -> ReferenceFreeResult:
    """Run ``run`` on every composite and score where it changed the image.

    Args:
        composites: the set (:func:`harmonykit.data.composites.open_composites`).
        run: ``(image (H, W, 3) uint8, mask (H, W) bool or None) -> (H, W, 3) uint8``.
        with_mask: give the mask to ``run`` (else ``None``: the mask-free setting).
        label: the method's name in the report.
        limit: score only the first ``limit`` composites.
        figure_rows: rows of the largest and of the smallest per-image ratio in the figure.
        heat_scale: ``ΔE`` shown as the brightest heatmap colour.
        show_progress: progress bar on stderr (``None``: unless ``HARMONYKIT_NO_PROGRESS``).

    Items that cannot be read or run are failures (listed, never silently dropped). Items
    with a real photo (``item.real_path``) also get the paired ``mse`` / ``fmse`` / ``psnr``
    of the result against it, at full resolution; a real photo of another size fails the item.
    """
    items = composites.items[:limit] if limit is not None else list(composites.items)
    result = ReferenceFreeResult()
    result.failures = [CompositeFailure(p.id, str(p.path), p.reason) for p in composites.problems]
    keep: list[tuple[CompositeScore, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    t0 = time.perf_counter()
    bar = progress(items, desc=f"evaluate {label}", unit="img",
                   disable=None if show_progress is None else not show_progress)
    for it in bar:
        try:
            image, mask = read_composite(it)
            real = read_real(it, image.shape[:2]) if it.real_path is not None else None
            out = np.asarray(run(image, mask if with_mask else None))
            if out.shape != image.shape or out.dtype != np.uint8:
                raise HarmonykitError(f"the method returned {out.dtype} {out.shape} for a {image.shape} image")
            score, de = score_change(it.id, image, out, mask)
            if real is not None:
                score = replace(score, **score_paired(out, real, mask))
        except (HarmonykitError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or str(exc)
            result.failures.append(CompositeFailure(it.id, str(getattr(exc, "path", it.image_path)), reason))
            continue
        result.scores.append(score)
        keep.append((score, image, out, mask, de))
        # bound memory: keep only candidates for the figure
        if len(keep) > 4 * figure_rows:
            keep.sort(key=lambda k: -1.0 if math.isnan(k[0].ratio) else k[0].ratio)
            keep = keep[:figure_rows] + keep[-figure_rows:]
    seconds = time.perf_counter() - t0
    result.summary = _summary(result.scores, label, with_mask, seconds, result.failures,
                              f"{composites.layout}: {composites.root}")
    result.figure = _ratio_figure(keep, figure_rows, label, result.summary, len(result.scores), heat_scale)
    return result


def _ratio_figure(keep: list[tuple[CompositeScore, np.ndarray, np.ndarray, np.ndarray, np.ndarray]],
                  figure_rows: int, label: str, summary: dict[str, Any], n: int, heat_scale: float) -> bytes:
    """The figure: the ``figure_rows`` largest per-image ratios, then the smallest."""
    keep.sort(key=lambda k: -1.0 if math.isnan(k[0].ratio) else k[0].ratio)
    picked = keep[-figure_rows:][::-1] + [k for k in keep[:figure_rows] if k not in keep[-figure_rows:]]
    rows = [
        (f"{s.id}\nratio {s.ratio:.2f}\ndE in {s.de_in:.2f}\ndE out {s.de_out:.2f}",
         mask_outline(img, m), out, heatmap_rgb(de, heat_scale))
        for s, img, out, m, de in picked
    ]
    o = summary["overall"]
    title = (f"{label}, {summary['mask']}: dE in {o['de_in']:.2f}, out {o['de_out']:.3f}, "
             f"ratio {o['ratio_of_means']:.2f} ({n} composites); top: largest ratios")
    return _figure(rows, title, heat_scale)


def _table(summary: dict[str, Any]) -> str:
    o = summary["overall"]

    def f(v: float, nd: int = 2) -> str:
        return "inf" if v == math.inf else ("n/a" if v != v else f"{v:.{nd}f}")

    text = (
        f"Real composites, reference-free ({summary['source']}; {summary['counts']['scored']} scored, "
        f"{summary['counts']['failed']} failed)\n\n"
        "| method | mask | ΔE inside | ΔE outside | ratio (of means) | median ratio | ratio ≥ 4 |\n"
        "|---|---|---:|---:|---:|---:|---:|\n"
        f"| {summary['method']} | {summary['mask']} | {f(o['de_in'])} | {f(o['de_out'], 3)} | "
        f"{f(o['ratio_of_means'])} | {f(o['median_ratio'])} | {f(100 * o['share_ratio_at_least_4'], 1)} % |\n"
    )
    paired = summary.get("paired")
    if paired:
        rows = [(f"{p['id']}", p) for p in paired["per_image"]]
        rows.append((f"**mean ({paired['n']} paired)**", paired["mean"]))
        text += (
            f"\nPaired with the real photos (X_real; full resolution, {summary['method']}, "
            f"{summary['mask']})\n\n| image | MSE | fMSE | PSNR |\n|---|---:|---:|---:|\n"
            + "".join(f"| {name} | {f(v['mse'])} | {f(v['fmse'])} | {f(v['psnr'])} |\n" for name, v in rows)
        )
    return text


def write_reference_free_report(out_dir: str | Path, result: ReferenceFreeResult) -> dict[str, Path]:
    """Write ``metrics.json``, ``per_image.csv``, ``table.md`` and ``figure.png`` atomically."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    paired = any(s.paired for s in result.scores)
    w.writerow(["id", "width", "height", "fg_ratio", "de_in", "de_out", "ratio"]
               + (["mse", "fmse", "psnr"] if paired else []))
    for s in result.scores:
        extra = [("" if v is None else f"{v:.6f}") for v in (s.mse, s.fmse, s.psnr)] if paired else []
        w.writerow([s.id, s.width, s.height, f"{s.fg_ratio:.6f}", f"{s.de_in:.6f}", f"{s.de_out:.6f}",
                    "inf" if s.ratio == math.inf else ("nan" if math.isnan(s.ratio) else f"{s.ratio:.6f}")] + extra)

    def clean(v: Any) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            return None if v != v else "inf"
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, list):
            return [clean(x) for x in v]
        return v

    paths = {name: out / name for name in ("metrics.json", "per_image.csv", "table.md", "figure.png")}
    atomic_write_text(paths["metrics.json"], json.dumps(clean(result.summary), indent=2, ensure_ascii=False) + "\n")
    atomic_write_text(paths["per_image.csv"], buf.getvalue())
    atomic_write_text(paths["table.md"], _table(result.summary))
    atomic_write_bytes(paths["figure.png"], result.figure)
    return paths
