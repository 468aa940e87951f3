"""Before/after GIF of video harmonization: a synthetic clip, composite | harmonized.

    python -m benchmarks.results.video_demo                                   # docs/figures/video_demo.gif
    python -m benchmarks.results.video_demo --image examples/coffee_real.png --mask examples/coffee_mask.png

The clip is made as the video benchmark makes its clips (:mod:`harmonykit.video.benchmark`):
a slow pan and zoom over a photo (``examples/cat_real.png``), the masked region
(``examples/cat_mask.png``) graded by one fixed colour transform (CIELAB scaling,
``--grade L,A,B``) for the whole clip and blended in by the soft mask. The frames are
harmonized in memory with :class:`harmonykit.video.VideoHarmonizer` (the packaged
``default`` model, temporal smoothing 0.8, the moving mask given) and written side by side
as an animated GIF (a shared palette, so the GIF itself adds no flicker). Printed: per-clip
MSE against the real clip, for the composite and the result, and the temporal-consistency
error (TCE, docs/evaluation.md) of smoothed and independent frames.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

REPO = Path(__file__).resolve().parents[2]


def pan_boxes(size: tuple[int, int], out: tuple[int, int], frames: int, pan: float,
              zoom: float) -> list[tuple[float, float, float, float]]:
    """Crop boxes ``(x0, y0, x1, y1)`` for a left-to-right pan with a slow zoom-in over a
    photo of ``size`` ``(H, W)``, at the output's aspect ratio ``out`` ``(H, W)``."""
    h, w = size
    aspect = out[1] / out[0]
    bw = min(w, h * aspect) * 0.85
    bh = bw / aspect
    boxes = []
    for i in range(frames):
        t = i / (frames - 1)
        z = 1.0 + zoom * t
        ww, hh = bw / z, bh / z
        cx = w / 2 + (t - 0.5) * pan * bw
        cy = h / 2
        cx = min(max(cx, ww / 2), w - ww / 2)
        cy = min(max(cy, hh / 2), h - hh / 2)
        boxes.append((cx - ww / 2, cy - hh / 2, cx + ww / 2, cy + hh / 2))
    return boxes


def _label(panel: np.ndarray, text: str) -> np.ndarray:
    """``panel`` under a 14-pixel caption bar."""
    bar = Image.new("RGB", (panel.shape[1], 14), (38, 50, 56))
    ImageDraw.Draw(bar).text((4, 1), text, fill=(255, 255, 255))
    return np.concatenate([np.asarray(bar), panel], axis=0)


def side_by_side(left: np.ndarray, right: np.ndarray, gap: int = 4) -> np.ndarray:
    """``composite | harmonized`` with captions and a white gap."""
    a, b = _label(left, "composite"), _label(right, "harmonized (video, smoothed)")
    sep = np.full((a.shape[0], gap, 3), 255, np.uint8)
    return np.concatenate([a, sep, b], axis=1)


def write_gif(frames: list[np.ndarray], path: Path, fps: float, colors: int = 128) -> int:
    """An animated GIF with one palette for all frames (taken from a few of them); bytes."""
    sample = np.concatenate(frames[:: max(1, len(frames) // 6)], axis=0)
    palette = Image.fromarray(sample).quantize(colors=colors, method=Image.Quantize.MEDIANCUT)
    images = [Image.fromarray(f).quantize(palette=palette, dither=Image.Dither.NONE) for f in frames]
    path.parent.mkdir(parents=True, exist_ok=True)
    images[0].save(path, save_all=True, append_images=images[1:], duration=round(1000 / fps), loop=0,
                   optimize=True, disposal=1)
    return path.stat().st_size


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--image", type=Path, default=REPO / "examples" / "cat_real.png", help="the (real) photo")
    ap.add_argument("--mask", type=Path, default=REPO / "examples" / "cat_mask.png", help="the region to grade")
    ap.add_argument("--model", default="default")
    ap.add_argument("--grade", default="0.8,1.3,1.9", metavar="L,A,B", help="CIELAB factors of the fixed grade")
    ap.add_argument("--frames", type=int, default=64)
    ap.add_argument("--fps", type=float, default=12.0)
    ap.add_argument("--width", type=int, default=160, help="width of each panel (the GIF is about twice that)")
    ap.add_argument("--pan", type=float, default=0.35, help="pan distance, a fraction of the crop's width")
    ap.add_argument("--zoom", type=float, default=0.1)
    ap.add_argument("--smoothing", type=float, default=0.8)
    ap.add_argument("--work-size", type=int, default=256)
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "figures" / "video_demo.gif")
    args = ap.parse_args(argv)

    from harmonykit.data.perturb.ops import LabScale
    from harmonykit.io import read_image, read_mask
    from harmonykit.video import VideoHarmonizer
    from harmonykit.video.benchmark import render_clip
    from harmonykit.video.metrics import temporal_consistency_error

    photo = read_image(args.image)
    mask = read_mask(args.mask, photo.shape[:2])
    grade = LabScale(*(float(v) for v in args.grade.split(",")))
    h = round(args.width * photo.shape[0] / photo.shape[1]) // 2 * 2
    size = (h, args.width)
    boxes = pan_boxes(photo.shape[:2], size, args.frames, args.pan, args.zoom)
    clip = list(render_clip(photo, mask, grade, boxes, size))
    comps, reals, masks = (list(x) for x in zip(*clip))

    vh = VideoHarmonizer.from_pretrained(args.model, smoothing=args.smoothing, work_size=args.work_size)
    outs = [f.rgb for f in vh.frames(comps, masks=masks)]
    indep = [f.rgb for f in VideoHarmonizer(vh.harmonizer, smoothing=0.0).frames(comps, masks=masks)]

    def mse(xs: list[np.ndarray]) -> float:
        return float(np.mean([np.mean((x.astype(np.float64) - r) ** 2) for x, r in zip(xs, reals)]))

    def tce(xs: list[np.ndarray]) -> float:
        return float(temporal_consistency_error(xs, reals, masks))

    size_bytes = write_gif([side_by_side(c, o) for c, o in zip(comps, outs)], args.out, args.fps)
    print(f"{len(comps)} frames {size[1]}x{size[0]} harmonized ({args.model}, smoothing "
          f"{args.smoothing}); MSE vs real: composite {mse(comps):.1f}, smoothed {mse(outs):.1f}, "
          f"independent {mse(indep):.1f}; TCE: composite {tce(comps):.3f}, smoothed {tce(outs):.3f}, "
          f"independent {tce(indep):.3f}")
    print(f"wrote {args.out} ({size_bytes / 1024:.0f} KB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
