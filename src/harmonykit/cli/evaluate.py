"""``harmonykit evaluate``: score a model or a baseline on a benchmark and write a report.

Exit status (the rule of every command, see :mod:`harmonykit.errors`): 0 when every image
was scored; 2 for a user mistake: a bad option, an unknown or damaged model, a missing or
unreadable benchmark folder, an unwritable report folder (all found before the model loads
or any scoring starts; nothing is written), or images that could not be read (the report is
still written and lists them); 1 when an image failed later (model error, non-finite
output) or nothing at all could be scored for such a reason.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

HELP = "evaluate a model or baseline on a benchmark (MSE, fMSE, PSNR, SSIM, LPIPS, OM IoU)"
DESCRIPTION = """\
Evaluate MODEL on BENCHMARK and write a report folder: metrics.json, per_image.csv,
table.md (laid out like Sg-MMH Table 2, or SRIN Tables 1-2 for iHarmony4) and
best_worst.png.

BENCHMARK: a harmonykit-layout folder (harmonykit build-benchmark), a folder of
[real | composite | mask] triptychs, or an iHarmony4 root (all four subsets, or one subset
folder; the test split). Real composites without ground truth (a Lalonde-Efros onlineDb,
or a folder of X.jpg + X_mask.png) get reference-free figures instead: the mean CIELAB
change inside and outside the mask and their ratio (docs/evaluation.md); a composite X with
its real photo X_real.* beside it also gets paired full-resolution MSE / fMSE / PSNR.

MODEL: a training run folder, a weights folder (config.json + model.safetensors), a
packaged model name, or a baseline: identity, reinhard, histogram.

