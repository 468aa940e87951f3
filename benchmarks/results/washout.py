"""Is a harmonized object washed out? Saturation and contrast inside the mask, against the real.

Usage::

    python -m benchmarks.results.washout BENCH --model default --model new=runs/x/weights [--limit 100]
    python -m benchmarks.results.washout BENCH --model default --mask-free

For every pair of a paired benchmark (any layout ``harmonykit evaluate`` reads), the
object (mask >= 0.5) of the composite, of each model's result (with the mask unless
``--mask-free``) and of the real photo is measured in CIELAB (D65):

* *chroma*: the mean of ``sqrt(a^2 + b^2)`` (saturation);
* *contrast*: the standard deviation of ``L``.

Printed per method: the mean over pairs of ``log2(value / real's value)`` for each (0: as
the real photo; -0.32: 20 % less; a washed-out, hazy object is negative on both), the
share of pairs more than 20 % below the real photo, and the mean of the same log-ratio for
the composite, whose own bias the harmonizer should undo. A model that only hedges towards
the mean colour shows a negative bias that the composite does not have.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import torch

LOW = math.log2(0.8)  # "more than 20 % below the real photo"


def object_stats(rgb: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    """``(mean chroma, L standard deviation)`` of ``rgb`` (uint8 ``(H, W, 3)``) where
    ``mask >= 0.5``.

    >>> grey = np.full((4, 4, 3), 128, np.uint8)
    >>> c, s = object_stats(grey, np.ones((4, 4)))
    >>> round(c, 1), round(s, 1)
    (0.0, 0.0)
    """
    from harmonykit.color import rgb_to_lab

    lab = rgb_to_lab(torch.from_numpy(np.array(rgb)).permute(2, 0, 1)[None].double() / 255.0)[0]
    inside = torch.from_numpy(np.asarray(mask) >= 0.5)
    L, a, b = (lab[i][inside] for i in range(3))
    return float(torch.sqrt(a * a + b * b).mean()), float(L.std(unbiased=False))


def log_ratio(value: float, ref: float, floor: float = 1.0) -> float:
    """``log2(value / ref)`` with both floored at ``floor`` (near-grey objects count as grey).

    >>> log_ratio(10.0, 20.0), log_ratio(0.1, 0.5)
    (-1.0, 0.0)
    """
    return math.log2(max(value, floor) / max(ref, floor))


def summarize(rows: list[tuple[float, float]]) -> dict[str, float]:
    """Mean log-ratios ``(chroma, contrast)`` and the share below :data:`LOW`."""
    arr = np.asarray(rows, dtype=np.float64).reshape(-1, 2)
    return {"chroma": float(arr[:, 0].mean()), "contrast": float(arr[:, 1].mean()),
            "chroma_low": float((arr[:, 0] < LOW).mean()), "contrast_low": float((arr[:, 1] < LOW).mean())}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("bench", type=Path, help="a paired benchmark folder")
    ap.add_argument("--model", action="append", default=[],
                    help="NAME=PATH or a packaged name / weights folder (repeatable)")
    ap.add_argument("--mask-free", action="store_true", help="harmonize without the mask (default: with it)")
    ap.add_argument("--limit", type=int, default=None, help="only the first N pairs")
    ap.add_argument("--work-size", type=int, default=256)
    args = ap.parse_args(argv)

    from harmonykit.data.datasets import open_benchmark
    from harmonykit.inference import Harmonizer

    pairs = open_benchmark(args.bench)
    n = len(pairs) if args.limit is None else min(args.limit, len(pairs))
    models = []
    for spec in args.model or ["default"]:
        name, _, path = spec.partition("=")
        models.append((name, Harmonizer.from_pretrained(path or name, work_size=args.work_size)))
    rows: dict[str, list[tuple[float, float]]] = {"composite": []}
    for name, _ in models:
        rows[name] = []
    for i in range(n):
        s = pairs[i]
        ref = object_stats(s.real, s.mask)
        comp = object_stats(s.composite, s.mask)
        rows["composite"].append((log_ratio(comp[0], ref[0]), log_ratio(comp[1], ref[1])))
        for name, h in models:
            out = h(s.composite, mask=None if args.mask_free else s.mask).rgb
            got = object_stats(out, s.mask)
            rows[name].append((log_ratio(got[0], ref[0]), log_ratio(got[1], ref[1])))
    setting = "mask-free" if args.mask_free else "with the mask"
    print(f"{args.bench}: {n} pairs, {setting}; log2(object's value / real photo's), mean over pairs")
    print(f"{'method':<24} {'chroma':>8} {'contrast':>9} {'chroma <-20%':>13} {'contrast <-20%':>15}")
    for name, r in rows.items():
        m = summarize(r)
        print(f"{name:<24} {m['chroma']:8.3f} {m['contrast']:9.3f} {100 * m['chroma_low']:12.1f}% "
              f"{100 * m['contrast_low']:14.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
