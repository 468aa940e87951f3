"""SRIN sanity run on CPU: an iHarmony4-format set made from a photo folder.

    python benchmarks/srin_sanity.py --photos ../shared/data/photos --out /tmp/srin_sanity

1. Makes ``OUT/data/HPhotos/`` in the exact iHarmony4 layout (``composite_images/``,
   ``masks/``, ``real_images/``, ``HPhotos_train.txt`` / ``HPhotos_test.txt``): every photo
   becomes ``--per-photo`` single-region composites (the perturbation engine with one
   superpixel region, no degradation), shorter side ``--side`` px, JPEG like iHarmony4.
   The photos held out from the default model (``reproduce.HELD_OUT``) form the test split, the others
   the train split.
2. Trains ``srin_unet`` with ``norm=srin`` and ``norm=rain`` (same budget: ``--steps``,
   batch 8, ``--size`` px, ``--ngf``) with the shipped ``configs/srin_iharmony4.yaml`` recipe
   (L1 loss, Adam 0.9/0.999, lr 1e-3) and SLIC region maps. ``--load-size`` / ``--flip`` add
   random crops and flips (the paper trains without augmentation, but 16 source photos are
   few enough for a direct-RGB U-Net to memorise them). ``--head rgb_residual`` swaps the
   paper's direct RGB output for ``image + tanh(conv)`` (zero-initialised: starts at identity);
   ``--model srin_om`` uses the operator-mask head instead.
3. Evaluates ``identity``, the untrained SRIN network and both trained models on the test
   split (mask given, the SRIN setting) and prints one table (MSE / PSNR / fMSE per
   foreground-ratio bucket is in each report's table.md); ``--eval-train`` adds the train
   split's MSE (far below the test MSE: memorisation). Results: ``OUT/results_NAME.json``.
   Every model is scored with the region maps it was trained with (the settings saved with
   its weights, SLIC 16 segments from the config; the script stops if a report used others).

Runs that exist (``weights/``) are not trained again; a killed run resumes. The numbers of
the shipped docs are in docs/models.md ("SRIN sanity run").
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def make_dataset(photos: Path, root: Path, per_photo: int, side: int, held_out: set[str]) -> Path:
    import numpy as np
    from PIL import Image

    from harmonykit.data.perturb import NoUsableRegionError, PerturbConfig, make_composite
    from harmonykit.io import list_images, read_image, write_image, write_mask
    from harmonykit.regionmaps import superpixel_labels
    from harmonykit.utils.seeding import rng_for

    sub = root / "HPhotos"
    if (sub / "HPhotos_test.txt").is_file():
        return sub
    config = PerturbConfig(region_fraction=0.0, degrade_prob=0.0, min_region_area=0.02)  # one region
    lists: dict[str, list[str]] = {"train": [], "test": []}
    for i, path in enumerate(list_images(photos)):
        real_id = f"p{i:03d}"  # iHarmony4 ids contain no '_' (real = text before the first '_')
        image = read_image(path)
        h, w = image.shape[:2]
        scale = side / min(h, w)
        image = np.asarray(Image.fromarray(image).resize((round(w * scale), round(h * scale)), Image.BILINEAR))
        write_image(sub / "real_images" / f"{real_id}.jpg", image, quality=95)
        labels = superpixel_labels(image, "slic", n_segments=12)
        split = "test" if path.stem in held_out else "train"
        for k in range(per_photo):
            try:
                res = make_composite(image, labels, rng_for(0, real_id, k), config)
            except NoUsableRegionError:
                continue
            write_mask(sub / "masks" / f"{real_id}_{k}.png", res.mask)
            name = f"{real_id}_{k}_1.jpg"
            write_image(sub / "composite_images" / name, res.composite, quality=95)
            lists[split].append(name)
    for split, names in lists.items():
        (sub / f"HPhotos_{split}.txt").write_text("\n".join(names) + "\n")
    return sub


def train(data: Path, out: Path, norm: str, steps: int, size: int, ngf: int, minutes: float,
          model: str = "srin_unet", load_size: int | None = None, flip: bool = False,
          head: str | None = None) -> Path:
    if (out / "weights" / "config.json").is_file():
        return out
    cmd = [
        sys.executable, "-m", "harmonykit", "train", str(REPO / "configs" / "srin_iharmony4.yaml"),
        "--set", f"data.root={data}", "--set", f"data.size={size}", "--set", "data.workers=0",
        "--set", f"data.regions.cache_dir={out.parent / 'region_cache'}",
        "--set", f"model.name={model}",
        "--set", f"model.kwargs={{norm: {norm}, ngf: {ngf}{f', head: {head}' if head else ''}}}",
        "--set", f"optim.iterations={steps}", "--set", f"optim.milestones=[{int(steps * 0.8)}]",
        "--set", "optim.batch_size=8", "--set", "ema_decay=0.99", "--set", "device=cpu",
        "--set", f"max_minutes={minutes}", "--set", "log_every=20", "--set", f"sample_every={steps}",
        "--set", f"checkpoint_every={max(1, steps // 4)}", "--out", str(out),
        "--set", f"data.flip={str(flip).lower()}",
    ]
    if load_size:
        cmd += ["--set", f"data.load_size={load_size}"]
    if (out / "checkpoints").is_dir():  # killed earlier: continue that run
        cmd.append("--resume")
    subprocess.run(cmd, check=True)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=Path, default=REPO.parent / "shared" / "data" / "photos")
    ap.add_argument("--out", type=Path, default=Path("/tmp/srin_sanity"))
    ap.add_argument("--per-photo", type=int, default=12)
    ap.add_argument("--side", type=int, default=192)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--ngf", type=int, default=16)
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--minutes", type=float, default=15.0)
    ap.add_argument("--norms", nargs="+", default=["srin", "rain"])
    ap.add_argument("--model", default="srin_unet",
                    help="srin_unet (RGB output, the paper) or srin_om (operator-mask head, starts at identity)")
    ap.add_argument("--head", default=None,
                    help="output head instead of the model's default, e.g. rgb_residual (image + tanh, starts at "
                         "identity) for srin_unet")
    ap.add_argument("--load-size", type=int, default=None,
                    help="train on random --size crops of --load-size squares (default: no crop)")
    ap.add_argument("--flip", action="store_true", help="random horizontal flips in training")
    ap.add_argument("--eval-train", action="store_true",
                    help="also score the train split (a train MSE far below the test MSE means memorisation)")
    args = ap.parse_args(argv)
    os.environ.setdefault("HARMONYKIT_NO_PROGRESS", "1")

    from reproduce import HELD_OUT  # benchmarks/ is on sys.path when the script runs

    from harmonykit.evaluation.evaluator import EvalOptions, evaluate
    from harmonykit.io import atomic_write_text
    from harmonykit.models import create_model
    from harmonykit.training.config import load_train_config
    from harmonykit.training.data import region_settings

    # the region maps of training (configs/srin_iharmony4.yaml: SLIC 16 segments); every
    # method is scored with these, never with the evaluator's defaults
    train_regions = region_settings(load_train_config(REPO / "configs" / "srin_iharmony4.yaml",
                                                      validate=False).data.regions)

    held = set(HELD_OUT)
    data = make_dataset(args.photos, args.out / "data", args.per_photo, args.side, held)
    n_test = len((data / "HPhotos_test.txt").read_text().split())
    n_train = len((data / "HPhotos_train.txt").read_text().split())
    print(f"dataset {data}: {n_train} train / {n_test} test composites")
    name = args.model + (f"_{args.head}" if args.head else "")
    head_kw = {"head": args.head} if args.head else {}
    untrained = args.out / f"untrained_{name}"
    if not (untrained / "config.json").is_file() or \
            json.loads((untrained / "config.json").read_text()).get("regions") != train_regions:
        create_model(args.model, norm="srin", ngf=args.ngf, **head_kw).save_pretrained(
            untrained, extra={"regions": train_regions})
    runs = {}
    for norm in args.norms:
        t = time.perf_counter()
        runs[norm] = train(data, args.out / f"run_{name}_{norm}", norm, args.steps, args.size, args.ngf,
                           args.minutes, args.model, args.load_size, args.flip, args.head)
        print(f"trained {norm} in {time.perf_counter() - t:.0f} s")
    methods = [("identity (composite)", "identity"), (f"{name} untrained", str(untrained))]
    methods += [(f"{name} norm={n} trained", str(p)) for n, p in runs.items()]
    rows = []
    for label, spec in methods:
        row: dict = {"label": label}
        for split in ("test", "train") if args.eval_train else ("test",):
            rep = args.out / "reports" / split / label.replace(" ", "_").replace("=", "_")
            res = evaluate(data, spec, rep, EvalOptions(size=args.size, label=label, lpips=False, show_progress=False,
                                                         split=split))
            used = res.summary["settings"]["region_settings"]
            if spec != "identity" and used != train_regions:
                raise SystemExit(f"{label}: scored with region maps {used}, but trained with {train_regions}")
            row["region_settings"] = used
            m = res.summary["overall"]["model"]
            if split == "test":
                row.update({k: m.get(k) for k in ("mse", "psnr", "fmse")})
            else:
                row["train_mse"] = m.get("mse")
        rows.append(row)
    print(f"\n{n_test} test composites (held-out photos), {args.size}x{args.size}, mask given\n")
    extra = " train MSE |" if args.eval_train else ""
    print(f"| method | MSE | PSNR | fMSE |{extra}\n|---|---:|---:|---:|{'---:|' if extra else ''}")
    for r in rows:
        train_col = f" {r['train_mse']:.2f} |" if extra else ""
        print(f"| {r['label']} | {r['mse']:.2f} | {r['psnr']:.2f} | {r['fmse']:.1f} |{train_col}")
    atomic_write_text(args.out / f"results_{name}.json", json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
