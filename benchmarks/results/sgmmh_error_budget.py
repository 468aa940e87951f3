"""Where a model's error on an Sg-MMH benchmark sits: per perturbation op, per region.

    python -m benchmarks.results.sgmmh_error_budget reports/lalonde/val_sgmmh              # packaged default
    python -m benchmarks.results.sgmmh_error_budget BENCH --model runs/x --out reports/budget_x.md

The benchmark must be in the harmonykit layout with recipes in its manifest (``harmonykit
build-benchmark``; ``benchmarks/results/lalonde_report.py`` builds ``val_sgmmh``). Each pair has
several perturbed regions, each with its own op chain (a pilgram filter, maybe a second op).
The recipe does not store the region map, so each region's pixels are recovered by
replaying its op chain on the real image: a pixel of the union mask belongs to the first
region whose replayed colour equals the composite's there (pixels of the mask that their
region's ops left unchanged carry no composite error and make a row of their own, as do the
pixels outside the mask, where a mask-free model's false positives cost). Pairs with a degraded background
are counted as one group of their own (their real image is the degraded one, so the replay
does not apply).

For each group of regions (by second op, by filter) it prints the group's share of the
composite's squared error over the whole benchmark and, on the group's pixels, the model's
squared error over the composite's (mask-free and with the oracle mask), plus the model's
mean localisation ``p`` on those pixels (gated models). "Paper-like pairs" are the pairs with
no ``contrast`` / ``hue_rotate`` / ``saturate`` second op: the public reference code called
those three with their defaults, which are identities, so the paper's benchmarks had none of
them (reference notes, section 1). Both settings' benchmark-wide ratios are printed too; they
equal ``harmonykit evaluate``'s MSE ratios (all pairs have the same size).
"""

from __future__ import annotations

import argparse
import json
import os
from collections import defaultdict
from pathlib import Path

import numpy as np

#: second ops the public reference code called with identity defaults (never in the paper's data)
IDENTITY_IN_REFERENCE = ("contrast", "hue_rotate", "saturate")


def region_pixels(real: np.ndarray, composite: np.ndarray, mask: np.ndarray,
                  regions: list[dict]) -> list[np.ndarray]:
    """Boolean ``(H, W)`` maps of each recipe region's pixels, recovered by replay."""
    from harmonykit.data.perturb.ops import op_from_dict

    free = mask.copy()
    out = []
    for reg in regions:
        img = real
        for d in reg["ops"]:
            img = op_from_dict(d).apply(img)
        hit = free & np.all(img == composite, axis=-1) & np.any(composite != real, axis=-1)
        free &= ~hit
        out.append(hit)
    return out


