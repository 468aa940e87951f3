"""Build throughput of the ``lut`` perturbation family (samples/s), 1 and 2 workers.

Usage (run it on a quiet machine; it prints everything, nothing is written to the repo)::

    python -m benchmarks.speed.lut_build_throughput [ONLINEDB] [--luts DIR] [--split val] \
        [--size 256] [--samples-per-image 2] [--workers 1 2] [--families lut colour-transfer]

Defaults: the Lalonde-Efros database ``../shared/data/lalonde/onlineDb`` and the 100 LUTs of
``../shared/data/luts`` beside the checkout, the val split, 256 px, 2 samples per photo, the
iHarmony4 layout: the settings of the val LUT benchmark of docs/data.md
(``build-benchmark --perturb lut --layout iharmony4``). ``colour-transfer`` (the same object,
iHarmony4-style) is measured too as the reference family; ``--families lut`` alone skips it.

Each (family, workers) run builds into a fresh temporary folder and prints samples/s (wall
clock of the processing loop, pool start-up included; the LUT folder is parsed once per
process, inside that loop), samples/s per worker, samples per CPU-second (user + system time
of this process and its workers: meaningful on a shared machine) and the share of worker
time per stage: decode (read + resize), regions, filters (the perturbation: here the LUT
grade and its redraws), encode (PNG + hash + write). ``--quick``: 3 photos at 32 px, one
sample each (a smoke test, not a measurement).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HARMONYKIT_NO_PROGRESS", "1")

from benchmarks._common import REPO
from benchmarks.speed.build_throughput import cpu_seconds
from harmonykit.data.builder import PERTURB_CHOICES, STAGES, BuildSettings, build_benchmark

SHARED = REPO.parent / "shared" / "data"


def measure(settings: BuildSettings, workers: int, root: Path, limit: int | None) -> dict[str, float]:
    """Build ``settings`` into a fresh folder under ``root`` with ``workers`` processes; the
    figures of one row (samples, wall, samples/s, per worker, per CPU-second, stage shares)."""
    out = Path(tempfile.mkdtemp(prefix=f"w{workers}_", dir=root))
    cpu0 = cpu_seconds()
    rep = build_benchmark(settings, out, workers=workers, limit=limit, show_progress=False, on_skip=lambda s: None)
    cpu = cpu_seconds() - cpu0
    total = sum(rep.timings.values()) or 1.0
    rate = rep.built / rep.wall if rep.wall > 0 else float("nan")
    row = {"samples": rep.built, "skipped": len(rep.skipped), "wall": rep.wall, "rate": rate,
           "per_worker": rate / workers, "per_cpu_s": rep.built / cpu if cpu > 0 else float("nan"),
           "ms_per_sample": 1000 * total / max(rep.built, 1)}
    row.update({s: 100 * rep.timings[s] / total for s in STAGES})
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("db", nargs="?", type=Path, default=SHARED / "lalonde" / "onlineDb")
    ap.add_argument("--luts", type=Path, default=SHARED / "luts")
    ap.add_argument("--split", default="val", choices=["train", "val"])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--samples-per-image", type=int, default=2)
    ap.add_argument("--limit", type=int, default=None, help="only the first N photos")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--families", nargs="+", default=["lut", "colour-transfer"], choices=["lut", "colour-transfer"])
    ap.add_argument("--quick", action="store_true", help="3 photos, 32 px, 1 sample each: a smoke test")
    args = ap.parse_args(argv)
    if args.quick:
        args.limit, args.size, args.samples_per_image = 3, 32, 1
    for p in (args.db, args.luts):
        if not p.is_dir():
            print(f"error: {p}: not a folder", file=sys.stderr)
            return 2

    print(f"source {args.db} (lalonde, split {args.split}, limit {args.limit}), luts {args.luts}; size {args.size}, "
          f"{args.samples_per_image} sample(s) per photo, iharmony4 layout; cpu count {os.cpu_count()}")
    print(f"{'family':<16} {'workers':>7} {'samples':>7} {'wall s':>7} {'samples/s':>9} {'per worker':>10} "
          f"{'per cpu-s':>9}  " + "  ".join(f"{s:>8}" for s in STAGES) + "  ms/sample (worker time)")
    with tempfile.TemporaryDirectory(prefix="hk_lut_tp_") as tmp:
        for family in args.families:
            settings = BuildSettings(
                source=str(args.db), format="lalonde", split=args.split, size=args.size, seed=0, layout="iharmony4",
                samples_per_image=args.samples_per_image, mix=PERTURB_CHOICES[family],
                luts=str(args.luts) if family == "lut" else None,
            )
            for workers in args.workers:
                r = measure(settings, workers, Path(tmp), args.limit)
                shares = "  ".join(f"{r[s]:7.1f}%" for s in STAGES)
                print(f"{family:<16} {workers:>7} {r['samples']:>7} {r['wall']:>7.2f} {r['rate']:>9.2f} "
                      f"{r['per_worker']:>10.2f} {r['per_cpu_s']:>9.2f}  {shares}  {r['ms_per_sample']:.1f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
