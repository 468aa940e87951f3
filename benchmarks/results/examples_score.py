"""Score the packaged examples against their real photos (the figures the README quotes).

    python -m benchmarks.results.examples_score                       # packaged default
    python -m benchmarks.results.examples_score --model runs/x --model default

``examples/<name>.png`` is a composite made from ``<name>_real.png`` (``make_examples.py``),
``<name>_mask.png`` the union of its perturbed regions. For each model: MSE (0-255 scale)
against the real photo, at the examples' own size, mask-free and with the mask, beside the
composite's own MSE.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

from benchmarks._common import EXAMPLES


def mse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", action="append", default=None, help="model spec (repeatable; default: default)")
    ap.add_argument("--examples", type=Path, default=EXAMPLES)
    args = ap.parse_args(argv)
    os.environ.setdefault("HARMONYKIT_NO_PROGRESS", "1")
    from harmonykit.inference import Harmonizer
    from harmonykit.io import read_image, read_mask

    names = sorted(p.name[: -len("_real.png")] for p in args.examples.glob("*_real.png"))
    rows = []
    for spec in args.model or ["default"]:
        h = Harmonizer.from_pretrained(spec)
        for name in names:
            comp = read_image(args.examples / f"{name}.png")
            real = read_image(args.examples / f"{name}_real.png")
            mask = read_mask(args.examples / f"{name}_mask.png")
            free, given = h(comp).rgb, h(comp, mask=mask).rgb
            rows.append((spec, name, mse(comp, real), mse(free, real), mse(given, real)))
    print("| model | example | composite MSE | mask-free MSE | with-mask MSE |")
    print("|---|---|---:|---:|---:|")
    for spec, name, c, f, g in rows:
        print(f"| {spec} | {name} | {c:.1f} | {f:.1f} ({f / c:.3f}) | {g:.1f} ({g / c:.3f}) |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
