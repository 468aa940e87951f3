"""Where does one model lose to another? Two evaluation reports of the same benchmark, per image.

Usage::

    harmonykit evaluate BENCH --model default --out reports/a
    harmonykit evaluate BENCH --model small --out reports/b
    python -m benchmarks.results.report_diff reports/a reports/b [--worst 10]

Reads the ``per_image.csv`` of two reports (``harmonykit evaluate`` writes one per report)
and prints, for A and B, the MSE over the composite's (sum over images of the model's MSE /
the composite's) in groups of images:

* by the object's share of the image (the SRIN Table 2 idea, finer buckets);
* by quartile of the composite's own error (how wrong the input was: a model that
  "corrects" nearly right composites into wrong ones shows a figure above 1 in the first);

then the share of images where A is worse than B, the ``--worst`` images with the largest
excess of A over B, and their share of A's losses (the sum of A's excess over the images
where it is worse). Both reports must score the
same images (the same ids).
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

FG_EDGES = (0.0, 0.05, 0.15, 0.3, 0.5, 1.0001)


def read_per_image(report: Path) -> dict[str, dict[str, float]]:
    """``id -> {fg_ratio, mse, composite_mse}`` of a report folder (or its ``per_image.csv``)."""
    path = report / "per_image.csv" if report.is_dir() else report
    if not path.is_file():
        raise SystemExit(f"report_diff: {path}: no per_image.csv (is {report} a 'harmonykit evaluate' report?)")
    rows: dict[str, dict[str, float]] = {}
    with path.open(newline="") as f:
        for r in csv.DictReader(f):
            try:
                rows[r["id"]] = {k: float(r[k]) for k in ("fg_ratio", "mse", "composite_mse")}
            except (KeyError, ValueError) as exc:
                raise SystemExit(f"report_diff: {path}: unreadable row ({exc})") from None
    return rows


def grouped_ratios(mse_a: np.ndarray, mse_b: np.ndarray, comp: np.ndarray,
                   groups: list[tuple[str, np.ndarray]]) -> list[tuple[str, int, float, float]]:
    """``(label, n, A x composite, B x composite)`` for each non-empty group (a bool index).

    >>> a, b, c = np.array([1.0, 4.0]), np.array([2.0, 2.0]), np.array([2.0, 4.0])
    >>> grouped_ratios(a, b, c, [("all", np.array([True, True]))])
    [('all', 2, 0.8333333333333334, 0.6666666666666666)]
    """
    out = []
    for label, sel in groups:
        if sel.any():
            out.append((label, int(sel.sum()), float(mse_a[sel].sum() / comp[sel].sum()),
                        float(mse_b[sel].sum() / comp[sel].sum())))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("a", type=Path, help="report A (folder with per_image.csv)")
    ap.add_argument("b", type=Path, help="report B")
    ap.add_argument("--worst", type=int, default=10, help="list the N images where A loses most (default 10)")
    args = ap.parse_args(argv)
    ra, rb = read_per_image(args.a), read_per_image(args.b)
    if set(ra) != set(rb):
        raise SystemExit(f"report_diff: the reports score different images ({len(set(ra) ^ set(rb))} ids differ)")
    ids = sorted(ra)
    fg = np.array([ra[i]["fg_ratio"] for i in ids])
    comp = np.array([ra[i]["composite_mse"] for i in ids])
    mse_a, mse_b = np.array([ra[i]["mse"] for i in ids]), np.array([rb[i]["mse"] for i in ids])
    groups = [("all", np.ones(len(ids), bool))]
    groups += [(f"object {lo:.0%}-{min(hi, 1):.0%}", (fg >= lo) & (fg < hi)) for lo, hi in zip(FG_EDGES, FG_EDGES[1:])]
    q = np.quantile(comp, [0.25, 0.5, 0.75])
    quart = np.searchsorted(q, comp, side="right")
    groups += [(f"composite error, quartile {k + 1}", quart == k) for k in range(4)]
    print(f"A = {args.a}, B = {args.b}: {len(ids)} images; MSE x the composite's")
    print(f"{'group':32s} {'n':>4s} {'A':>7s} {'B':>7s}")
    for label, n, xa, xb in grouped_ratios(mse_a, mse_b, comp, groups):
        print(f"{label:32s} {n:4d} {xa:7.3f} {xb:7.3f}")
    gap = mse_a - mse_b
    print(f"A worse than B on {100 * (gap > 0).mean():.1f} % of the images")
    losses = gap[gap > 0].sum()
    if args.worst > 0 and losses > 0:
        order = [i for i in np.argsort(-gap)[: args.worst] if gap[i] > 0]
        print(f"the {len(order)} images where A loses most carry {100 * gap[order].sum() / losses:.0f} % of "
              "A's losses to B:")
        for i in order:
            print(f"  {ids[i]}: object {fg[i]:.0%}, composite {comp[i]:.0f}, A {mse_a[i]:.0f}, B {mse_b[i]:.0f}")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