def second_op(reg: dict) -> str:
    return reg["ops"][1]["op"] if len(reg["ops"]) > 1 else "none"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bench", type=Path, help="Sg-MMH benchmark folder (harmonykit layout, with recipes)")
    ap.add_argument("--model", default="default", help="model spec (default: the packaged default)")
    ap.add_argument("--limit", type=int, default=None, help="first N pairs only")
    ap.add_argument("--out", type=Path, default=None, help="also write the tables here (.md) and a .json")
    args = ap.parse_args(argv)
    os.environ.setdefault("HARMONYKIT_NO_PROGRESS", "1")
    from harmonykit.inference import Harmonizer
    from harmonykit.io import atomic_write_text, read_image, read_mask

    manifest = args.bench / "manifest.jsonl"
    if not manifest.is_file():
        raise SystemExit(f"sgmmh_error_budget: {manifest}: no manifest (not a harmonykit-layout benchmark)")
    records = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
    records = [r for r in records if r.get("recipe")][: args.limit]
    if not records:
        raise SystemExit(f"sgmmh_error_budget: {args.bench}: no pair with a recipe")
    h = Harmonizer.from_pretrained(args.model)

    # per group: [composite SSE, mask-free SSE, with-mask SSE, sum of p, pixels]
    groups: dict[str, np.ndarray] = defaultdict(lambda: np.zeros(5))
    pairs = {"all": np.zeros(3), "paper-like": np.zeros(3), "other": np.zeros(3)}
    n_pairs = {k: 0 for k in pairs}
    attributed = total_comp = 0.0
    for rec in records:
        f = rec["files"]
        real = read_image(args.bench / f["real"])
        comp = read_image(args.bench / f["composite"])
        mask = read_mask(args.bench / f["mask"]) >= 0.5
        free_res = h(comp)
        with_res = h(comp, mask=mask.astype(np.float32))
        p = free_res.localisation  # at the pair's size, None without a gate
        errs = [((x.astype(np.float64) - real) ** 2).sum(-1) for x in (comp, free_res.rgb, with_res.rgb)]
        sse = np.array([e.sum() for e in errs])
        regions = rec["recipe"]["regions"]
        kind = "paper-like" if not any(second_op(r) in IDENTITY_IN_REFERENCE for r in regions) else "other"
        for key in ("all", kind):
            pairs[key] += sse
            n_pairs[key] += 1
        total_comp += sse[0]
        if rec["recipe"].get("degradation"):
            maps, names = [mask], [["degraded background"]]
        else:
            maps = region_pixels(real, comp, mask, regions)
            names = [[f"second op: {second_op(r)}", f"filter: {r['ops'][0].get('filter', r['ops'][0]['op'])}"]
                     for r in regions]
        maps.append(mask & ~np.any(maps, axis=0))  # pixels the region's ops left as they were
        names.append(["unchanged by the ops (inside the mask)"])
        maps.append(~mask)
        names.append(["outside the mask (unperturbed)"])
        for m, keys in zip(maps, names, strict=True):
            if not m.any():
                continue
            row = np.array([e[m].sum() for e in errs] + [float(p[m].sum()) if p is not None else np.nan,
                                                         float(m.sum())])
            attributed += row[0] if keys[0].startswith(("second", "degraded")) else 0.0
            for k in keys:
                groups[k] += row

    lines = [f"Sg-MMH error budget: {args.bench} ({len(records)} pairs), model {args.model}", ""]
    lines += ["| pairs | n | composite MSE | mask-free × | with mask × |", "|---|---:|---:|---:|---:|"]
    npx = 3 * records[0]["size"][0] * records[0]["size"][1]
    for key, v in pairs.items():
        if n_pairs[key]:
            lines.append(f"| {key} | {n_pairs[key]} | {v[0] / npx / n_pairs[key]:.2f} | {v[1] / v[0]:.3f} | "
                         f"{v[2] / v[0]:.3f} |")
    lines += ["", f"Regions attributed by replay: {attributed / total_comp:.1%} of the composite's squared error.",
              "", "Error shares are of the composite's total squared error over the benchmark; the mask-free",
              "and with-mask shares of the second-op, degraded and outside rows add up to the ratios above.", "",
              "| regions | pixels | composite error | mask-free error | with-mask error | mask-free × | with mask × "
              "| mean p |", "|---|---:|---:|---:|---:|---:|---:|---:|"]

    def order(k: str) -> tuple[int, float]:
        rank = next((i for i, pre in enumerate(("second", "degraded", "unchanged", "outside")) if k.startswith(pre)), 4)
        return (rank, -groups[k][0])

    summary = {}
    for k in sorted(groups, key=order):
        g = groups[k]
        summary[k] = {"pixels": int(g[4]), "share": g[0] / total_comp, "mask_free_share": g[1] / total_comp,
                      "with_mask_share": g[2] / total_comp, "mask_free": g[1] / g[0] if g[0] else None,
                      "with_mask": g[2] / g[0] if g[0] else None, "mean_p": g[3] / g[4]}
        s = summary[k]
        ratios = " | ".join("–" if s[r] is None else f"{s[r]:.3f}" for r in ("mask_free", "with_mask"))
        lines.append(f"| {k} | {s['pixels']} | {s['share']:.1%} | {s['mask_free_share']:.1%} | "
                     f"{s['with_mask_share']:.1%} | {ratios} | {s['mean_p']:.3f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        atomic_write_text(args.out, text)
        out_json = {"pairs": {k: {"n": n_pairs[k], "composite_sse": v[0], "mask_free_sse": v[1], "with_mask_sse": v[2]}
                              for k, v in pairs.items()}, "groups": summary, "model": args.model,
                    "bench": str(args.bench)}
        atomic_write_text(args.out.with_suffix(".json"), json.dumps(out_json, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