Masks (the papers' settings by default): mask-free on harmonykit/triptych benchmarks
(Sg-MMH); the foreground mask on iHarmony4 (SRIN). Models and baselines that require a
mask get the ground-truth union mask on multi-mask benchmarks ("oracle mask" in the
report); models with an optional mask input get it only with --with-mask.

The report folder (--out) is checked for writing before the model loads; it may not be
the benchmark folder or inside it.

OM IoU with --with-mask: for localisation-gated models the OM IoU scores the model's own
localisation map (what it finds without being told), not where the mask-given output
changed, so it equals the mask-free run's; the report says so.

Resizing (--size S > 0): images bilinear + antialias to SxS and rounded to uint8, masks
nearest neighbour; everything is scored at SxS. --size 0 scores at the original
resolution (the network runs at 256 and its result is applied at full resolution).

examples:
  harmonykit evaluate hscene_test --model runs/om --out reports/om
  harmonykit evaluate hscene_test --model identity --out reports/composite
  harmonykit evaluate iHarmony4 --model runs/srin --subsets HFlickr --out reports/srin   # the run's own region maps
  harmonykit compare reports/composite reports/om
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("benchmark", metavar="BENCHMARK", help="benchmark folder (harmonykit, triptych or iHarmony4)")
    parser.add_argument("--model", required=True, metavar="MODEL",
                        help="run folder, weights folder, packaged name, or baseline (identity, reinhard, histogram)")
    parser.add_argument("--size", type=int, default=256,
                        help="scoring size in pixels (square, default 256); 0 = original resolution")
    parser.add_argument("--out", metavar="REPORT_DIR", default=None,
                        help="report folder (default: reports/<benchmark>-<model>-<size>)")
    parser.add_argument("--batch-size", type=int, default=8, metavar="N", help="images per model call (default 8)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--workers", type=int, default=0, metavar="N",
                        help="processes decoding images (default 0: in the main process)")
    parser.add_argument("--with-mask", action="store_true",
                        help="give the union mask to models with an optional mask input (multi-mask benchmarks)")
    parser.add_argument("--mask-free", action="store_true",
                        help="give models with an optional mask input no mask on iHarmony4-layout benchmarks")
    parser.add_argument("--regions", default=None, choices=["slic", "felzenszwalb", "sam"],
                        help="region maps for models that use them (SRIN); default: the settings the run "
                             "was trained with (saved with its weights), else slic")
    parser.add_argument("--sam-checkpoint", metavar="PATH", default=None,
                        help="SAM weights for sam region maps (default: the path saved with the run)")
    parser.add_argument("--sam-model-type", default=None, choices=["vit_b", "vit_l", "vit_h"],
                        help="SAM model type (default: the one saved with the run)")
    parser.add_argument("--weights", default="ema", choices=["ema", "raw"],
                        help="for a training run folder: ema (default: RUN/weights, the EMA generator) or raw "
                             "(the raw generator of RUN/checkpoints/last)")
    parser.add_argument("--limit", type=int, default=None, metavar="N", help="score only the first N pairs")
    parser.add_argument("--subsets", nargs="+", default=None, metavar="NAME",
                        help="subsets to score (iHarmony4: HCOCO HAdobe5k HFlickr Hday2night)")
    parser.add_argument("--split", default=None, choices=["train", "val"],
                        help="real-composite sets of a Lalonde-Efros onlineDb: only the composites of this "
                             "split (by source photo); default all")
    parser.add_argument("--layout", default="auto", choices=["auto", "harmonykit", "triptych", "iharmony4"],
                        help="benchmark layout (default: detect)")
    parser.add_argument("--label", default=None, help="name of the method in the tables (default: model name)")
    parser.add_argument("--no-lpips", action="store_true", help="skip LPIPS even when its weights are available")
    parser.add_argument("--om-threshold", type=float, default=None, metavar="REL",
                        help="OM IoU threshold relative to each channel's unit (default 0.01)")
    parser.add_argument("--om-iou-protocol", default="harmonykit", choices=["harmonykit", "paper"],
                        help="paper: the Sg-MMH supplement's OM IoU (add-only model, |add| > 1e-4 of each "
                             "channel's unit), comparable with its 52.9 %%; default harmonykit (--om-threshold, "
                             "--om-iou-from)")
    parser.add_argument("--om-iou-from", default="auto", choices=["auto", "add", "localisation"],
                        help="what the OM IoU binarises: auto (localisation p > 0.5 for gated models, "
                        "else the add masks), add, localisation")


def _default_out(benchmark: str, label: str, size: int) -> Path:
    def clean(t: str) -> str:
        return re.sub(r"[^A-Za-z0-9._-]+", "_", t).strip("_") or "x"

    return Path("reports") / f"{clean(Path(benchmark).resolve().name)}-{clean(label)}-{size or 'orig'}"


def _run_reference_free(args: argparse.Namespace) -> int:
    """Real composites without ground truth: where the method changes the image."""
    from harmonykit.data.composites import open_composites
    from harmonykit.errors import HarmonykitError
    from harmonykit.evaluation.evaluator import default_label
    from harmonykit.evaluation.reference_free import (
        evaluate_real_composites,
        write_reference_free_report,
    )
    from harmonykit.inference import Harmonizer

    composites = open_composites(args.benchmark, split=args.split)
    if not composites.items:
        raise HarmonykitError(f"{args.benchmark}: no usable composite (with its mask) found")
    h = Harmonizer.from_pretrained(args.model, device=args.device, regions=args.regions,
                                   sam_checkpoint=args.sam_checkpoint)
    with_mask = args.with_mask or h.mask_use == "required"
    if with_mask and h.mask_use == "never":
        raise HarmonykitError(f"--with-mask: {args.model} never uses a mask")
    if with_mask and not args.with_mask:
        print(f"harmonykit evaluate: note: {args.model} requires a mask, so it gets the composites' masks",
              file=sys.stderr)
    label = args.label or default_label(args.model)
    out = Path(args.out) if args.out else _default_out(args.benchmark, label + ("+mask" if with_mask else ""), 0)

    def run_method(image: Any, mask: Any) -> Any:
        return h(image, mask=mask).image

    result = evaluate_real_composites(composites, run_method, with_mask=with_mask, label=label, limit=args.limit)
    paths = write_reference_free_report(out, result)
    print(paths["table.md"].read_text(encoding="utf-8"), end="")
    print(f"\nreport: {out}  ({len(result.scores)} scored, {len(result.failures)} failed)")
    for f in result.failures[:10]:
        print(f"harmonykit evaluate: skipped {f.id}: {f.file}: {f.reason}", file=sys.stderr)
    if not result.scores:
        return 2
    return 2 if result.failures else 0


def _check_before_work(args: argparse.Namespace) -> None:
    """What can be checked without PyTorch (seconds to import): the benchmark exists, the
    numbers are in range, the report folder is writable and not inside the benchmark."""
    from harmonykit.errors import HarmonykitError
    from harmonykit.limits import check
    from harmonykit.outputs import check_writable, refuse_inside

    bench = Path(args.benchmark).expanduser()
    if not bench.exists():
        raise HarmonykitError(f"{args.benchmark}: benchmark folder does not exist")
    check("eval_size", args.size, "--size")
    check("batch_size", args.batch_size, "--batch-size")
    check("workers", args.workers, "--workers")
    if args.limit is not None:
        check("limit", args.limit, "--limit")
    if args.om_threshold is not None:
        check("om_threshold", args.om_threshold, "--om-threshold")
    out = Path(args.out) if args.out else Path("reports")  # the default's own name is known later
    check_writable(out, "--out")
    if bench.is_dir():
        refuse_inside(out, bench, "the benchmark")


def run(args: argparse.Namespace) -> int:
    _check_before_work(args)
    from harmonykit.data.composites import is_composite_set
    from harmonykit.errors import HarmonykitError

    if is_composite_set(args.benchmark) and args.layout == "auto":
        return _run_reference_free(args)
    from harmonykit.evaluation.evaluator import EvalOptions, default_label, evaluate
    from harmonykit.evaluation.metrics import OM_THRESHOLD_REL
    from harmonykit.utils.cpus import cap_workers

    opts = EvalOptions(
        size=args.size,
        batch_size=args.batch_size,
        device=args.device,
        workers=cap_workers(args.workers),
        with_mask=args.with_mask,
        mask_free=args.mask_free,
        regions=args.regions,
        sam_checkpoint=args.sam_checkpoint,
        sam_model_type=args.sam_model_type,
        weights=args.weights,
        limit=args.limit,
        subsets=args.subsets,
        layout=args.layout,
        om_threshold=OM_THRESHOLD_REL if args.om_threshold is None else args.om_threshold,
        om_iou_from=args.om_iou_from,
        om_iou_protocol=args.om_iou_protocol,
        lpips=not args.no_lpips,
        label=args.label,
    )
    opts.validate()
    if args.om_iou_protocol == "paper" and (args.om_threshold is not None or args.om_iou_from != "auto"):
        raise HarmonykitError("--om-iou-protocol paper fixes the OM IoU (add masks, threshold 1e-4): "
                              "drop --om-threshold / --om-iou-from")
    label = args.label or default_label(args.model) + ("_raw" if args.weights == "raw" else "")
    out = Path(args.out) if args.out else _default_out(args.benchmark, label, args.size)
    result = evaluate(args.benchmark, args.model, out, opts)
    print(result.paths["table.md"].read_text(encoding="utf-8"), end="")
    counts = result.summary["counts"]
    print(f"\nreport: {out}  ({counts['scored']} scored, {counts['failed']} failed, "
          f"{result.summary['timing']['images_per_second']} img/s)")
    if not result.results:
        print(f"harmonykit evaluate: error: no image could be scored; reasons in {out / 'metrics.json'}",
              file=sys.stderr)
    elif result.failures:
        print(f"harmonykit evaluate: {len(result.failures)} image(s) failed; see {out / 'table.md'}", file=sys.stderr)
    return result.exit_code
