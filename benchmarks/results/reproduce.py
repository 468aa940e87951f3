"""Reproduction report: every method on one held-out multi-mask benchmark, one table, one figure.

From a clean checkout (with trained weights present, see below):

    python -m benchmarks.results.reproduce --photos ../shared/data/photos --out reports/photos

1. Builds the held-out benchmark: the photos named in :data:`HELD_OUT` (never seen in
   training: ``--train`` passes them as ``data.exclude``), ``--samples-per-image`` Sg-MMH composites
   each, SLIC regions, 256 x 256, seed 0, the same perturbation recipe as training.
2. Evaluates the baselines ``identity``, ``reinhard`` and ``histogram`` (both with the
   ground-truth union mask: an oracle the learned models do not get), and the learned
   models given with ``--model LABEL=PATH`` (run directories, model directories or packaged
   names; default: the packaged ``default`` model, without and with the mask, plus the
   runs under ``--runs`` named ``rgb``, ``om``, ``omgan`` when they exist).
3. Writes ``table.md`` (MSE, PSNR, SSIM, fMSE, OM localisation IoU; change vs composite),
   ``figure.png`` (composite | each method | real | add-mask heatmaps) and every
   evaluator report under ``OUT/reports/``.

``--lalonde DB`` (a Lalonde-Efros onlineDb) adds the Lalonde-Efros report next to it:
``benchmarks/results/lalonde_report.py`` on the val split (both tasks, both mask settings, the real
composites' reference-free figures), written to ``OUT/lalonde/`` and appended to the summary,
for the packaged ``default`` and every ``--model``.

``--train`` first trains the missing runs under ``--runs`` with the shipped recipe
(``configs/small_photos.yaml``; ``rgb`` with ``model.name=rgb_unet_small``; ``omgan``
fine-tuned from ``om`` with the PatchGAN + relativistic loss), which takes about an hour
per run on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks._common import HELD_OUT, REPO, held_out_ids

CONFIG = REPO / "configs" / "small_photos.yaml"


def build_heldout(photos: Path, out: Path, samples: int, size: int) -> Path:
    from harmonykit.data.builder import BuildSettings, build_benchmark
    from harmonykit.io import list_images

    ids = held_out_ids()
    chosen = [p for p in list_images(photos) if p.stem in ids]
    if len(chosen) != len(ids):
        sys.exit(f"reproduce: {photos} lacks some held-out photos {ids}")
    src = out / "heldout_photos"
    src.mkdir(parents=True, exist_ok=True)
    for p in chosen:
        link = src / p.name
        if not link.exists():
            link.symlink_to(p.resolve())
    settings = BuildSettings(source=str(src), format="generic", regions="slic", size=size, seed=0,
                             samples_per_image=samples)
    bench = out / "benchmark"
    build_benchmark(settings, bench, show_progress=False)
    return bench


def train_missing(runs: Path, photos: Path) -> None:
    base = [sys.executable, "-m", "harmonykit", "train", str(CONFIG), "--set", f"data.images={photos}",
            "--set", f"data.exclude=[{','.join(HELD_OUT)}]"]
    jobs = {
        "om": [],
        "rgb": ["--set", "model.name=rgb_unet_small"],
    }
    for name, extra in jobs.items():
        if not (runs / name / "weights" / "config.json").is_file():
            subprocess.run(base + extra + ["--out", str(runs / name)], check=True)
    if not (runs / "omgan" / "weights" / "config.json").is_file():
        subprocess.run(
            base
            + [
                "--set", "loss.gan=0.005", "--set", f"gan.init_from={runs / 'om'}", "--set", "optim.iterations=1000",
                "--set", "optim.milestones=[]", "--set", "optim.lr=1e-4", "--set", "max_minutes=30",
                "--out", str(runs / "omgan"),
            ],
            check=True,
        )


def default_methods(runs: Path | None) -> list[tuple[str, str, bool]]:
    """(label, spec, with_mask)."""
    from harmonykit.models.hub import list_pretrained

    methods = [("identity (composite)", "identity", False), ("reinhard (oracle mask)", "reinhard", False),
               ("histogram (oracle mask)", "histogram", False)]
    if runs is not None:
        for name, label in (("rgb", "RGB head"), ("om", "OM"), ("omgan", "OMGAN")):
            if (runs / name / "weights" / "config.json").is_file():
                methods.append((f"{label} (no mask)", str(runs / name), False))
    if "default" in list_pretrained():
        if not any(m[0].startswith("OM (") for m in methods):  # the packaged model is the OM run
            methods.append(("default (no mask)", "default", False))
        methods.append(("default (with mask)", "default", True))
    return methods


def fmt(v: float | None, nd: int = 2) -> str:
    return "n/a" if v is None or (isinstance(v, float) and not np.isfinite(v)) else f"{v:.{nd}f}"


def write_table(rows: list[dict], path: Path, bench_info: str) -> str:
    base = rows[0]
    lines = [
        f"Held-out benchmark: {bench_info}",
        "",
        "| method | MSE | ΔMSE vs composite | PSNR | SSIM | fMSE | OM IoU |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        d = (r["mse"] - base["mse"]) / base["mse"] * 100.0 if base["mse"] else float("nan")
        lines.append(
            f"| {r['label']} | {fmt(r['mse'])} | {d:+.1f}% | {fmt(r['psnr'])} | {fmt(r['ssim'], 4)} | "
            f"{fmt(r['fmse'])} | {fmt(r.get('om_iou'), 3)} |"
        )
    text = "\n".join(lines) + "\n"
    from harmonykit.io import atomic_write_text

    atomic_write_text(path, text)
    return text


def figure(bench: Path, methods: list[tuple[str, str, bool]], ids: list[str], path: Path) -> None:
    """composite | each method | real | l/a/b add heatmaps of the last operator-mask method."""
    from PIL import Image, ImageDraw

    from harmonykit.inference import Harmonizer
    from harmonykit.io import read_image, read_mask, write_image

    harmonizers = {}
    for label, spec, _ in methods:
        harmonizers[label] = Harmonizer.from_pretrained(spec)
    tile = 160
    rows = []
    header = ["composite"] + [m[0] for m in methods] + ["real", "l_add", "a_add", "b_add"]
    for sid in ids:
        comp = read_image(bench / "composite" / f"{sid}.png")
        real = read_image(bench / "real" / f"{sid}.png")
        mask = read_mask(bench / "mask" / f"{sid}.png")
        cells = [comp]
        heat = None
        for label, _spec, with_mask in methods:
            h = harmonizers[label]
            give = with_mask or h.mask_use == "required"
            res = h(comp, mask=mask if give else None)
            cells.append(res.rgb)
            if res.operator_masks is not None:
                heat = res.operator_masks
        cells.append(real)
        if heat is not None:
            maps = heat.heatmaps(size=comp.shape[:2]).images
            for ch in ("l_add", "a_add", "b_add"):
                cells.append(maps[ch] if ch in maps else np.zeros_like(comp))
        else:
            cells += [np.zeros_like(comp)] * 3
        rows.append([np.asarray(Image.fromarray(c[..., :3]).resize((tile, tile))) for c in cells])
    grid = np.concatenate([np.concatenate(r, axis=1) for r in rows], axis=0)
    head = Image.new("RGB", (grid.shape[1], 18), "white")
    d = ImageDraw.Draw(head)
    for i, t in enumerate(header):
        d.text((i * tile + 3, 3), t[:26], fill="black")
    out = np.concatenate([np.asarray(head), grid], axis=0)
    write_image(path, out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=Path, default=REPO.parent / "shared" / "data" / "photos")
    ap.add_argument("--runs", type=Path, default=None, help="folder with run dirs rgb/, om/, omgan/")
    ap.add_argument("--model", action="append", default=[], metavar="LABEL=SPEC[+mask]",
                    help="extra method to evaluate (repeatable); '+mask' gives it the union mask")
    ap.add_argument("--out", type=Path, default=REPO / "reports" / "photos")
    ap.add_argument("--samples-per-image", type=int, default=8)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--train", action="store_true", help="train missing runs under --runs first")
    ap.add_argument("--figure-ids", nargs="*", default=None)
    ap.add_argument("--lalonde", type=Path, default=None, metavar="DB",
                    help="also run the Lalonde-Efros report (benchmarks/results/lalonde_report.py) on this onlineDb")
    ap.add_argument("--lalonde-limit", type=int, default=None, help="score only the first N Lalonde pairs")
    args = ap.parse_args(argv)
    if args.lalonde is not None and not args.lalonde.is_dir():
        sys.exit(f"reproduce: --lalonde {args.lalonde}: no such folder (the Lalonde-Efros onlineDb)")
    os.environ.setdefault("HARMONYKIT_NO_PROGRESS", "1")

    from harmonykit.evaluation.evaluator import EvalOptions, evaluate

    t0 = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.train:
        if args.runs is None:
            sys.exit("reproduce: --train needs --runs DIR")
        train_missing(args.runs, args.photos)
    bench = build_heldout(args.photos, args.out, args.samples_per_image, args.size)
    methods = default_methods(args.runs)
    for spec in args.model:
        label, _, target = spec.partition("=")
        with_mask = target.endswith("+mask")
        methods.append((label, target.removesuffix("+mask"), with_mask))
    rows = []
    for label, spec, with_mask in methods:
        rep = args.out / "reports" / label.replace(" ", "_").replace("(", "").replace(")", "")
        t = time.perf_counter()
        res = evaluate(bench, spec, rep, EvalOptions(size=args.size, with_mask=with_mask, label=label,
                                                     show_progress=False, lpips=False))
        scores = res.summary["overall"]["model"]
        row = {"label": label, "seconds": time.perf_counter() - t, "n": res.summary["overall"]["n"]}
        row.update({k: scores.get(k) for k in ("mse", "psnr", "ssim", "fmse", "om_iou")})
        rows.append(row)
        print(f"{label:28s} MSE {fmt(row['mse'])}  PSNR {fmt(row['psnr'])}  ({row['seconds']:.1f} s)", flush=True)
    n = sum(1 for _ in (bench / "composite").glob("*.png"))
    info = (f"{n} composites at {args.size}x{args.size} from the {len(held_out_ids())} held-out photos "
            f"({', '.join(held_out_ids())}), {args.samples_per_image} per photo, SLIC regions, seed 0")
    text = write_table(rows, args.out / "table.md", info)
    print(text)
    ids = args.figure_ids or sorted(p.stem for p in (bench / "composite").glob("*.png"))[:: max(1, n // 5)][:5]
    figure(bench, [m for m in methods if m[1] != "identity"], ids, args.out / "figure.png")
    from harmonykit.io import atomic_write_text

    atomic_write_text(args.out / "results.json", json.dumps(rows, indent=1) + "\n")
    print(f"wrote {args.out / 'table.md'} and {args.out / 'figure.png'} in {time.perf_counter() - t0:.0f} s")
    if args.lalonde is not None:
        from benchmarks.results import lalonde_report

        learned = [m for m in args.model if not m.endswith("+mask")]
        lalonde_report.run(args.lalonde, args.out / "lalonde", [m.removesuffix("+mask") for m in learned],
                           2, args.size, args.lalonde_limit, None, False)
        print(f"wrote {args.out / 'lalonde' / 'table.md'} in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
