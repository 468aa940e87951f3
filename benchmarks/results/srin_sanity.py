"""SRIN sanity run on CPU: an iHarmony4-format set made from a photo folder.

    python -m benchmarks.results.srin_sanity --photos ../shared/data/photos --out /tmp/srin_sanity

1. Makes ``OUT/data/HPhotos/`` in the exact iHarmony4 layout (``composite_images/``,
   ``masks/``, ``real_images/``, ``HPhotos_train.txt`` / ``HPhotos_test.txt``): every photo
   becomes ``--per-photo`` single-region composites (the perturbation engine with one
   superpixel region, no degradation), shorter side ``--side`` px, JPEG like iHarmony4.
   The photos held out from the default model (``benchmarks._common.HELD_OUT``) form the test split, the others
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
   its weights, SLIC 16 segments from the config; the script stops if a report used others;
   models that read no region map, norms ``in`` / ``rain`` / ``bain``, save none and get none).

``--lalonde DB`` replaces step 1 with the Lalonde-Efros database (real photos, real object
masks): ``harmonykit.data.builder.build_benchmark`` makes iHarmony4-style colour-transfer
pairs (the annotated object recoloured from a same-category object of another photo,
``--per-photo`` per photo, ``--side`` x ``--side``) from the **train** split into
``OUT/data/build_train`` and from the **val** split into ``OUT/data/build_val``. A build
folder holds one split (its settings, the split included, are pinned), so the two are merged
into one iHarmony4 root, ``OUT/data/iharmony4/HLalonde/`` (hard links, ``HLalonde_train.txt``
from the train build, ``HLalonde_test.txt`` from the val build)::

    python -m benchmarks.results.srin_sanity --lalonde ../shared/data/lalonde/onlineDb --out runs/srin_lalonde_800 \
        --per-photo 1 --side 256 --size 128 --steps 800 --minutes 30 --heads default rgb_residual \
        --norms in rain bain srin --eval-train --eval-train-limit 151

``--heads`` trains every norm with every listed head (``default`` = the model's own, the
paper's direct RGB for ``srin_unet``), all with the same ``--steps``.

4. With two or more norms, prints for each head the paired differences of test MSE between
   norms (the same composites, ``per_image.csv`` of each report): the mean difference and its
   95 % percentile-bootstrap interval (10,000 resamples of the composites, seed 0), so a reader
   sees which orderings are beyond the noise of the test set. They are saved in the results
   JSON too (``"paired"``).

Runs that exist (``weights/``) are not trained again; a killed run resumes. The numbers of
the shipped docs are in docs/models.md ("SRIN sanity run").
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from benchmarks._common import REPO

# the paper's ordering, best first: SRIN < BAIN ~ RAIN < IN (MSE); pairs are reported in it
NORM_ORDER = ("srin", "bain", "rain", "in")


def paired_bootstrap(a, b, n_boot: int = 10000, seed: int = 0, level: float = 0.95) -> tuple[float, float, float]:
    """Mean of ``a - b`` over paired items and its percentile-bootstrap interval.

    ``a`` and ``b``: per-item figures (e.g. per-image MSE) of two methods on the same items,
    same order, length ``n >= 1``. The items are resampled with replacement ``n_boot`` times
    (NumPy ``default_rng(seed)``: the same inputs give the same interval). Returns
    ``(mean, low, high)``.

    >>> paired_bootstrap([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    (0.0, 0.0, 0.0)
    """
    import numpy as np

    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise ValueError(f"paired_bootstrap needs two 1-D arrays of one length >= 1, got {a.shape} and {b.shape}")
    d = a - b
    idx = np.random.default_rng(seed).integers(0, d.size, size=(n_boot, d.size))
    means = d[idx].mean(axis=1)
    tail = 100.0 * (1.0 - level) / 2.0
    low, high = np.percentile(means, [tail, 100.0 - tail])
    return float(d.mean()), float(low), float(high)


def per_image_mse(report: Path) -> dict[str, float]:
    """``{id: mse}`` of a report folder's ``per_image.csv`` (written by ``harmonykit evaluate``)."""
    import csv

    with (report / "per_image.csv").open(newline="") as f:
        return {row["id"]: float(row["mse"]) for row in csv.DictReader(f)}


def norm_pairs(norms: list[str]) -> list[tuple[str, str]]:
    """Every pair of ``norms`` once, each as ``(better in the paper, worse)`` (unknown norms last).

    >>> norm_pairs(["in", "srin", "rain"])
    [('srin', 'rain'), ('srin', 'in'), ('rain', 'in')]
    """
    rank = {n: NORM_ORDER.index(n) if n in NORM_ORDER else len(NORM_ORDER) for n in norms}
    ordered = sorted(dict.fromkeys(norms), key=lambda n: rank[n])
    return [(x, y) for i, x in enumerate(ordered) for y in ordered[i + 1:]]


def paired_table(reports: dict[str, Path]) -> list[dict]:
    """Paired MSE differences between the norms of one head: ``reports`` maps norm -> report folder."""
    scores = {n: per_image_mse(r) for n, r in reports.items()}
    rows = []
    for x, y in norm_pairs(list(reports)):
        ids = sorted(scores[x])
        if sorted(scores[y]) != ids:
            raise SystemExit(f"norm={x} and norm={y} were scored on different composites ({reports[x]}, {reports[y]})")
        mean, low, high = paired_bootstrap([scores[x][i] for i in ids], [scores[y][i] for i in ids])
        rows.append({"a": x, "b": y, "n": len(ids), "mean": mean, "low": low, "high": high})
    return rows


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


IH4_KINDS = ("composite_images", "masks", "real_images")


def _link(src: Path, dst: Path) -> None:
    """Hard-link ``src`` to ``dst`` (a copy across file systems); an existing ``dst`` must
    hold the same bytes (two builds never write one name twice with other content)."""
    if dst.exists():
        if dst.samefile(src) or dst.read_bytes() == src.read_bytes():
            return
        raise SystemExit(f"{dst}: already holds another file than {src} (name clash between builds)")
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def merge_iharmony4(builds: list[Path], root: Path) -> list[Path]:
    """Merge iHarmony4-layout folders (``B/<Subset>/composite_images/`` ..., split files
    ``<Subset>_<split>.txt``) into one root: the images are linked into
    ``root/<Subset>/``, each split file is the union of the builds' lists of that split.

    Returns the merged subset folders (sorted).
    """
    lists: dict[tuple[str, str], set[str]] = {}
    for build in builds:
        subsets = sorted(p for p in build.iterdir() if (p / "composite_images").is_dir())
        if not subsets:
            raise SystemExit(f"{build}: no iHarmony4 subset folder (<Subset>/composite_images/)")
        for sub in subsets:
            for kind in IH4_KINDS:
                for f in sorted((sub / kind).glob("*")) if (sub / kind).is_dir() else []:
                    if f.is_file() and not f.name.startswith("."):
                        _link(f, root / sub.name / kind / f.name)
            for txt in sorted(sub.glob(f"{sub.name}_*.txt")):
                split = txt.stem[len(sub.name) + 1:]
                names = lists.setdefault((sub.name, split), set())
                names.update(n.strip() for n in txt.read_text().splitlines() if n.strip())
    for (name, split), names in sorted(lists.items()):
        (root / name / f"{name}_{split}.txt").write_text("".join(n + "\n" for n in sorted(names)))
    return sorted({root / name for name, _ in lists})


def build_lalonde(db: Path, root: Path, per_photo: int, side: int) -> Path:
    """The Lalonde-Efros train and val splits as colour-transfer pairs in one iHarmony4 root
    (``root/iharmony4/HLalonde``; see the module docstring). Built once; a rerun resumes."""
    from harmonykit.data.builder import PERTURB_CHOICES, BuildSettings, build_benchmark

    builds = []
    for split in ("train", "val"):
        settings = BuildSettings(source=str(db), format="lalonde", split=split, regions="labels", size=side,
                                 seed=0, layout="iharmony4", samples_per_image=per_photo,
                                 mix=PERTURB_CHOICES["colour-transfer"])
        t = time.perf_counter()
        rep = build_benchmark(settings, root / f"build_{split}", show_progress=False)
        print(f"{split} split: {rep.finished} pairs ({rep.built} built now, {len(rep.skipped)} skipped) "
              f"in {time.perf_counter() - t:.0f} s", flush=True)
        if not rep.complete:
            raise SystemExit(f"{root / f'build_{split}'}: build incomplete")
        builds.append(root / f"build_{split}")
    subsets = merge_iharmony4(builds, root / "iharmony4")
    if len(subsets) != 1:
        raise SystemExit(f"expected one merged subset, got {[p.name for p in subsets]}")
    return subsets[0]


def trained_step(run: Path) -> int | None:
    """The step of ``run/weights`` (recorded by the trainer), ``None`` if not recorded."""
    try:
        return json.loads((run / "weights" / "config.json").read_text())["training"]["step"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


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
    ap.add_argument("--lalonde", type=Path, default=None, metavar="DB",
                    help="Lalonde-Efros database (e.g. ../shared/data/lalonde/onlineDb) instead of --photos: "
                         "colour-transfer pairs of its train split for training, of its val split for testing; "
                         "--per-photo pairs per photo, --side x --side")
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
    ap.add_argument("--heads", nargs="+", default=None,
                    help="several heads, each trained with every norm (same --steps); 'default' = the model's "
                         "own head (the paper's direct RGB for srin_unet); overrides --head")
    ap.add_argument("--load-size", type=int, default=None,
                    help="train on random --size crops of --load-size squares (default: no crop)")
    ap.add_argument("--flip", action="store_true", help="random horizontal flips in training")
    ap.add_argument("--eval-train", action="store_true",
                    help="also score the train split (a train MSE far below the test MSE means memorisation)")
    ap.add_argument("--eval-train-limit", type=int, default=None, metavar="N",
                    help="score only the first N train composites with --eval-train (default: all)")
    args = ap.parse_args(argv)
    os.environ.setdefault("HARMONYKIT_NO_PROGRESS", "1")

    from harmonykit.evaluation.evaluator import EvalOptions, evaluate
    from harmonykit.io import atomic_write_text
    from harmonykit.models import create_model
    from harmonykit.training.config import load_train_config

    # the region maps of training (configs/srin_iharmony4.yaml: SLIC 16 segments); every
    # method is scored with these, never with the evaluator's defaults
    train_regions = load_train_config(REPO / "configs" / "srin_iharmony4.yaml",
                                      validate=False).data.regions.region_map_settings().to_dict()

    if args.lalonde is not None:
        data = build_lalonde(args.lalonde, args.out / "data", args.per_photo, args.side)
        test_what = "Lalonde-Efros val split, colour transfer"
    else:
        from benchmarks._common import HELD_OUT

        data = make_dataset(args.photos, args.out / "data", args.per_photo, args.side, set(HELD_OUT))
        test_what = "held-out photos"
    n_test = len((data / f"{data.name}_test.txt").read_text().split())
    n_train = len((data / f"{data.name}_train.txt").read_text().split())
    print(f"dataset {data}: {n_train} train / {n_test} test composites", flush=True)
    heads = [None if h == "default" else h for h in args.heads] if args.heads else [args.head]
    methods: list[tuple] = [("identity (composite)", "identity", None, None)]
    for head in heads:
        name = args.model + (f"_{head}" if head else "")
        head_kw = {"head": head} if head else {}
        untrained = args.out / f"untrained_{name}"
        if not (untrained / "config.json").is_file() or \
                json.loads((untrained / "config.json").read_text()).get("regions") != train_regions:
            create_model(args.model, norm="srin", ngf=args.ngf, **head_kw).save_pretrained(
                untrained, extra={"regions": train_regions})
        methods.append((f"{name} untrained", str(untrained), 0, None))
        for norm in args.norms:
            t = time.perf_counter()
            run = train(data, args.out / f"run_{name}_{norm}", norm, args.steps, args.size, args.ngf,
                        args.minutes, args.model, args.load_size, args.flip, head)
            print(f"trained {name} {norm} in {time.perf_counter() - t:.0f} s", flush=True)
            methods.append((f"{name} norm={norm} trained", str(run), trained_step(run), (name, norm)))
    rows = []
    test_reports: dict[str, dict[str, Path]] = {}  # head name -> norm -> test report
    for label, spec, steps, *trained in methods:
        row: dict = {"label": label, "steps": steps}
        for split in ("test", "train") if args.eval_train else ("test",):
            rep = args.out / "reports" / split / label.replace(" ", "_").replace("=", "_")
            limit = args.eval_train_limit if split == "train" else None
            res = evaluate(data, spec, rep, EvalOptions(size=args.size, label=label, lpips=False, show_progress=False,
                                                         split=split, limit=limit))
            used = res.summary["settings"]["region_settings"]
            if spec != "identity":  # region-aware models (norm srin) saved the maps of training
                saved = json.loads((Path(spec) / "weights" / "config.json" if (Path(spec) / "weights").is_dir()
                                    else Path(spec) / "config.json").read_text()).get("regions")
                if saved not in (None, train_regions) or used != saved:
                    raise SystemExit(f"{label}: scored with region maps {used}, saved with the weights {saved}, "
                                     f"configured for training {train_regions}")
            row["region_settings"] = used
            m = res.summary["overall"]["model"]
            if split == "test":
                row.update({k: m.get(k) for k in ("mse", "psnr", "fmse")})
                if trained and trained[0] is not None:
                    test_reports.setdefault(trained[0][0], {})[trained[0][1]] = rep
            else:
                row["train_mse"] = m.get("mse")
                row["train_n"] = res.summary["overall"]["n"]
        rows.append(row)
    n_train_scored = rows[0].get("train_n") if args.eval_train else None
    print(f"\n{n_test} test composites ({test_what}), {args.size}x{args.size}, mask given"
          + (f"; train MSE over {n_train_scored} train composites" if n_train_scored else "") + "\n")
    extra = " train MSE |" if args.eval_train else ""
    print(f"| method | steps | MSE | PSNR | fMSE |{extra}\n|---|---:|---:|---:|---:|{'---:|' if extra else ''}")
    for r in rows:
        train_col = f" {r['train_mse']:.2f} |" if extra else ""
        steps = "-" if r["steps"] is None else r["steps"]
        print(f"| {r['label']} | {steps} | {r['mse']:.2f} | {r['psnr']:.2f} | {r['fmse']:.1f} |{train_col}")
    paired = {name: paired_table(reps) for name, reps in test_reports.items() if len(reps) > 1}
    for name, prs in paired.items():
        print(f"\n{name}: paired test MSE differences ({prs[0]['n']} composites; mean, 95 % bootstrap interval)\n")
        print("| norms | mean difference | 95 % interval |\n|---|---:|---|")
        for r in prs:
            print(f"| {r['a']} - {r['b']} | {r['mean']:+.2f} | [{r['low']:+.2f}, {r['high']:+.2f}] |")
    tag = args.model + "".join(f"_{h}" if h else "" for h in heads) if len(heads) == 1 else \
        args.model + "_" + "+".join(h or "default" for h in heads)
    atomic_write_text(args.out / f"results_{tag}.json", json.dumps({"methods": rows, "paired": paired}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
