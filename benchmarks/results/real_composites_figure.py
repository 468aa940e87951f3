"""Before/after figure on real composites (no ground truth): composite | mask-free result |
result with the mask | the model's L / a / b "add" operator masks, plus full-resolution timings.

    python -m benchmarks.results.real_composites_figure --folder ../shared/data/real_composites \
        --model default --out docs/figures/real_composites.jpg

Every composite is harmonized at its own resolution (up to 19 MP); the figure shows
downscaled copies. Masks are found as ``<stem>_mask.*`` next to each composite.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from benchmarks._common import REPO


def fit_size(shape: tuple[int, ...], height: int) -> tuple[int, int]:
    """``(h, w)`` of an image of ``shape`` scaled to fit a ``height x 1.5 height`` box."""
    h, w = shape[:2]
    scale = min(height / h, round(1.5 * height) / w)
    return max(1, round(h * scale)), max(1, round(w * scale))


def fit_box(img: np.ndarray, height: int, pad: bool = True) -> np.ndarray:
    """Fit ``img`` into a white ``height x 1.5 height`` box (aspect ratio kept, bilinear);
    ``pad=False``: the scaled image alone."""
    box_w = round(1.5 * height)
    sh, sw = fit_size(img.shape, height)
    small = img if (sh, sw) == img.shape[:2] else np.asarray(Image.fromarray(img).resize((sw, sh), Image.BILINEAR))
    if not pad:
        return small
    out = np.full((height, box_w, 3), 255, np.uint8)
    y, x = (height - small.shape[0]) // 2, (box_w - small.shape[1]) // 2
    out[y : y + small.shape[0], x : x + small.shape[1]] = small
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--folder", type=Path, default=REPO.parent / "shared" / "data" / "real_composites")
    ap.add_argument("--model", default="default")
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "figures" / "real_composites.png")
    ap.add_argument("--height", type=int, default=180)
    ap.add_argument("--limit", type=int, default=None)
    args = ap.parse_args(argv)

    from harmonykit.inference import Harmonizer
    from harmonykit.inference.batch import find_mask
    from harmonykit.io import list_images, read_image, read_mask, write_image

    h = Harmonizer.from_pretrained(args.model)
    pairs = [(p, find_mask(p, args.folder)) for p in list_images(args.folder) if not p.stem.endswith("_mask")]
    pairs = pairs[: args.limit] if args.limit else pairs
    rows = []
    labels = ["composite", "no mask", "with mask", "l_add", "a_add", "b_add"]
    print("| file | size | MP | network s (no mask) | apply s | total s |\n|---|---|---:|---:|---:|---:|")
    for comp_path, mask_path in pairs:
        comp = read_image(comp_path)
        t = time.perf_counter()
        free = h(comp)
        wall = time.perf_counter() - t
        cells = [comp, free.rgb]
        if mask_path is not None and h.mask_use != "never":
            cells.append(h(comp, mask=read_mask(mask_path, size=comp.shape[:2])).rgb)
        else:
            cells.append(np.full_like(comp, 255))
        if free.operator_masks is not None:
            maps = free.operator_masks.heatmaps(size=comp.shape[:2]).images
            cells += [maps.get(ch, np.full_like(comp, 255)) for ch in ("l_add", "a_add", "b_add")]
        tm = free.timings
        mp = comp.shape[0] * comp.shape[1] / 1e6
        print(f"| {comp_path.name} | {comp.shape[1]}x{comp.shape[0]} | {mp:.1f} | {tm.get('network', float('nan')):.2f} | "
              f"{tm.get('apply', float('nan')):.2f} | {wall:.2f} |")
        row = np.concatenate([fit_box(c, args.height) for c in cells], axis=1)
        rows.append(row)
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 4), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    grid = np.concatenate(rows, axis=0)
    head = Image.new("RGB", (width, 16), "white")
    d = ImageDraw.Draw(head)
    cw = round(1.5 * args.height)
    for i, t in enumerate(labels):
        d.text((i * cw + 3, 2), t, fill="black")
    write_image(args.out, np.concatenate([np.asarray(head), grid], axis=0))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
