"""``harmonykit build-benchmark``: build a fixed multi-mask benchmark from a dataset.

Exit status (the rule of every command, see :mod:`harmonykit.errors`): 0 when every
selected item is in the output; 2 for a user mistake: a bad option, an unusable source, an
output folder built with other settings (nothing is done), or source items that were
skipped in this run (unreadable image, missing label map, no usable region: each is
reported on stderr and in ``benchmark.json``, the others are built).
"""

from __future__ import annotations

import argparse
import sys

HELP = "build a harmonization benchmark (composite/real/mask) from images + label maps or object masks"
DESCRIPTION = """\
Build a fixed benchmark. --perturb sgmmh (default, the Sg-MMH recipe): for every source
image, int(0.2 * n) + 1 of its n labelled regions are perturbed with a pilgram filter
(plus, half of the time, a css adjustment or LAB scaling), and a few images are degraded
(noise/blur/JPEG) outside the pasted foreground. --perturb colour-transfer (iHarmony4
style): one object gets the colours of an object of the same category in another photo
(Reinhard in CIELAB or histogram matching, blended at a random strength; near-identical
pairs are redrawn). --perturb lut --luts DIR: the same object graded by a 3D LUT (.cube)
drawn from DIR, blended with the original at a strength uniform in [0.5, 1] (near-identical
pairs are redrawn; the manifest records the LUT's file name and content hash). --perturb
mix: half Sg-MMH, half colour transfer; with --luts DIR a third each of Sg-MMH, colour
transfer and lut. Every sample's recipe is written to DIR/manifest.jsonl.

Layouts of SOURCE (--format auto detects them):
  ade20k   ADEChallengeData2016: images/{training,validation}/*.jpg + annotations/.../*.png
  lip      TrainVal_images/{train,val}_images/*.jpg + TrainVal_parsing_annotations/{train,val}_segmentations/*.png
  lalonde  Lalonde-Efros onlineDb: Images/*.jpg + Annotation/*.xml + Annotation/masks/*.mat;
           natural photos only, split by source photo (--val-fraction); the annotated
           object is region 1, the rest is split by --regions (slic etc.) or left alone
  generic  a folder of images; label maps (same stems, single-channel PNG) via --labels DIR

Output (--layout harmonykit): DIR/composite/<id>.png, DIR/real/<id>.png, DIR/mask/<id>.png,
DIR/manifest.jsonl, DIR/benchmark.json.  --layout triptych: DIR/<id>.png = [real | composite | mask].
--layout iharmony4: DIR/<Subset>/{composite_images,masks,real_images}/ + <Subset>_{train,test}.txt.

The output is byte-identical for the same settings whatever --workers and --shard are.
Rerunning into the same DIR resumes; shards may run at the same time into the same DIR.

examples:
  harmonykit build-benchmark ADEChallengeData2016 --out hscene_test --split val
  harmonykit build-benchmark photos/ --regions slic --out bench --size 256 --workers 4
  harmonykit build-benchmark LIP --split val --out hlip_test --layout triptych --shard 0/2
  harmonykit build-benchmark onlineDb --split val --perturb colour-transfer --layout iharmony4 --out ih_val
  harmonykit build-benchmark onlineDb --split val --perturb lut --luts luts/ --layout iharmony4 --out lut_val
  harmonykit build-benchmark onlineDb --video --split val --limit 20 --frames 24 --size 192 --out video_bench
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", metavar="SOURCE", help="dataset root or image folder")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder (created; rerun to resume)")
    parser.add_argument("--format", default="auto", choices=["auto", "generic", "ade20k", "lip", "lalonde"],
                        help="source layout (default: auto-detect)")
    parser.add_argument("--split", choices=["train", "val"], default=None,
                        help="ADE20K/LIP/lalonde split (default: val; train/val = training/validation for ADE20K)")
    parser.add_argument("--val-fraction", type=float, default=0.1, metavar="F",
                        help="lalonde: share of source photos in the val split (default 0.1)")
    parser.add_argument("--perturb", default="sgmmh", choices=["sgmmh", "colour-transfer", "lut", "mix"],
                        help="perturbation family (default sgmmh)")
    parser.add_argument("--luts", metavar="DIR", default=None,
                        help="folder of .cube 3D LUTs for --perturb lut (and mix)")
    parser.add_argument("--labels", metavar="DIR", default=None,
                        help="label-map folder (same stems as the images); overrides the layout's own")
    parser.add_argument("--regions", default="labels", choices=["labels", "slic", "felzenszwalb", "sam"],
                        help="where regions come from: the label maps (default) or computed per image")
    parser.add_argument("--sam-checkpoint", metavar="PATH", default=None, help="SAM weights for --regions sam")
    parser.add_argument("--sam-model-type", default="vit_b", help="SAM variant (vit_b, vit_l, vit_h)")
    parser.add_argument("--size", type=int, default=256, help="output side in pixels (default 256)")
    parser.add_argument("--seed", type=int, default=0, help="global seed (default 0)")
    parser.add_argument("--degrade-prob", type=float, default=None,
                        help="probability of a noise/blur/JPEG degradation per image (default 0.05)")
    parser.add_argument("--samples-per-image", type=int, default=1, metavar="K",
                        help="composites per source image (ids <stem>_<k>; default 1)")
    parser.add_argument("--limit", type=int, default=None, metavar="N", help="use only the first N images (by id)")
    parser.add_argument("--workers", type=int, default=1, metavar="N", help="processes (default 1)")
    parser.add_argument("--shard", default=None, metavar="I/N",
                        help="build only shard I of N (0-based), e.g. 0/4; shards share --out")
    parser.add_argument("--layout", default="harmonykit", choices=["harmonykit", "triptych", "iharmony4"],
                        help="output layout (default harmonykit)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar and no summary")
    video = parser.add_argument_group("video benchmark (--video)")
    video.add_argument("--video", action="store_true",
                       help="build clips instead: a slow pan/zoom of each photo (lalonde onlineDb, or a folder of "
                            "X.jpg + X_mask.png), the object graded by one fixed colour transform; writes "
                            "DIR/<id>/{composite,real,mask}/NNNN.png, composite.mp4, mask.mp4 and manifest.json")
    video.add_argument("--frames", type=int, default=24, metavar="N", help="--video: frames per clip (default 24)")
    video.add_argument("--fps", type=int, default=12, metavar="R", help="--video: frame rate (default 12)")


def _check_numbers(args: argparse.Namespace) -> None:
    """Every numeric option against its documented range (:mod:`harmonykit.limits`)."""
    from harmonykit.limits import check

    for name, value, label in (("bench_size", args.size, "--size"), ("seed", args.seed, "--seed"),
                               ("samples_per_image", args.samples_per_image, "--samples-per-image"),
                               ("workers", args.workers, "--workers"), ("val_fraction", args.val_fraction,
                                                                       "--val-fraction"),
                               ("probability", args.degrade_prob, "--degrade-prob"), ("limit", args.limit, "--limit"),
                               ("frames", args.frames, "--frames"), ("fps", args.fps, "--fps")):
        if value is not None:
            check(name, value, label)


def run(args: argparse.Namespace) -> int:
    _check_numbers(args)
    if args.video:
        return _run_video(args)
    from tqdm.auto import tqdm

    from harmonykit.cli.console import show_messages
    from harmonykit.data.builder import (
        MIX_WITH_LUTS,
        PERTURB_CHOICES,
        BuildSettings,
        build_benchmark,
        parse_shard,
    )
    from harmonykit.data.perturb import PerturbConfig
    from harmonykit.errors import batch_exit_code
    from harmonykit.outputs import check_writable
    from harmonykit.utils.cpus import cap_workers

    check_writable(args.out, "--out")  # before any source item is read
    perturb = PerturbConfig() if args.degrade_prob is None else PerturbConfig(degrade_prob=args.degrade_prob)
    settings = BuildSettings(
        source=args.source,
        format=args.format,
        split=args.split,
        labels=args.labels,
        regions=args.regions,
        sam_checkpoint=args.sam_checkpoint,
        sam_model_type=args.sam_model_type,
        size=args.size,
        seed=args.seed,
        layout=args.layout,
        perturb=perturb,
        samples_per_image=args.samples_per_image,
        mix=MIX_WITH_LUTS if args.perturb == "mix" and args.luts else PERTURB_CHOICES[args.perturb],
        val_fraction=args.val_fraction,
        luts=args.luts,
    )

    # the builder logs each skipped item; tqdm.write keeps the progress bar intact
    with show_messages("harmonykit.data.builder", "harmonykit build-benchmark",
                       write=lambda line: tqdm.write(line, file=sys.stderr)):
        report = build_benchmark(
            settings,
            args.out,
            limit=args.limit,
            workers=cap_workers(args.workers),
            shard=parse_shard(args.shard),
            show_progress=False if args.quiet else None,
        )
    if not args.quiet:
        state = "complete" if report.complete else "incomplete (other shards pending or interrupted)"
        print(
            f"{report.out}: {report.built} built, {report.already_done} already done, "
            f"{len(report.skipped)} skipped in this run; {report.finished} samples in the benchmark, {state}",
            file=sys.stderr,
        )
    if report.selected == 0:
        print(f"harmonykit build-benchmark: no items in shard {args.shard or '0/1'}", file=sys.stderr)
        return 0
    if report.built + report.already_done == 0:
        print("harmonykit build-benchmark: error: nothing could be built (see the skipped items above)",
              file=sys.stderr)
    elif report.skipped:
        print(f"harmonykit build-benchmark: {len(report.skipped)} source item(s) skipped (see above); "
              "the others are built", file=sys.stderr)
    return batch_exit_code(len(report.skipped), 0)


def _run_video(args: argparse.Namespace) -> int:
    """``--video``: :func:`harmonykit.video.benchmark.build_video_benchmark`."""
    from harmonykit.video.benchmark import VideoBenchSettings, build_video_benchmark

    size = (max(16, round(args.size * 3 / 4) // 2 * 2), args.size // 2 * 2)  # 4:3, even sides for H.264
    settings = VideoBenchSettings(frames=args.frames, fps=args.fps, size=size, seed=args.seed)
    manifest = build_video_benchmark(args.source, args.out, settings, limit=args.limit, split=args.split or "val",
                                     show_progress=False if args.quiet else None)
    for skip in manifest["skipped"]:
        print(f"note: {skip['id']} skipped: {skip['reason']}", file=sys.stderr)
    if not args.quiet:
        print(f"{args.out}: {len(manifest['clips'])} clip(s) of {args.frames} frames at {size[1]}x{size[0]}",
              file=sys.stderr)
    return 0 if manifest["clips"] else 2
