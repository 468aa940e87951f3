"""Mask-free soft masks of a two-stage model: how the map from ``p`` to the mask trades off.

    python -m benchmarks.results.soft_mask_sweep --bench sgmmh=reports/lalonde/val_sgmmh \
        --bench ct=reports/lalonde/val_ct --limit 64 \
        --composites ../shared/data/lalonde/onlineDb --composites-limit 100 \
        --map p3 --map p1 --map ramp:0.3:0.6 --map ramp:0.5:0.8 --map thr:0.5

A model with a localisation gate (the packaged ``default``) harmonizes a photo without a mask
by giving its harmonizer a soft mask made from the localisation ``p``: ``p ** k`` (the
model's ``two_stage_power``). This script replaces that map, with the weights unchanged: the
first call gives ``p``, the second harmonizes with ``map(p)`` as the mask. Maps: ``pK``
(``p ** K``), ``ramp:LO:HI`` (``clip((p - LO) / (HI - LO), 0, 1)``) and ``thr:T`` (``p > T``).

For each map it prints the MSE over the composite's on each paired benchmark (any layout the
evaluator reads; the first ``--limit`` pairs) and, with ``--composites``, the reference-free
figures on real composites (mean CIELAB change inside / outside the pasted object, their
ratio, the share of composites with a ratio of at least 4). A map that helps the paired
benchmark by changing more pixels also changes more of a real composite's background: this
script puts both figures side by side. ``--oracle`` adds the row with the true mask.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

SoftMap = Callable[[np.ndarray], np.ndarray]


def parse_map(text: str) -> SoftMap:
    """``pK`` / ``ramp:LO:HI`` / ``thr:T`` as a function of ``p`` (float arrays in [0, 1]).

    >>> parse_map("p2")(np.array([0.5]))
    array([0.25])
    >>> parse_map("ramp:0.2:0.6")(np.array([0.1, 0.4, 0.9]))
    array([0. , 0.5, 1. ])
    >>> parse_map("thr:0.5")(np.array([0.4, 0.6]))
    array([0., 1.])
    """
    try:
        if text.startswith("p"):
            k = float(text[1:])
            if k > 0:
                return lambda p: p**k
        elif text.startswith("ramp:"):
            lo, hi = (float(v) for v in text.split(":")[1:])
            if hi > lo:
                return lambda p: np.clip((p - lo) / (hi - lo), 0.0, 1.0)
        elif text.startswith("thr:"):
            t = float(text.split(":")[1])
            return lambda p: (p > t).astype(np.float64)
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"bad map {text!r}: pK (K > 0), ramp:LO:HI (HI > LO) or thr:T")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="default", help="a gated two-stage model (default: the packaged default)")
    ap.add_argument("--bench", action="append", default=[], metavar="NAME=PATH", help="paired benchmark (repeatable)")
    ap.add_argument("--limit", type=int, default=None, help="first N pairs of each benchmark")
    ap.add_argument("--size", type=int, default=256, help="pairs resized to SIZE x SIZE, as the evaluator does")
    ap.add_argument("--composites", type=Path, default=None, help="real composites (onlineDb or composite folder)")
    ap.add_argument("--composites-limit", type=int, default=None)
    ap.add_argument("--composites-split", choices=("train", "val"), default=None,
                    help="an onlineDb's composites of that split only (by source photo): choose a map on "
                         "train, report val")
    ap.add_argument("--map", action="append", default=[], dest="maps", help="pK, ramp:LO:HI or thr:T (repeatable)")
    ap.add_argument("--oracle", action="store_true", help="also the true mask (paired benchmarks)")
    ap.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    args = ap.parse_args(argv)
    maps = {m: parse_map(m) for m in (args.maps or ["p3"])}
    os.environ.setdefault("HARMONYKIT_NO_PROGRESS", "1")
    from harmonykit.data.datasets import open_benchmark
    from harmonykit.evaluation.pairs import prepare_pair
    from harmonykit.inference import Harmonizer
    from harmonykit.io import atomic_write_text

    h = Harmonizer.from_pretrained(args.model)

    def localise(img: np.ndarray) -> np.ndarray:
        p = h(img).localisation
        if p is None:
            raise SystemExit(f"soft_mask_sweep: model {args.model!r} has no localisation gate")
        return p.astype(np.float64)

    def apply_map(fn: SoftMap, img: np.ndarray, p: np.ndarray) -> np.ndarray:
        soft = fn(p).astype(np.float32)
        return img if soft.max() <= 0 else h(img, mask=soft).rgb

    results: dict[str, dict[str, dict[str, float]]] = {}
    for spec in args.bench:
        name, _, path = spec.partition("=")
        pairs = open_benchmark(Path(path or name))
        n = len(pairs) if args.limit is None else min(args.limit, len(pairs))
        comp_sse, sse = 0.0, {k: 0.0 for k in list(maps) + (["oracle"] if args.oracle else [])}
        for i in range(n):
            pair = prepare_pair(pairs[i], args.size)  # as the evaluator scores it
            real = pair.real.astype(np.float64)
            comp_sse += float(np.mean((pair.composite - real) ** 2))
            p = localise(pair.composite)  # once per pair, shared by every map
            for k, fn in maps.items():
                sse[k] += float(np.mean((apply_map(fn, pair.composite, p) - real) ** 2))
            if args.oracle:
                sse["oracle"] += float(np.mean((h(pair.composite, mask=pair.mask).rgb - real) ** 2))
        results[name] = {k: {"x_composite": v / comp_sse} for k, v in sse.items()}
        print(f"{name} ({n} pairs, composite MSE {comp_sse / n:.2f}): "
              + ", ".join(f"{k} x{v / comp_sse:.3f}" for k, v in sse.items()), flush=True)
    if args.composites is not None:
        from harmonykit.data.composites import open_composites
        from harmonykit.evaluation.reference_free import evaluate_real_composites

        comps = open_composites(args.composites, split=args.composites_split)
        real_rows = {}
        # one evaluator pass per map, so each composite is localised once per map (keeping every
        # composite's p at its own size between passes would cost memory in proportion to the set)
        for k, fn in maps.items():
            res = evaluate_real_composites(comps, lambda img, _m, fn=fn: apply_map(fn, img, localise(img)),
                                           with_mask=False,
                                           label=k, limit=args.composites_limit, show_progress=False)
            o = res.summary["overall"]
            real_rows[k] = {x: float(o[x]) for x in ("de_in", "de_out", "ratio_of_means", "median_ratio",
                                                     "share_ratio_at_least_4")}
            print(f"real composites ({len(res.scores)}), {k}: dE in {o['de_in']:.2f} out {o['de_out']:.3f} "
                  f"ratio {o['ratio_of_means']:.2f}, {100 * o['share_ratio_at_least_4']:.1f} % >= 4", flush=True)
        results["real composites"] = real_rows
    if args.out:
        atomic_write_text(args.out, json.dumps({"model": args.model, "results": results}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
