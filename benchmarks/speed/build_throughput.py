"""Throughput of ``harmonykit build-benchmark`` (samples/s) and time share per stage.

Usage::

    python -m benchmarks.speed.build_throughput [PHOTOS_DIR] [--size 256] [--copies 4] [--workers 1 2]

The photo folder (default ``/work/shared/data/photos``) is replicated ``--copies`` times
(symlinks with distinct names, so every copy gets its own recipe) into a temporary source.
Two region settings are measured:

* ``slic``: regions computed per image by the builder (``--regions slic``);
* ``labels``: label maps given: slic maps precomputed once (on a 256 px copy, upsampled
  with nearest neighbour to the photo size) and saved as a generic label folder, so the
  builder only reads them (the ADE20K / LIP situation).

For each setting and worker count it prints samples/s (wall clock of the processing loop,
pool start-up included), samples/s per worker, samples per CPU-second (user + system time
of this process and its workers: the per-core rate, which stays meaningful on a machine
shared with other jobs) and the share of worker time spent in each stage: decode (read +
resize), regions, filters (perturbation), encode (PNG + hash + write).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

os.environ.setdefault("HARMONYKIT_NO_PROGRESS", "1")

from harmonykit.data.builder import STAGES, BuildSettings, build_benchmark  # noqa: E402
from harmonykit.io import encode_png, list_images, read_image  # noqa: E402
from harmonykit.regionmaps import superpixel_labels  # noqa: E402


def _make_source(photos: Path, root: Path, copies: int) -> tuple[Path, Path]:
    src, labels = root / "src", root / "labels"
    src.mkdir()
    labels.mkdir()
    for p in list_images(photos):
        img = read_image(p)
        h, w = img.shape[:2]
        scale = 256 / min(h, w)
        small = np.asarray(Image.fromarray(img).resize((max(1, round(w * scale)), max(1, round(h * scale))),
                                                       Image.Resampling.BILINEAR))
        lab = superpixel_labels(small, "slic")
        lab_full = np.asarray(Image.fromarray(lab.astype(np.uint8), "L").resize((w, h), Image.Resampling.NEAREST))
        png = encode_png(lab_full)
        for k in range(copies):
            name = f"{p.stem}_{k}"
            (src / f"{name}{p.suffix}").symlink_to(p.resolve())
            (labels / f"{name}.png").write_bytes(png)
    return src, labels


def cpu_seconds() -> float:
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("photos", nargs="?", default="/work/shared/data/photos")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--copies", type=int, default=4, help="copies of each photo (default 4)")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--regions", nargs="+", default=["slic", "labels"], choices=["slic", "felzenszwalb", "labels"])
    args = ap.parse_args(argv)

    photos = Path(args.photos)
    if not photos.is_dir():
        print(f"error: {photos}: not a folder", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="hk_build_tp_") as tmp:
        root = Path(tmp)
        t = time.perf_counter()
        src, labels = _make_source(photos, root, args.copies)
        n = len(list_images(src))
        print(f"source: {n} images ({args.copies} copies of {photos}), label maps precomputed in "
              f"{time.perf_counter() - t:.1f} s; size {args.size}; cpu count {os.cpu_count()}")
        print(f"{'regions':<10} {'workers':>7} {'samples':>7} {'wall s':>7} {'samples/s':>9} {'per worker':>10} {'per cpu-s':>9}  "
              + "  ".join(f"{s:>8}" for s in STAGES) + "  ms/sample (worker time)")
        for regions in args.regions:
            for workers in args.workers:
                out = root / f"out_{regions}_{workers}"
                settings = BuildSettings(
                    source=str(src), format="generic", labels=str(labels) if regions == "labels" else None,
                    regions=regions, size=args.size, seed=0,
                )
                cpu0 = cpu_seconds()
                rep = build_benchmark(settings, out, workers=workers, show_progress=False)
                cpu = cpu_seconds() - cpu0
                total = sum(rep.timings.values()) or 1.0
                rate = rep.built / rep.wall
                shares = "  ".join(f"{100 * rep.timings[s] / total:7.1f}%" for s in STAGES)
                print(f"{regions:<10} {workers:>7} {rep.built:>7} {rep.wall:>7.2f} {rate:>9.1f} {rate / workers:>10.1f} {rep.built / cpu:>9.1f}  "
                      f"{shares}  {1000 * total / max(rep.built, 1):.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
