"""README gallery of real composites: composite | with the mask | mask-free | localisation.

Regenerate the README figures (after changing the packaged ``default`` model, say)::

    python -m benchmarks.results.gallery_figure --model default --out docs/figures/public_composites.jpg
    python -m benchmarks.results.gallery_figure --folder ../shared/data/lalonde/onlineDb --split val --pick 8 \
        --model default --out docs/figures/lalonde_composites.jpg

(``--folder`` defaults to ``../shared/data/real_composites_public`` beside the checkout; any
folder of ``X.<ext>`` + ``X_mask.<ext>`` works, ``X_real.<ext>`` ground-truth photos are
not rows.) Every composite is harmonized at its own resolution by
``harmonykit.inference.Harmonizer``, as ``harmonykit harmonize`` does: mask-free, and with
its mask file (JPEG masks are binarised at 128 after the maximum over channels by
``harmonykit.io.read_mask``, docs/inference.md). The figure shows downscaled copies:

* composite, the mask's outline in green;
* with the mask / mask-free: the harmonized results ("n/a" when the model never uses a mask
  or requires one);
* localisation: the model's "what was pasted" probability ``p`` of the mask-free pass as an
  ``inferno`` heatmap (0 black .. 1 yellow), mask outline in green; "n/a" for models without
  a localisation gate.

The figure is written as JPEG (quality ``--quality``) or PNG by the suffix of ``--out``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from benchmarks._common import REPO
from benchmarks.results.real_composites_figure import fit_box, fit_size

COLUMNS = ("composite (mask outline)", "with the mask", "mask-free", "localisation p (mask-free)")


def na_tile(height: int, text: str = "n/a") -> np.ndarray:
    """A light grey ``height x 1.5 height`` tile reading ``text``."""
    img = Image.new("RGB", (round(1.5 * height), height), (235, 235, 235))
    ImageDraw.Draw(img).text((round(0.7 * height), height // 2 - 6), text, fill=(90, 90, 90))
    return np.asarray(img)


def thumb_mask(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A bool ``mask`` resized (nearest) to ``shape`` ``(h, w)``."""
    small = Image.fromarray(mask.astype(np.uint8) * 255).resize((shape[1], shape[0]), Image.Resampling.NEAREST)
    return np.asarray(small) > 127


def gallery_row(h: object, image: np.ndarray, mask: np.ndarray, mask_path: Path, height: int) -> list[np.ndarray]:
    """The four cells of one composite (``h`` a Harmonizer; ``mask`` the bool mask read
    from ``mask_path`` by :func:`~harmonykit.data.composites.read_composite`, JPEG masks
    binarised, ``.mat`` annotations rasterised: the mask given and the outlines)."""
    from harmonykit.evaluation.reference_free import heatmap_rgb, mask_outline

    def outlined(img: np.ndarray) -> np.ndarray:
        small = fit_box(img, height, pad=False)
        return mask_outline(small, thumb_mask(mask, small.shape[:2]))

    with_mask = fit_box(h(image, mask=mask).rgb, height) if h.mask_use != "never" else na_tile(height)
    if h.mask_use == "required":
        free_cell, loc_cell = na_tile(height, "needs a mask"), na_tile(height)
    else:
        free = h(image)
        free_cell = fit_box(free.rgb, height)
        p = free.localisation_work  # at the work size: resized straight to the cell
        if p is None:
            loc_cell = na_tile(height)
        else:
            sh, sw = fit_size(image.shape, height)
            small = np.asarray(Image.fromarray(np.asarray(p, np.float32), "F").resize((sw, sh), Image.BILINEAR))
            heat = heatmap_rgb(np.clip(small, 0.0, 1.0), 1.0)
            loc_cell = fit_box(mask_outline(heat, thumb_mask(mask, heat.shape[:2])), height)
    return [fit_box(outlined(image), height), with_mask, free_cell, loc_cell]


def compose(rows: list[tuple[str, list[np.ndarray]]], height: int, title: str) -> np.ndarray:
    """Rows of cells under a header of column names; each row captioned with its name."""
    cw, cap, gap = round(1.5 * height), 14, 4
    width = len(COLUMNS) * (cw + gap)
    canvas = Image.new("RGB", (width, 34 + len(rows) * (height + cap + gap)), "white")
    draw = ImageDraw.Draw(canvas)
    draw.text((3, 2), title, fill="black")
    for j, name in enumerate(COLUMNS):
        draw.text((j * (cw + gap) + 3, 18), name, fill="black")
    for i, (caption, cells) in enumerate(rows):
        y = 34 + i * (height + cap + gap)
        draw.text((3, y), caption, fill="black")
        for j, cell in enumerate(cells):
            canvas.paste(Image.fromarray(cell), (j * (cw + gap), y + cap))
    return np.asarray(canvas)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--folder", type=Path, default=REPO.parent / "shared" / "data" / "real_composites_public")
    ap.add_argument("--model", default="default", help="packaged name, weights or run folder (default: default)")
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "figures" / "public_composites.jpg")
    ap.add_argument("--height", type=int, default=160, help="cell height in pixels (default 160)")
    ap.add_argument("--quality", type=int, default=85, help="JPEG quality (default 85)")
    ap.add_argument("--limit", type=int, default=None, help="only the first N composites")
    ap.add_argument("--pick", type=int, default=None,
                    help="N composites evenly spaced over the set (a large set, e.g. an onlineDb's 500)")
    ap.add_argument("--split", choices=("train", "val"), default=None,
                    help="an onlineDb's composites of that split only (by source photo; val: held out in training)")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)

    from harmonykit.data.composites import open_composites, read_composite
    from harmonykit.inference import Harmonizer
    from harmonykit.io import write_image

    composites = open_composites(args.folder, split=args.split)
    for p in composites.problems:
        print(f"skipped {p.id}: {p.path}: {p.reason}", file=sys.stderr)
    items = composites.items[: args.limit] if args.limit else composites.items
    if args.pick and len(items) > args.pick:
        items = [items[round(i * (len(items) - 1) / max(1, args.pick - 1))] for i in range(args.pick)]
    if not items:
        print(f"error: {args.folder}: no composite with its mask", file=sys.stderr)
        return 2
    h = Harmonizer.from_pretrained(args.model, device=args.device)
    rows = []
    for it in items:
        image, mask = read_composite(it)
        rows.append((f"{it.id}  {image.shape[1]}x{image.shape[0]}", gallery_row(h, image, mask, it.mask_path, args.height)))
        print(f"{it.id}: {image.shape[1]}x{image.shape[0]}", flush=True)
    grid = compose(rows, args.height, f"model {args.model}: each composite harmonized at its own resolution")
    write_image(args.out, grid, quality=args.quality)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KB, {grid.shape[1]}x{grid.shape[0]})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
