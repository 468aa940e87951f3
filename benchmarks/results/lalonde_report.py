"""Lalonde-Efros report: both tasks, both mask settings, and the real composites.

    python -m benchmarks.results.lalonde_report --db ../shared/data/lalonde/onlineDb --out reports/lalonde
    python -m benchmarks.results.lalonde_report --db ... --model new=runs/default_lalonde   # + a run

(``benchmarks/results/reproduce.py --lalonde DB`` runs it too.)

1. Builds two benchmarks from the **val** split (by source photo, ``val_fraction`` 0.1; never
   seen in training, which uses the train split), 256 x 256, seed 0, ``--samples-per-image``
   composites per photo:
   * ``val_ct``: iHarmony4-style colour transfer of the annotated object (iHarmony4 layout);
   * ``val_sgmmh``: the Sg-MMH multi-region recipe, the object one candidate region among
     SLIC superpixels (harmonykit layout).
2. Scores ``identity``, ``reinhard``, ``histogram`` (with the mask: on ``val_sgmmh`` that is
   the oracle union mask) and each learned model mask-free and with the mask, on both.
3. Scores the learned models (mask-free and with the mask) and the two baselines
   reference-free on the database's real composites (all of them, or ``--composites-split``):
   mean CIELAB change inside / outside the pasted object and their ratio.
4. Writes ``table.md`` and ``results.json``; every evaluator report is under ``OUT/reports/``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks._common import REPO


def build(db: Path, out: Path, samples: int, size: int) -> dict[str, Path]:
    """The two val benchmarks (built once; a rerun resumes / reuses them)."""
    from harmonykit.data.builder import PERTURB_CHOICES, BuildSettings, build_benchmark

    benches = {
        "val_ct": BuildSettings(source=str(db), format="lalonde", split="val", regions="labels", size=size,
                                seed=0, layout="iharmony4", samples_per_image=samples,
                                mix=PERTURB_CHOICES["colour-transfer"]),
        "val_sgmmh": BuildSettings(source=str(db), format="lalonde", split="val", regions="slic", size=size,
                                   seed=0, samples_per_image=samples, mix=PERTURB_CHOICES["sgmmh"]),
    }
    paths = {}
    for name, settings in benches.items():
        t = time.perf_counter()
        rep = build_benchmark(settings, out / name, show_progress=False)
        print(f"{name}: {rep.finished} samples ({rep.built} built now, {len(rep.skipped)} skipped) "
              f"in {time.perf_counter() - t:.0f} s", flush=True)
        paths[name] = out / name
    return paths


def fmt(v: float | None, nd: int = 2) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "n/a"
    return "inf" if v == float("inf") else f"{v:.{nd}f}"


def paired_rows(bench: Path, name: str, methods: list[tuple[str, str]], out: Path, size: int,
                limit: int | None) -> list[dict]:
    from harmonykit.baselines import is_baseline
    from harmonykit.evaluation.evaluator import EvalOptions, evaluate

    single = name == "val_ct"
    rows = []
    for label, spec in [("identity (composite)", "identity")] + methods:
        settings = [("mask", True)] if is_baseline(spec) else [("mask-free", False), ("mask", True)]
        for setting, give in settings:
            if spec == "identity" and setting == "mask":
                setting = "-"
            opts = EvalOptions(size=size, label=label, show_progress=False, lpips=False, limit=limit,
                               with_mask=give and not single, mask_free=single and not give)
            rep = out / "reports" / f"{name}-{label.split()[0]}-{setting}"
            t = time.perf_counter()
            res = evaluate(bench, spec, rep, opts)
            s = res.summary["overall"]["model"]
            row = {"bench": name, "label": label, "mask": setting, "n": res.summary["overall"]["n"],
                   "seconds": round(time.perf_counter() - t, 1),
                   **{k: s.get(k) for k in ("mse", "psnr", "ssim", "fmse", "om_iou")}}
            rows.append(row)
            print(f"{name:9s} {label:24s} {setting:9s} MSE {fmt(row['mse'])}  fMSE {fmt(row['fmse'])}", flush=True)
    return rows


def reference_free_rows(db: Path, methods: list[tuple[str, str]], out: Path, split: str | None,
                        limit: int | None) -> list[dict]:
    from harmonykit.baselines import is_baseline
    from harmonykit.data.composites import open_composites
    from harmonykit.evaluation.reference_free import (
        evaluate_real_composites,
        write_reference_free_report,
    )
    from harmonykit.inference import Harmonizer

    composites = open_composites(db, split=split)
    rows = []
    for label, spec in methods:
        h = Harmonizer.from_pretrained(spec)
        settings = [True] if is_baseline(spec) else [False, True]
        for give in settings:
            res = evaluate_real_composites(composites, lambda img, m, h=h: h(img, mask=m).image, with_mask=give,
                                           label=label, limit=limit, show_progress=False)
            tag = "mask" if give else "mask-free"
            write_reference_free_report(out / "reports" / f"real-{label.split()[0]}-{tag}", res)
            o = res.summary["overall"]
            rows.append({"label": label, "mask": tag, "n": len(res.scores), "failed": len(res.failures), **o})
            print(f"real      {label:24s} {tag:9s} dE in {fmt(o['de_in'])}  out {fmt(o['de_out'], 3)}  "
                  f"ratio {fmt(o['ratio_of_means'])}", flush=True)
    return rows


def write_table(paired: list[dict], real: list[dict], path: Path, info: str) -> str:
    lines = [info, ""]
    for name, title in (("val_ct", "iHarmony4-style colour transfer of the object (val split)"),
                        ("val_sgmmh", "Sg-MMH multi-region (val split)")):
        rows = [r for r in paired if r["bench"] == name]
        if not rows:
            continue
        base = rows[0]["mse"]
        lines += [f"**{title}**, {rows[0]['n']} pairs at 256", "",
                  "| method | mask | MSE | × composite | PSNR | SSIM | fMSE | IoU |",
                  "|---|---|---:|---:|---:|---:|---:|---:|"]
        for r in rows:
            ratio = r["mse"] / base if base else float("nan")
            lines.append(f"| {r['label']} | {r['mask']} | {fmt(r['mse'])} | {ratio:.3f} | {fmt(r['psnr'])} | "
                         f"{fmt(r['ssim'], 4)} | {fmt(r['fmse'])} | {fmt(r.get('om_iou'), 3)} |")
        lines.append("")
    if real:
        lines += [f"**Real composites** (reference-free, {real[0]['n']} composites at their own size)", "",
                  "| method | mask | ΔE inside | ΔE outside | ratio (of means) | median ratio | ratio ≥ 4 |",
                  "|---|---|---:|---:|---:|---:|---:|"]
        for r in real:
            lines.append(f"| {r['label']} | {r['mask']} | {fmt(r['de_in'])} | {fmt(r['de_out'], 3)} | "
                         f"{fmt(r['ratio_of_means'])} | {fmt(r['median_ratio'])} | "
                         f"{fmt(100 * r['share_ratio_at_least_4'], 1)} % |")
    text = "\n".join(lines) + "\n"
    from harmonykit.io import atomic_write_text

    atomic_write_text(path, text)
    return text


def run(db: Path, out: Path, models: list[str], samples: int = 2, size: int = 256, limit: int | None = None,
        composites_split: str | None = None, skip_real: bool = False) -> str:
    """The whole report (see the module docstring); returns the table text."""
    os.environ.setdefault("HARMONYKIT_NO_PROGRESS", "1")
    t0 = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    benches = build(db, out, samples, size)
    learned = [(f"{spec.partition('=')[0]}", spec.partition("=")[2]) for spec in models] or [
        ("default", "default"), ("small", "small")]
    baselines = [("reinhard", "reinhard"), ("histogram", "histogram")]
    paired = []
    for name, bench in benches.items():
        paired += paired_rows(bench, name, baselines + learned, out, size, limit)
    real = [] if skip_real else reference_free_rows(db, learned + baselines, out, composites_split, limit)
    info = (f"Lalonde-Efros val split (by source photo, val_fraction 0.1), {samples} composites per photo, "
            f"256 x 256, seed 0; command: python -m benchmarks.results.lalonde_report --db DB "
            + " ".join(f"--model {m}" for m in models))
    from harmonykit.io import atomic_write_text

    text = write_table(paired, real, out / "table.md", info)
    atomic_write_text(out / "results.json", json.dumps({"paired": paired, "real": real}, indent=1) + "\n")
    print(text)
    print(f"wrote {out / 'table.md'} in {time.perf_counter() - t0:.0f} s")
    return text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", type=Path, default=REPO.parent / "shared" / "data" / "lalonde" / "onlineDb")
    ap.add_argument("--out", type=Path, default=REPO / "reports" / "lalonde")
    ap.add_argument("--model", action="append", default=[], metavar="LABEL=SPEC",
                    help="learned model to score (repeatable; default: the packaged default and small)")
    ap.add_argument("--samples-per-image", type=int, default=2)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--limit", type=int, default=None, help="score only the first N pairs / composites")
    ap.add_argument("--composites-split", choices=["train", "val"], default=None,
                    help="real composites of one split only (default: all)")
    ap.add_argument("--skip-real", action="store_true", help="no reference-free section")
    args = ap.parse_args(argv)
    if not args.db.is_dir():
        sys.exit(f"lalonde_report: {args.db}: no such folder (the Lalonde-Efros onlineDb)")
    run(args.db, args.out, args.model, args.samples_per_image, args.size, args.limit, args.composites_split,
        args.skip_real)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
